"""Bearer access tokens, checked without a query: the token's signature and expiry are
verified in memory, and its user's state comes from `apps.users.state`."""

import time

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from apps.users.state import UserState, aget_user_state, get_user_state

# Verified tokens, by their text: a client sends the same token with every request for
# its whole life, and checking its signature is the dearest part of authenticating.
# Each entry still expires with its token.
VERIFIED_TOKENS_KEPT = 10_000
_verified: dict[bytes, tuple[int, float, object]] = {}


class AccessTokenAuthentication(JWTAuthentication):
    """simplejwt's `JWTAuthentication`, with the same answers (401 for a bad token, an
    unknown user or an inactive one), but no user SELECT: `aauthenticate` runs on the
    event loop, so an async view authenticates without a thread hop."""

    async def aauthenticate(self, request):
        found = self._validated_token(request)
        if found is None:
            return None
        user_id, token = found
        return _user_of(await aget_user_state(user_id)), token

    def authenticate(self, request):
        found = self._validated_token(request)
        if found is None:
            return None
        user_id, token = found
        return _user_of(get_user_state(user_id)), token

    def _validated_token(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        known = _verified.get(raw_token)
        if known is not None and known[1] > time.time():
            return known[0], known[2]
        token = self.get_validated_token(raw_token)
        try:
            user_id = int(token[api_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken(
                # simplejwt annotates str; DRF takes the lazy translation, as its own do
                _("Token contained no recognizable user identification")  # type: ignore[arg-type]
            ) from exc
        if len(_verified) >= VERIFIED_TOKENS_KEPT:
            _verified.pop(next(iter(_verified)), None)  # the oldest
        _verified[raw_token] = (user_id, token["exp"], token)
        return user_id, token


def _user_of(state: UserState | None):
    if state is None:
        raise AuthenticationFailed(_("User not found"), code="user_not_found")
    if not state.is_active:
        raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
    return state.as_user()

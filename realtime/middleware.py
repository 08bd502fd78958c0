"""WebSocket authentication and origin checks, as ASGI middleware."""

from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from apps.users.models import User

BEARER_SUBPROTOCOL = "bearer"


class JWTAuthMiddleware:
    """Puts the user of a valid access token in `scope["user"]` (None otherwise), with the
    token's expiry in `scope["token_exp"]`.

    Browsers send the token as the subprotocols `["bearer", "<token>"]`; other clients may
    send an `Authorization: Bearer <token>` header. A token in the query string is never
    read: it would end up in access logs. The scope is copied, nothing is kept.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        # This frame lasts as long as the connection: it keeps no token, only the scope.
        return await self.app(await _authenticated(scope), receive, send)


async def _authenticated(scope) -> dict:
    """A copy of the scope with the token's user (a StreamUser) and expiry."""
    raw_token, via_subprotocol = _token_from(scope)
    user, expires_at = None, None
    if raw_token:
        try:
            token = AccessToken(raw_token)  # type: ignore[arg-type]  # simplejwt annotates str out
        except TokenError:
            token = None
        if token is not None:
            user = await _active_user(token[api_settings.USER_ID_CLAIM])
            expires_at = token["exp"] if user is not None else None
    return {**scope, "user": user, "token_exp": expires_at, "bearer_subprotocol": via_subprotocol}


def _token_from(scope) -> tuple[str | None, bool]:
    subprotocols = scope.get("subprotocols") or []
    if len(subprotocols) > 1 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1], True
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip(), False
    return None, BEARER_SUBPROTOCOL in subprotocols


@dataclass(frozen=True, slots=True)
class StreamUser:
    """Who a socket belongs to: all the stream needs of the user, kept per connection
    instead of a model instance."""

    pk: int
    username: str


@database_sync_to_async
def _active_user(user_id) -> StreamUser | None:
    row = User.objects.filter(pk=user_id, is_active=True).values_list("pk", "username").first()
    return StreamUser(*row) if row else None


class BrowserOriginValidator(OriginValidator):
    """Refuses browser connections from an Origin outside ALLOWED_HOSTS. Clients that send
    no Origin (not browsers) are let through to authenticate with their token."""

    def __init__(self, application):
        hosts = settings.ALLOWED_HOSTS
        allowed = ["*"] if (settings.DEBUG and not hosts) or "*" in hosts else hosts
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)

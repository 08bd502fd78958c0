"""Every write to users goes through here. Refusals are the project's own errors
(`apps.common.errors`)."""

from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from apps.common.errors import CredentialsRejected, InvalidInput
from apps.users.models import User


@transaction.atomic
def user_register(*, username: str, email: str, password: str) -> User:
    """Create a member account. A username or email taken already (in any case) is
    InvalidInput."""
    errors = {}
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    if errors:
        raise InvalidInput(errors)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise InvalidInput(
            {"username": ["A user with that username or email already exists."]}
        ) from exc


def user_get(*, user_id: int) -> User:
    """The whole user, for showing it to itself."""
    return User.objects.get(pk=user_id)


@transaction.atomic
def user_update_preferences(*, user_id: int, email_notifications: str | None = None) -> User:
    """Change the caller's notification preference (nothing else may change here)."""
    user = User.objects.select_for_update().get(pk=user_id)
    if email_notifications is not None and email_notifications != user.email_notifications:
        user.email_notifications = email_notifications
        user.save(update_fields=["email_notifications"])
    return user


def user_login(*, username: str, password: str) -> dict[str, str]:
    """Check the credentials (username or email) and issue a token pair."""
    user = authenticate(username=username, password=password)
    if user is None:
        raise CredentialsRejected(
            "No active account found with the given credentials.", code="invalid_credentials"
        )
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
        refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


@transaction.atomic
def token_rotate(*, refresh: str) -> dict[str, str]:
    """Exchange a refresh token for a new pair and blacklist it, exactly once: two
    concurrent rotations of the same token cannot both succeed."""
    token = _verified_refresh_token(refresh)
    outstanding = (
        OutstandingToken.objects.select_for_update()
        .filter(jti=token[api_settings.JTI_CLAIM])
        .first()
    )
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise CredentialsRejected("Token is blacklisted", code="token_not_valid")
    user = User.objects.filter(pk=token[api_settings.USER_ID_CLAIM], is_active=True).first()
    if user is None:
        raise CredentialsRejected("No active account for this token.", code="no_active_account")
    BlacklistedToken.objects.create(token=outstanding)
    new_refresh = RefreshToken.for_user(user)
    return {"access": str(new_refresh.access_token), "refresh": str(new_refresh)}


@transaction.atomic
def token_revoke(*, user: User, refresh: str) -> None:
    """Blacklist the caller's own refresh token (logout)."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]  # simplejwt annotates str out
    except TokenError as exc:
        raise InvalidInput({"refresh": [str(exc)]}) from exc
    if str(token.get(api_settings.USER_ID_CLAIM)) != str(user.pk):
        raise InvalidInput({"refresh": ["This refresh token does not belong to you."]})
    token.blacklist()


def _verified_refresh_token(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]  # simplejwt annotates str out
    except TokenError as exc:
        raise CredentialsRejected(str(exc), code="token_not_valid") from exc

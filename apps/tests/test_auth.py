"""The Auth endpoints of the contract (/api/v1/auth/), through the whole ASGI application."""

from datetime import timedelta

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.tests.conftest import PASSWORD, assert_problem, auth, in_db
from apps.users.models import EmailNotifications, Role, User

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = "/api/v1/auth"
NEW_PASSWORD = "Correct-horse-7-battery"


def registration(**overrides) -> dict:
    body = {"username": "carol", "email": "carol@example.com", "password": NEW_PASSWORD}
    body.update(overrides)
    return body


async def login(api, username: str, password: str = PASSWORD, **kwargs) -> httpx.Response:
    return await api.post(
        f"{AUTH}/login/", json={"username": username, "password": password}, **kwargs
    )


async def token_pair(api, user: User) -> dict[str, str]:
    response = await login(api, user.username)
    assert response.status_code == 200, response.text
    return response.json()


def expired_access_token(user: User) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def assert_validation_problem(response: httpx.Response, *fields: str) -> dict:
    """A 400 problem whose `errors` names exactly these fields; returns `errors`."""
    body = assert_problem(response, 400)
    assert set(body["errors"]) == set(fields), body
    for messages in body["errors"].values():
        assert messages
        assert all(isinstance(message, str) and message for message in messages)
    return body["errors"]


# --- register ------------------------------------------------------------------------------


async def test_register_creates_member_and_returns_its_public_fields(api):
    response = await api.post(f"{AUTH}/register/", json=registration())
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "username", "email", "role"}
    assert body["username"] == "carol"
    assert body["email"] == "carol@example.com"
    assert body["role"] == Role.MEMBER
    user = await in_db(User.objects.get, pk=body["id"])
    assert user.username == "carol"
    assert user.role == Role.MEMBER
    assert user.check_password(NEW_PASSWORD)


async def test_registered_user_can_log_in(api):
    registered = await api.post(f"{AUTH}/register/", json=registration())
    assert registered.status_code == 201, registered.text
    response = await login(api, "carol", NEW_PASSWORD)
    assert response.status_code == 200, response.text
    me = await api.get(
        f"{AUTH}/me/", headers={"Authorization": f"Bearer {response.json()['access']}"}
    )
    assert me.json()["id"] == registered.json()["id"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"password": "Xy7!q"}, id="too-short"),
        pytest.param({"password": "password123"}, id="too-common"),
        pytest.param({"password": "83920174659"}, id="entirely-numeric"),
        pytest.param(
            {"username": "carolinemay", "password": "carolinemay1"}, id="similar-to-username"
        ),
        pytest.param({"password": "carol@example.com"}, id="similar-to-email"),
    ],
)
async def test_register_rejects_password_failing_django_validators(api, overrides):
    response = await api.post(f"{AUTH}/register/", json=registration(**overrides))
    assert_validation_problem(response, "password")
    assert not await in_db(User.objects.exists)


@pytest.mark.parametrize("username", ["ana", "ANA", "Ana"])
async def test_register_rejects_duplicate_username_in_any_case(api, ana, username):
    response = await api.post(
        f"{AUTH}/register/", json=registration(username=username, email="other@example.com")
    )
    assert_validation_problem(response, "username")
    assert await in_db(User.objects.filter(username__iexact="ana").count) == 1


@pytest.mark.parametrize("email", ["ana@example.com", "ANA@EXAMPLE.COM", "Ana@Example.com"])
async def test_register_rejects_duplicate_email_in_any_case(api, ana, email):
    response = await api.post(f"{AUTH}/register/", json=registration(email=email))
    assert_validation_problem(response, "email")
    assert not await in_db(User.objects.filter(username="carol").exists)


async def test_register_without_fields_names_every_missing_field(api):
    response = await api.post(f"{AUTH}/register/", json={})
    assert_validation_problem(response, "username", "email", "password")


@pytest.mark.parametrize("missing", ["username", "email", "password"])
async def test_register_without_one_field_is_400_for_that_field(api, missing):
    body = registration()
    del body[missing]
    response = await api.post(f"{AUTH}/register/", json=body)
    assert_validation_problem(response, missing)


@pytest.mark.parametrize("email", ["not-an-email", "carol@", "@example.com", ""])
async def test_register_rejects_invalid_email(api, email):
    response = await api.post(f"{AUTH}/register/", json=registration(email=email))
    assert_validation_problem(response, "email")


async def test_register_rejects_unknown_field(api):
    response = await api.post(f"{AUTH}/register/", json=registration(nickname="cc"))
    errors = assert_validation_problem(response, "nickname")
    assert errors["nickname"] == ["Unknown field."]
    assert not await in_db(User.objects.filter(username="carol").exists)


async def test_register_cannot_choose_admin_role(api):
    response = await api.post(f"{AUTH}/register/", json=registration(role="admin"))
    assert_problem(response, 400)
    assert not await in_db(User.objects.filter(role=Role.ADMIN).exists)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", ["carol"]),
        ("username", {"name": "carol"}),
        ("username", None),
        ("email", 42),
        ("email", ["carol@example.com"]),
        ("password", True),
        ("password", {"secret": NEW_PASSWORD}),
    ],
)
async def test_register_rejects_wrong_field_type(api, field, value):
    response = await api.post(f"{AUTH}/register/", json=registration(**{field: value}))
    assert_validation_problem(response, field)


async def test_register_rejects_body_that_is_not_an_object(api):
    response = await api.post(f"{AUTH}/register/", json=[registration()])
    assert_problem(response, 400)


async def test_register_rejects_invalid_username_characters(api):
    response = await api.post(f"{AUTH}/register/", json=registration(username="car ol!"))
    assert_validation_problem(response, "username")


# --- login ---------------------------------------------------------------------------------


async def test_login_by_username_returns_token_pair(api, ana):
    response = await login(api, "ana")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access", "refresh"}
    access = await in_db(AccessToken, body["access"])
    refresh = await in_db(RefreshToken, body["refresh"])
    assert str(access["user_id"]) == str(ana.pk)
    assert str(refresh["user_id"]) == str(ana.pk)


@pytest.mark.parametrize("username", ["ANA", "Ana", "aNa"])
async def test_login_by_username_ignores_letter_case(api, ana, username):
    response = await login(api, username)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("email", ["ana@example.com", "ANA@EXAMPLE.COM", "Ana@Example.Com"])
async def test_login_by_email_in_any_case(api, ana, email):
    response = await login(api, email)
    assert response.status_code == 200, response.text
    me = await api.get(
        f"{AUTH}/me/", headers={"Authorization": f"Bearer {response.json()['access']}"}
    )
    assert me.json()["username"] == "ana"


async def test_login_access_token_authenticates_me(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.get(f"{AUTH}/me/", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ana.pk


async def test_login_with_wrong_password_is_401(api, ana):
    response = await login(api, "ana", "Wrong-passw0rd-x")
    body = assert_problem(response, 401)
    assert "access" not in body
    assert "refresh" not in body


async def test_login_with_wrong_password_by_email_is_401(api, ana):
    assert_problem(await login(api, "ana@example.com", "Wrong-passw0rd-x"), 401)


async def test_login_of_unknown_user_is_401(api):
    assert_problem(await login(api, "nobody"), 401)


async def test_login_of_unknown_email_is_401(api):
    assert_problem(await login(api, "nobody@example.com"), 401)


async def test_login_of_inactive_user_is_401(api, make_user):
    await in_db(make_user, "sleepy", is_active=False)
    assert_problem(await login(api, "sleepy"), 401)


async def test_login_failures_do_not_reveal_whether_the_user_exists(api, ana):
    wrong_password = assert_problem(await login(api, "ana", "Wrong-passw0rd-x"), 401)
    unknown_user = assert_problem(await login(api, "nobody", "Wrong-passw0rd-x"), 401)
    assert wrong_password == unknown_user


async def test_login_without_password_is_400(api, ana):
    response = await api.post(f"{AUTH}/login/", json={"username": "ana"})
    assert_validation_problem(response, "password")


async def test_login_rejects_unknown_field(api, ana):
    response = await api.post(
        f"{AUTH}/login/", json={"username": "ana", "password": PASSWORD, "remember": True}
    )
    errors = assert_validation_problem(response, "remember")
    assert errors["remember"] == ["Unknown field."]


async def test_login_rejects_wrong_field_type(api, ana):
    response = await api.post(f"{AUTH}/login/", json={"username": ["ana"], "password": PASSWORD})
    assert_validation_problem(response, "username")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage.token.here", "Bearer", "Basic YW5hOnB3", "expired"],
)
async def test_login_ignores_stale_authorization_header(api, ana, authorization):
    if authorization == "expired":
        authorization = f"Bearer {expired_access_token(ana)}"
    response = await login(api, "ana", headers={"Authorization": authorization})
    assert response.status_code == 200, response.text


async def test_register_ignores_stale_authorization_header(api):
    response = await api.post(
        f"{AUTH}/register/",
        json=registration(),
        headers={"Authorization": "Bearer garbage.token.here"},
    )
    assert response.status_code == 201, response.text


async def test_refresh_ignores_stale_authorization_header(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.post(
        f"{AUTH}/refresh/",
        json={"refresh": tokens["refresh"]},
        headers={"Authorization": "Bearer garbage.token.here"},
    )
    assert response.status_code == 200, response.text


# --- refresh -------------------------------------------------------------------------------


async def test_refresh_returns_a_new_working_pair(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert set(fresh) == {"access", "refresh"}
    assert fresh["refresh"] != tokens["refresh"]
    me = await api.get(f"{AUTH}/me/", headers={"Authorization": f"Bearer {fresh['access']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ana.pk


async def test_refresh_token_is_rejected_after_rotation(api, ana):
    tokens = await token_pair(api, ana)
    first = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert first.status_code == 200, first.text
    again = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert_problem(again, 401)


async def test_rotated_refresh_token_refreshes_again(api, ana):
    tokens = await token_pair(api, ana)
    first = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert first.status_code == 200, first.text
    second = await api.post(f"{AUTH}/refresh/", json={"refresh": first.json()["refresh"]})
    assert second.status_code == 200, second.text
    assert set(second.json()) == {"access", "refresh"}


@pytest.mark.parametrize("refresh", ["garbage", "a.b.c", "x" * 500])
async def test_refresh_with_garbage_token_is_401(api, refresh):
    assert_problem(await api.post(f"{AUTH}/refresh/", json={"refresh": refresh}), 401)


async def test_refresh_with_access_token_is_401(api, ana):
    tokens = await token_pair(api, ana)
    assert_problem(await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["access"]}), 401)


async def test_refresh_with_expired_refresh_token_is_401(api, ana):
    token = await in_db(RefreshToken.for_user, ana)
    token.set_exp(lifetime=-timedelta(seconds=1))
    assert_problem(await api.post(f"{AUTH}/refresh/", json={"refresh": str(token)}), 401)


async def test_refresh_for_deactivated_user_is_401(api, ana):
    tokens = await token_pair(api, ana)
    await in_db(User.objects.filter(pk=ana.pk).update, is_active=False)
    assert_problem(await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]}), 401)


async def test_refresh_without_token_is_400(api):
    response = await api.post(f"{AUTH}/refresh/", json={})
    assert_validation_problem(response, "refresh")


async def test_refresh_with_wrong_type_is_400(api):
    response = await api.post(f"{AUTH}/refresh/", json={"refresh": ["a", "b"]})
    assert_validation_problem(response, "refresh")


# --- logout --------------------------------------------------------------------------------


async def test_logout_returns_204(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.post(
        f"{AUTH}/logout/", json={"refresh": tokens["refresh"]}, headers=auth(ana)
    )
    assert response.status_code == 204, response.text
    assert response.content == b""


async def test_refresh_token_no_longer_refreshes_after_logout(api, ana):
    tokens = await token_pair(api, ana)
    logout = await api.post(
        f"{AUTH}/logout/", json={"refresh": tokens["refresh"]}, headers=auth(ana)
    )
    assert logout.status_code == 204, logout.text
    response = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert_problem(response, 401)


async def test_logout_without_access_token_is_401(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.post(f"{AUTH}/logout/", json={"refresh": tokens["refresh"]})
    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers
    still_refreshes = await api.post(f"{AUTH}/refresh/", json={"refresh": tokens["refresh"]})
    assert still_refreshes.status_code == 200, still_refreshes.text


async def test_logout_with_someone_elses_refresh_token_is_400(api, ana, bob):
    bobs_tokens = await token_pair(api, bob)
    response = await api.post(
        f"{AUTH}/logout/", json={"refresh": bobs_tokens["refresh"]}, headers=auth(ana)
    )
    assert_validation_problem(response, "refresh")
    still_refreshes = await api.post(f"{AUTH}/refresh/", json={"refresh": bobs_tokens["refresh"]})
    assert still_refreshes.status_code == 200, still_refreshes.text


async def test_logout_with_garbage_refresh_token_is_400(api, ana):
    response = await api.post(f"{AUTH}/logout/", json={"refresh": "garbage"}, headers=auth(ana))
    assert_validation_problem(response, "refresh")


async def test_logout_without_refresh_token_is_400(api, ana):
    response = await api.post(f"{AUTH}/logout/", json={}, headers=auth(ana))
    assert_validation_problem(response, "refresh")


# --- me ------------------------------------------------------------------------------------


async def test_me_returns_the_caller_with_default_notifications(api, ana):
    response = await api.get(f"{AUTH}/me/", headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": ana.pk,
        "username": "ana",
        "email": "ana@example.com",
        "role": Role.MEMBER,
        "email_notifications": EmailNotifications.ALL,
    }


async def test_me_shows_admin_role(api, root):
    response = await api.get(f"{AUTH}/me/", headers=auth(root))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == Role.ADMIN


@pytest.mark.parametrize("choice", ["all", "others", "none"])
async def test_patch_me_sets_email_notifications(api, make_user, choice):
    # Start from another value, so the response and the row can only show `choice` if the
    # PATCH stored it.
    start = "none" if choice != "none" else "others"
    user = await in_db(make_user, "dora", email_notifications=start)
    response = await api.patch(
        f"{AUTH}/me/", json={"email_notifications": choice}, headers=auth(user)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["email_notifications"] == choice
    assert set(body) == {"id", "username", "email", "role", "email_notifications"}
    await in_db(user.refresh_from_db)
    assert user.email_notifications == choice
    again = await api.get(f"{AUTH}/me/", headers=auth(user))
    assert again.json()["email_notifications"] == choice


@pytest.mark.parametrize("value", ["sometimes", "ALL", "", None, 1, ["all"]])
async def test_patch_me_rejects_invalid_email_notifications(api, ana, value):
    response = await api.patch(
        f"{AUTH}/me/", json={"email_notifications": value}, headers=auth(ana)
    )
    assert_validation_problem(response, "email_notifications")
    await in_db(ana.refresh_from_db)
    assert ana.email_notifications == EmailNotifications.ALL


async def test_patch_me_does_not_change_role(api, ana):
    response = await api.patch(
        f"{AUTH}/me/", json={"role": "admin", "email_notifications": "none"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == Role.MEMBER
    await in_db(ana.refresh_from_db)
    assert ana.role == Role.MEMBER
    assert ana.email_notifications == EmailNotifications.NONE


async def test_patch_me_with_only_role_does_not_change_role(api, ana):
    response = await api.patch(f"{AUTH}/me/", json={"role": "admin"}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == Role.MEMBER
    await in_db(ana.refresh_from_db)
    assert ana.role == Role.MEMBER


async def test_patch_me_does_not_change_username_email_or_id(api, ana):
    response = await api.patch(
        f"{AUTH}/me/",
        json={"id": 999_999, "username": "mallory", "email": "mallory@example.com"},
        headers=auth(ana),
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "ana"
    assert response.json()["id"] == ana.pk
    await in_db(ana.refresh_from_db)
    assert (ana.username, ana.email) == ("ana", "ana@example.com")


async def test_patch_me_rejects_unknown_field(api, ana):
    response = await api.patch(f"{AUTH}/me/", json={"is_staff": True}, headers=auth(ana))
    errors = assert_validation_problem(response, "is_staff")
    assert errors["is_staff"] == ["Unknown field."]
    await in_db(ana.refresh_from_db)
    assert not ana.is_staff


async def test_patch_me_without_token_is_401(api):
    response = await api.patch(f"{AUTH}/me/", json={"email_notifications": "none"})
    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers


async def test_me_without_token_is_401_with_challenge(api):
    response = await api.get(f"{AUTH}/me/")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_me_with_expired_token_is_401_with_challenge(api, ana):
    response = await api.get(
        f"{AUTH}/me/", headers={"Authorization": f"Bearer {expired_access_token(ana)}"}
    )
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization", ["Bearer garbage", "Bearer a.b.c", "Token abc", "Bearer", "Bearer  "]
)
async def test_me_with_garbage_token_is_401_with_challenge(api, authorization):
    response = await api.get(f"{AUTH}/me/", headers={"Authorization": authorization})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_me_with_refresh_token_as_access_is_401(api, ana):
    tokens = await token_pair(api, ana)
    response = await api.get(
        f"{AUTH}/me/", headers={"Authorization": f"Bearer {tokens['refresh']}"}
    )
    assert_problem(response, 401)


async def test_me_for_deactivated_user_is_401(api, ana):
    headers = auth(ana)
    ana.is_active = False
    await in_db(ana.save, update_fields=["is_active"])
    assert_problem(await api.get(f"{AUTH}/me/", headers=headers), 401)


# --- throttling ----------------------------------------------------------------------------


async def test_login_is_throttled_per_client_address(api, ana, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert (await login(api, "ana")).status_code == 200
    response = await login(api, "ana")
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


async def test_failed_logins_count_towards_the_login_throttle(api, ana, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert (await login(api, "ana", "Wrong-passw0rd-x")).status_code == 401
    response = await login(api, "ana")
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


async def test_register_is_throttled_per_client_address(api, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for number in range(3):
        body = registration(username=f"carol{number}", email=f"carol{number}@example.com")
        assert (await api.post(f"{AUTH}/register/", json=body)).status_code == 201
    response = await api.post(f"{AUTH}/register/", json=registration())
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert not await in_db(User.objects.filter(username="carol").exists)


async def test_login_and_register_are_throttled_separately(api, ana, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert (await login(api, "ana")).status_code == 200
    registered = await api.post(f"{AUTH}/register/", json=registration())
    assert registered.status_code == 201, registered.text
    assert_problem(await login(api, "ana"), 429)


async def test_register_throttle_does_not_block_login(api, ana, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for number in range(3):
        body = registration(username=f"carol{number}", email=f"carol{number}@example.com")
        assert (await api.post(f"{AUTH}/register/", json=body)).status_code == 201
    assert_problem(await api.post(f"{AUTH}/register/", json=registration()), 429)
    response = await login(api, "ana")
    assert response.status_code == 200, response.text


async def test_login_throttle_does_not_limit_other_client_addresses(api, ana, settings):
    settings.AUTH_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert (await login(api, "ana")).status_code == 200
    assert_problem(await login(api, "ana"), 429)

    from project.asgi import application

    transport = httpx.ASGITransport(app=application, client=("10.0.0.2", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        response = await login(other, "ana")
    assert response.status_code == 200, response.text


async def test_default_auth_throttle_allows_twenty_logins_a_minute(api, ana):
    for _ in range(20):
        assert (await login(api, "ana", "Wrong-passw0rd-x")).status_code == 401
    response = await login(api, "ana")
    assert_problem(response, 429)
    assert "Retry-After" in response.headers

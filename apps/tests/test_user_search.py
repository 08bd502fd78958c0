"""GET /api/v1/users/?search=: people to pick (an assignee) by the start of their username
or email. Active users only, at least 2 characters, at most 20 results, by username, and
never an email in the answer."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from apps.common import ratelimit
from apps.tests.conftest import assert_problem, auth
from apps.users.models import User
from apps.users.selectors import search_users

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/users/"


async def search(api, caller, query) -> list[dict]:
    response = await api.get(URL, params={"search": query}, headers=auth(caller))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results"}
    return body["results"]


async def usernames(api, caller, query) -> list[str]:
    return [person["username"] for person in await search(api, caller, query)]


@pytest.fixture
def person(make_user):
    """A user whose email does not start with their username."""

    def make(username, email, **extra) -> User:
        user = make_user(username, **extra)
        User.objects.filter(pk=user.pk).update(email=email)
        user.email = email
        return user

    return make


# --- What matches ---------------------------------------------------------------------------


async def test_username_prefix_matches(api, ana, make_user):
    await sync_to_async(make_user)("anatole")
    await sync_to_async(make_user)("bob")
    assert await usernames(api, ana, "an") == ["ana", "anatole"]


async def test_email_prefix_matches_and_answers_with_the_username(api, ana, person):
    olga = await sync_to_async(person)("olga", "o.petrova@corp.example")
    assert await search(api, ana, "o.pet") == [{"id": olga.pk, "username": "olga"}]


async def test_the_match_ignores_case(api, ana, person):
    await sync_to_async(person)("MixedCase", "Someone@Corp.Example")
    assert await usernames(api, ana, "mIXed") == ["MixedCase"]
    assert await usernames(api, ana, "SOMEONE@corp") == ["MixedCase"]


async def test_only_the_start_matches(api, ana, person):
    await sync_to_async(person)("johanna", "jo@corp.example")
    assert await usernames(api, ana, "hanna") == []
    assert await usernames(api, ana, "corp") == []


async def test_like_wildcards_in_the_query_match_only_themselves(api, ana, person):
    await sync_to_async(person)("a_b", "a_b@corp.example")
    await sync_to_async(person)("axb", "axb@corp.example")
    assert await usernames(api, ana, "a_") == ["a_b"]
    assert await usernames(api, ana, "a%") == []


async def test_inactive_users_are_not_found(api, ana, make_user):
    await sync_to_async(make_user)("dora", is_active=False)
    await sync_to_async(make_user)("doris")
    assert await usernames(api, ana, "do") == ["doris"]


async def test_the_caller_finds_themself(api, ana):
    assert await search(api, ana, "ana") == [{"id": ana.pk, "username": "ana"}]


async def test_a_user_matched_by_username_and_email_is_listed_once(api, ana):
    # ana's email is ana@example.com: both match "an".
    assert await usernames(api, ana, "an") == ["ana"]


async def test_results_are_ordered_by_username_whatever_its_case(api, ana, make_user):
    for name in ("MAX", "mabel", "Mara"):
        await sync_to_async(make_user)(name)
    assert await usernames(api, ana, "ma") == ["mabel", "Mara", "MAX"]


async def test_results_by_email_domain_prefix_come_in_username_order(api, ana, person):
    for name in ("zed", "Yann", "xavier"):
        await sync_to_async(person)(name, f"team.{name.lower()}@corp.example")
    assert await usernames(api, ana, "team.") == ["xavier", "Yann", "zed"]


async def test_at_most_20_users_are_returned(api, ana, make_user):
    for index in range(25):
        await sync_to_async(make_user)(f"member{index:02}")
    found = await usernames(api, ana, "member")
    assert found == [f"member{index:02}" for index in range(20)]


# --- What the answer never shows ------------------------------------------------------------


async def test_answers_hold_only_id_and_username(api, ana, make_user):
    await sync_to_async(make_user)("anabel")
    for person in await search(api, ana, "an"):
        assert set(person) == {"id", "username"}


async def test_emails_are_never_in_the_answer_even_when_they_matched(api, ana, person):
    await sync_to_async(person)("quentin", "q.secret@hidden.example")
    response = await api.get(URL, params={"search": "q.secret"}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert [entry["username"] for entry in response.json()["results"]] == ["quentin"]
    assert "secret" not in response.text
    assert "hidden" not in response.text
    assert "@" not in response.text


# --- Bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "a", "é"])
async def test_a_query_shorter_than_2_characters_is_400(api, ana, query):
    body = assert_problem(await api.get(URL, params={"search": query}, headers=auth(ana)), 400)
    assert "2" in body["errors"]["search"][0]


async def test_a_missing_query_is_400(api, ana):
    body = assert_problem(await api.get(URL, headers=auth(ana)), 400)
    assert body["errors"]["search"] == ["This parameter is required."]


async def test_a_query_longer_than_an_email_is_400(api, ana):
    body = assert_problem(await api.get(URL, params={"search": "a" * 255}, headers=auth(ana)), 400)
    assert list(body["errors"]) == ["search"]


async def test_a_query_with_a_nul_character_is_400(api, ana):
    assert_problem(await api.get(URL, params={"search": "an\x00"}, headers=auth(ana)), 400)


async def test_a_repeated_query_is_400(api, ana):
    response = await api.get(URL, params=[("search", "ana"), ("search", "bob")], headers=auth(ana))
    assert_problem(response, 400)


async def test_an_unknown_parameter_is_400(api, ana):
    response = await api.get(URL, params={"search": "ana", "limit": "5"}, headers=auth(ana))
    body = assert_problem(response, 400)
    assert list(body["errors"]) == ["limit"]


async def test_without_a_token_is_401(api):
    assert_problem(await api.get(URL, params={"search": "ana"}), 401)


async def test_with_a_bad_token_is_401(api):
    headers = {"Authorization": "Bearer not.a.token"}
    assert_problem(await api.get(URL, params={"search": "ana"}, headers=headers), 401)


async def test_other_methods_are_405(api, ana):
    assert_problem(await api.post(URL, json={"search": "ana"}, headers=auth(ana)), 405)


async def test_searches_count_against_the_callers_request_limit(api, ana, bob, settings):
    settings.API_USER_RATE = "3/min"
    ratelimit._limit = None
    try:
        for _ in range(3):
            await search(api, ana, "bo")
        refused = await api.get(URL, params={"search": "bo"}, headers=auth(ana))
        assert_problem(refused, 429)
        assert int(refused.headers["Retry-After"]) >= 1
        assert await usernames(api, bob, "bo") == ["bob"]
    finally:
        ratelimit._limit = None


# --- Cost -----------------------------------------------------------------------------------


def test_the_search_is_served_by_the_prefix_indexes(make_user):
    """Both the username and the email prefix are index lookups, not a scan of every
    user (sequential scans are priced out: a test table is too small for the planner to
    prefer an index by itself)."""
    for index in range(30):
        make_user(f"indexed{index}")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        plan = search_users(query="in").explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    assert "users_user_username_prefix" in plan, plan
    assert "users_user_email_prefix" in plan, plan
    assert "Seq Scan" not in plan, plan

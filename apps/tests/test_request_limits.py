"""Per-user request limits on the API (`API_USER_RATE`): past it, 429 problem+json with
Retry-After; other users unaffected; counted in Redis, so shared by every web process,
and still limited, per process, while Redis is away."""

import pytest

from apps.common import ratelimit
from apps.tests.conftest import assert_problem, auth
from apps.tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = "/api/v1/tasks/"


@pytest.fixture
def limit_of(settings):
    """Sets API_USER_RATE for the test (the limit is built once per process: rebuilt)."""

    def set_rate(rate: str) -> None:
        settings.API_USER_RATE = rate
        ratelimit._limit = None

    yield set_rate
    ratelimit._limit = None


async def test_requests_past_the_limit_get_429_with_retry_after(api, ana, bob, limit_of):
    limit_of("5/min")
    for _ in range(5):
        assert (await api.get(TASKS, headers=auth(ana))).status_code == 200
    refused = await api.get(TASKS, headers=auth(ana))
    body = assert_problem(refused, 429)
    assert "Retry-After" in body["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Writes count too, and are refused before they change anything.
    assert_problem(await api.post(TASKS, json={"title": "x"}, headers=auth(ana)), 429)
    # Another user has a count of their own.
    assert (await api.get(TASKS, headers=auth(bob))).status_code == 200


async def test_no_limit_when_the_rate_is_zero(api, ana, limit_of):
    limit_of("0")
    for _ in range(30):
        assert (await api.get(TASKS, headers=auth(ana))).status_code == 200


@pytest.mark.parametrize("rate", ["lots", "5/fortnight", "-1/min", "5"])
def test_a_malformed_rate_is_refused(rate):
    with pytest.raises(ValueError, match="API_USER_RATE"):
        ratelimit.parse_rate(rate)


async def test_the_count_is_shared_through_redis(settings):
    """Two web processes each hold a limiter; one Redis count serves both."""
    first = ratelimit.UserRequestLimit("3/min", settings.REDIS_CACHE_URL)
    second = ratelimit.UserRequestLimit("3/min", settings.REDIS_CACHE_URL)
    user = 9_000_001
    waits = [await limiter.wait_needed(user) for limiter in (first, second, first)]
    assert waits == [None, None, None]
    assert await second.wait_needed(user) > 0


async def test_the_limit_holds_per_process_while_redis_is_away():
    dead = f"redis://:secret@127.0.0.1:{free_port()}/0"
    limiter = ratelimit.UserRequestLimit("3/min", dead)
    waits = [await limiter.wait_needed(7) for _ in range(4)]
    assert waits[:3] == [None, None, None]
    assert waits[3] > 0


async def test_unauthenticated_requests_are_not_counted_and_still_answered(api, limit_of):
    limit_of("1/min")
    for _ in range(3):
        assert_problem(await api.get(TASKS), 401)
    response = await api.post("/api/v1/auth/login/", json={"username": "x", "password": "y"})
    assert_problem(response, 401)

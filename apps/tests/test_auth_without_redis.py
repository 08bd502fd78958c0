"""Login and register while Redis (the cache that holds the throttle's counts) is down:
never a 500, and the limit still holds, counted per web process."""

import httpx
import pytest

from apps.tests.conftest import assert_problem
from apps.tests.processes import base_env, daphne_server, database_url_for_subprocess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CREDENTIALS = {"username": "quinn", "password": "a long enough passphrase 9"}


def test_login_and_register_work_and_stay_limited_while_redis_is_down():
    dead_redis = f"redis://:secret@127.0.0.1:{free_port()}/0"
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=dead_redis,
        AUTH_THROTTLE_RATE="3/min",
    )
    with daphne_server(env=env) as base_url, httpx.Client(base_url=base_url, timeout=30) as web:
        registered = web.post(
            "/api/v1/auth/register/", json={**CREDENTIALS, "email": "quinn@example.com"}
        )
        assert registered.status_code == 201, registered.text
        for _ in range(3):
            response = web.post("/api/v1/auth/login/", json=CREDENTIALS)
            assert response.status_code == 200, response.text
            assert response.json()["access"]
        refused = web.post("/api/v1/auth/login/", json=CREDENTIALS)
        assert_problem(refused, 429)
        assert int(refused.headers["Retry-After"]) > 0
        # Register has a count of its own, which the one register above began.
        for _ in range(2):
            response = web.post("/api/v1/auth/register/", json={"username": ""})
            assert_problem(response, 400)
        assert_problem(web.post("/api/v1/auth/register/", json={"username": ""}), 429)

"""The OpenAPI schema tells the truth: schemathesis, every check on, over every operation
and its stateful phase, against daphne serving the API, with a fixed seed and a bounded
number of examples, finds no failure. scripts/schemathesis.toml says which statuses a
schema-valid request may still get, and why; the README shows a longer run."""

import os
import subprocess

import httpx
import pytest

from apps.tests.processes import BIN, REPO, base_env, daphne_server, database_url_for_subprocess

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CREDENTIALS = {"username": "fuzzer", "password": "a long enough passphrase 9"}
SEED = "1"
MAX_EXAMPLES = "25"


def test_schemathesis_finds_no_failure(tmp_path):
    schemathesis = BIN / "schemathesis"
    assert schemathesis.exists(), "schemathesis is missing: install the dev extras"
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        AUTH_THROTTLE_RATE="100000/min",
        API_USER_RATE="0",
    )
    with daphne_server(env=env) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as web:
            registered = web.post(
                "/api/v1/auth/register/", json={**CREDENTIALS, "email": "fuzzer@example.com"}
            )
            assert registered.status_code == 201, registered.text
            token = web.post("/api/v1/auth/login/", json=CREDENTIALS).json()["access"]
        result = subprocess.run(
            [
                str(schemathesis),
                "--config-file",
                str(REPO / "scripts/schemathesis.toml"),
                "run",
                f"{base_url}/api/schema/?format=json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {token}",
                "--seed",
                SEED,
                "--max-examples",
                MAX_EXAMPLES,
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--no-shrink",
            ],
            cwd=tmp_path,  # where it keeps its example database
            env={**env, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "Stateful" in result.stdout, "the stateful phase did not run"

"""Settings read from the environment, each probed in a fresh process as it would start."""

import json
import subprocess
import sys

import pytest

from apps.tests.processes import REPO, base_env

pytestmark = pytest.mark.e2e


def settings_seen(names: list[str], **environment: str) -> dict:
    """The values of the setting `names` in a process started with `environment` (and
    without SITE_URL or PORT unless given), the way the server would read them."""
    env = {key: value for key, value in base_env().items() if key not in ("SITE_URL", "PORT")}
    env.update(environment, DJANGO_SETTINGS_MODULE="project.settings")
    probe = (
        "import json, sys, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *names],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_site_url_follows_the_port_the_server_is_started_on():
    assert settings_seen(["SITE_URL"], PORT="8134") == {"SITE_URL": "http://localhost:8134"}


def test_site_url_defaults_to_port_8000():
    assert settings_seen(["SITE_URL"]) == {"SITE_URL": "http://localhost:8000"}


def test_site_url_set_in_the_environment_wins_over_the_port():
    seen = settings_seen(["SITE_URL"], PORT="8134", SITE_URL="https://tasks.example.com")
    assert seen == {"SITE_URL": "https://tasks.example.com"}

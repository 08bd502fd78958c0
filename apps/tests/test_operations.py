"""Health, readiness, the schema and docs, and errors that escape the API's handlers."""

import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.urls import include, path
from websockets.sync.client import connect as ws_connect

from apps.tests.conftest import assert_problem, auth
from apps.tests.processes import (
    REPO,
    base_env,
    daphne_server,
    database_url_for_subprocess,
    free_port,
    run_checked,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_healthz_answers_ok(api):
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_every_component_ready(api):
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "channel_layer": "ok",
    }


@pytest.mark.e2e  # starts processes
def test_readyz_names_what_is_down_when_redis_is_unreachable(tmp_path):
    dead_redis = f"redis://:secret@127.0.0.1:{free_port()}/0"
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL=dead_redis)
    with daphne_server(env=env) as base_url:
        response = httpx.get(f"{base_url}/readyz", timeout=30)
    assert_problem(response, 503)
    body = response.json()
    assert body["checks"]["database"] == "ok"
    for component in ("cache", "broker", "channel_layer"):
        assert body["checks"][component] != "ok"
        assert component in body["detail"]


async def test_schema_is_openapi_3_and_lists_every_contract_path(api):
    response = await api.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/v1/auth/register/",
        "/api/v1/auth/login/",
        "/api/v1/auth/refresh/",
        "/api/v1/auth/logout/",
        "/api/v1/auth/me/",
        "/api/v1/tasks/",
        "/api/v1/tasks/{task_id}/",
        "/api/v1/tasks/{task_id}/archive/",
        "/api/v1/tasks/{task_id}/restore/",
        "/api/v1/tasks/{task_id}/history/",
        "/api/v1/events/",
        "/api/v1/users/",
    }


async def test_schema_describes_the_task_fields_and_problem_errors(api):
    schema = (await api.get("/api/schema/", params={"format": "json"})).json()
    task = schema["components"]["schemas"]["Task"]
    assert set(task["properties"]) == {
        "id", "title", "description", "status", "priority", "due_at", "metadata",
        "assignee", "assignee_user", "project", "created_by", "archived_at", "version",
        "created_at",
        "updated_at",
    }  # fmt: skip
    assert set(task["required"]) >= {"id", "title", "version", "created_by"}
    create = schema["paths"]["/api/v1/tasks/"]["post"]
    assert "application/problem+json" in create["responses"]["400"]["content"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    patch = schema["paths"]["/api/v1/tasks/{task_id}/"]["patch"]
    assert {"403", "404", "412"} <= set(patch["responses"])


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/v1/tasks/" in out.read_text()


async def test_docs_page_and_its_assets_are_served(api):
    page = await api.get("/api/docs/")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    asset = next(part.split('"')[0] for part in page.text.split('src="')[1:] if "/static/" in part)
    assert (await api.get(asset)).status_code == 200


def _explode(request):
    raise RuntimeError("secret internals")


async def _explode_async(request):
    raise RuntimeError("secret internals")


def _html_error(request):
    return HttpResponse("<h1>Teapot</h1>", status=418, content_type="text/html")


urlpatterns = [
    path("api/boom/", _explode),
    path("api/boom-async/", _explode_async),
    path("api/teapot/", _html_error),
    path("", include("project.urls")),
]


@pytest.mark.parametrize("url", ["/api/boom/", "/api/boom-async/"])
async def test_unhandled_error_under_api_is_a_problem_without_traceback(api, settings, url):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = True  # even Django's debug page must not leak
    response = await api.get(url)
    body = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert body["title"] == "Internal Server Error"


async def test_html_error_under_api_is_rewritten_as_problem(api, settings):
    settings.ROOT_URLCONF = __name__
    assert_problem(await api.get("/api/teapot/"), 418)


async def test_bad_host_header_under_api_is_a_problem(api):
    response = await api.get("/api/v1/tasks/", headers={"Host": "evil.example"})
    assert_problem(response, 400)


@pytest.mark.e2e  # starts processes
def test_embedded_default_serves_the_api_with_no_configuration(tmp_path):
    """A fresh copy with nothing configured (SQLite, in-process layers, eager jobs)
    serves the API and delivers live events to a socket."""
    for name in ("project", "apps", "realtime"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "manage.py", tmp_path / "manage.py")
    env = base_env()
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_BACKEND]))"
    )
    configured = json.loads(
        run_checked(
            [sys.executable, "-c", probe],
            env={**env, "DJANGO_SETTINGS_MODULE": "project.settings"},
            cwd=tmp_path,
        )
    )
    assert configured == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "realtime.layers.InMemoryChannelLayer",
        True,
        "apps.common.mail.ConsoleEmailBackend",
    ]
    run_checked([sys.executable, "manage.py", "migrate", "--noinput"], env=env, cwd=tmp_path)
    with daphne_server(env=env, cwd=tmp_path) as base_url, httpx.Client(base_url=base_url) as web:
        assert web.get("/readyz").status_code == 200
        credentials = {"username": "newcomer", "password": "a-Strong-passw0rd"}
        registered = web.post(
            "/api/v1/auth/register/", json={**credentials, "email": "new@example.com"}
        )
        assert registered.status_code == 201, registered.text
        tokens = web.post("/api/v1/auth/login/", json=credentials).json()
        headers = {"Authorization": f"Bearer {tokens['access']}"}
        stream_url = base_url.replace("http://", "ws://") + "/ws/tasks/"
        with ws_connect(stream_url, subprotocols=["bearer", tokens["access"]]) as stream:
            assert json.loads(stream.recv(timeout=10))["type"] == "hello"
            created = web.post("/api/v1/tasks/", json={"title": "First"}, headers=headers)
            assert created.status_code == 201, created.text
            live = json.loads(stream.recv(timeout=10))
        assert (live["type"], live["seq"], live["task"]["title"]) == ("task.created", 1, "First")
        listed = web.get("/api/v1/tasks/", headers=headers).json()
        assert [task["title"] for task in listed["results"]] == ["First"]
    assert (tmp_path / "db.sqlite3").exists()


@pytest.mark.e2e  # starts processes
def test_production_mode_refuses_the_development_secret_key():
    env = base_env(DJANGO_DEBUG="false", DJANGO_SETTINGS_MODULE="project.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def _pooled_backends(application_name: str) -> set[tuple[int, object]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return set(cursor.fetchall())


@pytest.mark.e2e  # starts processes
def test_requests_reuse_pooled_database_connections(ana):
    """Under daphne, requests borrow connections from the pool: after many requests the
    server holds the same PostgreSQL sessions it had, none opened per request."""
    name = "taskhub-pool-test"
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(application_name=name),
        REDIS_URL=os.environ["REDIS_URL"],
    )
    with daphne_server(env=env) as base_url, httpx.Client(base_url=base_url) as web:
        assert web.get("/api/v1/tasks/", headers=auth(ana)).status_code == 200
        before = _pooled_backends(name)
        for _ in range(40):
            assert web.get("/api/v1/tasks/", headers=auth(ana)).status_code == 200
        after = _pooled_backends(name)
    assert before, "the server holds no pooled connection after a request"
    assert after == before


def _production_env(tmp_path, **extra: str) -> dict:
    return base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="production-test-" + "k" * 40,
        **extra,
    )


@pytest.mark.e2e  # starts processes
def test_production_mode_redirects_plain_http_to_https(tmp_path):
    with daphne_server(env=_production_env(tmp_path)) as base_url:
        response = httpx.get(f"{base_url}/api/v1/tasks/", headers={"Host": "localhost"})
    assert response.status_code == 301
    assert response.headers["location"] == "https://localhost/api/v1/tasks/"


@pytest.mark.e2e  # starts processes
def test_production_mode_sends_security_headers_behind_a_tls_proxy(tmp_path):
    env = _production_env(tmp_path, DJANGO_TRUST_X_FORWARDED_PROTO="true")
    with daphne_server(env=env) as base_url:
        response = httpx.get(
            f"{base_url}/healthz", headers={"Host": "localhost", "X-Forwarded-Proto": "https"}
        )
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["strict-transport-security"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"

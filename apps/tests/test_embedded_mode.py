"""The embedded mode (no DATABASE_URL server, no REDIS_URL) as a newcomer starts it: the
web tier of compose/django/start on SQLite, jobs in-process, emails on the console. Its
log says what happened once, and nothing that is not so."""

import re
import sys

import httpx
import pytest

from apps.common.mail import END, START
from apps.tests.processes import base_env, run_checked, web_tier

pytestmark = pytest.mark.e2e

PASSWORD = "a-Strong-passw0rd"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """One embedded web tier in which ana registers, as does bob, and ana creates a task
    assigned to bob (two emails); yields the tier once both emails are printed, and the
    task's id."""
    database = tmp_path_factory.mktemp("embedded") / "db.sqlite3"
    env = {
        key: value
        for key, value in base_env(DATABASE_URL=f"sqlite:///{database}").items()
        if key not in ("SITE_URL", "PORT", "LOG_FORMAT")
    }
    run_checked([sys.executable, "manage.py", "migrate", "--noinput"], env=env)
    with web_tier(env=env, processes=1) as tier, httpx.Client(base_url=tier.base_url) as web:
        for name in ("ana", "bob"):
            registered = web.post(
                "/api/v1/auth/register/",
                json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
            assert registered.status_code == 201, registered.text
        bob_id = registered.json()["id"]
        login = web.post("/api/v1/auth/login/", json={"username": "ana", "password": PASSWORD})
        created = web.post(
            "/api/v1/tasks/",
            json={"title": "Ship it", "assignee": bob_id},
            headers={"Authorization": f"Bearer {login.json()['access']}"},
        )
        assert created.status_code == 201, created.text
        tier.wait_for("two emails printed", lambda: tier.log().count(END) == 2, timeout=20)
        yield tier, created.json()["id"]


def test_readyz_says_what_the_embedded_mode_runs_in_process(embedded):
    tier, _ = embedded
    response = httpx.get(f"{tier.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "cache": "in-process",
            "jobs": "in-process",
            "channel_layer": "in-process",
        },
    }


def test_queueing_a_job_in_process_warns_of_no_missing_broker_hostname(embedded):
    tier, _ = embedded
    assert "No hostname was supplied" not in tier.log()


def test_each_job_is_logged_once_by_its_own_line(embedded):
    tier, _ = embedded
    log = tier.log()
    assert len(re.findall(r"INFO apps\.tasks\.jobs: email \d+: sent", log)) == 2
    assert "celery.app.trace" not in log


def test_emails_print_as_blocks_whose_links_use_the_port_served(embedded):
    tier, task_id = embedded
    port = tier.base_url.rsplit(":", 1)[1]
    log = tier.log()
    for name in ("ana", "bob"):
        block = (
            f"{START}\nTo: {name}@example.com\nSubject: Task “Ship it” has been created\n"
            f"Also sent as: text/html\n\nHello {name},\n\n"
            "Task “Ship it” has been created by ana.\n\nStatus: To do\nDue: no due date\n\n"
            f"Open it: http://localhost:{port}/?task={task_id}\n{END}\n"
        )
        assert block in log


def test_projects_members_tasks_and_comments_work_on_sqlite(embedded):
    """The embedded mode's SQLite has no row locks and no arrays: the project rules
    (`__any`, the audience read) take their SQLite forms."""
    tier, _ = embedded
    with httpx.Client(base_url=tier.base_url, timeout=10) as web:
        tokens = {
            name: web.post(
                "/api/v1/auth/login/", json={"username": name, "password": PASSWORD}
            ).json()["access"]
            for name in ("ana", "bob")
        }

        def call(name, method, path, body=None):
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            return web.request(method, path, json=body, headers=headers)

        project = call("ana", "POST", "/api/v1/projects/", {"name": "Embedded"})
        assert project.status_code == 201, project.text
        again = call("ana", "POST", "/api/v1/projects/", {"name": "EMBEDDED"})
        assert again.status_code == 400, again.text
        assert "name" in again.json()["errors"]
        members = f"/api/v1/projects/{project.json()['id']}/members/"
        added = call("ana", "POST", members, {"user": "bob", "role": "member"})
        assert added.status_code == 201, added.text
        task = call(
            "ana", "POST", "/api/v1/tasks/", {"title": "Ours", "project": project.json()["id"]}
        )
        assert task.status_code == 201, task.text
        task_path = f"/api/v1/tasks/{task.json()['id']}/"
        listed = call("bob", "GET", f"/api/v1/tasks/?project={project.json()['id']}")
        assert [row["id"] for row in listed.json()["results"]] == [task.json()["id"]]
        comment = call("bob", "POST", f"{task_path}comments/", {"body": "On it"})
        assert comment.status_code == 201, comment.text
        events = call("ana", "GET", "/api/v1/events/?limit=200").json()["results"]
        assert "comment.created" in {event["type"] for event in events}
        removed = call("ana", "DELETE", f"{members}{added.json()['user']['id']}/")
        assert removed.status_code == 204, removed.text
        assert call("bob", "GET", task_path).status_code == 404

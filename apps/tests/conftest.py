"""Shared fixtures. The suite runs against the real components: PostgreSQL and a
password-protected Redis (scripts/test provides both); without them it stops at once."""

import os
from contextlib import contextmanager

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.tasks import services
from apps.tasks.models import Membership, Project
from apps.users.models import Role, User

PASSWORD = "a-Strong-passw0rd"


def pytest_configure(config):
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        pytest.exit(
            f"The tests need real PostgreSQL and Redis, but {', '.join(missing)} is not set. "
            "Run them with scripts/test, which provides both.",
            returncode=2,
        )
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit("DATABASE_URL must name PostgreSQL for the tests.", returncode=2)


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_cache(settings):
    """Cheap password hashing, and no throttle counts carried over between tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
async def _release_orm_thread_connection():
    """ORM calls that a test makes through `sync_to_async` run in asgiref's shared worker
    thread; hand its connection back after each test so that no session outlives the
    test database (which pytest-django could then not drop)."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def api():
    """An HTTP client that speaks to the whole ASGI application (middleware included)."""
    from project.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def make_user(django_db_blocker):
    counter = iter(range(1, 10_000))

    def make(username=None, *, role=Role.MEMBER, **extra) -> User:
        name = username or f"user{next(counter)}"
        with django_db_blocker.unblock():
            return User.objects.create_user(
                username=name, email=f"{name}@example.com", password=PASSWORD, role=role, **extra
            )

    return make


@pytest.fixture
def ana(make_user):
    return make_user("ana")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def eve(make_user):
    """A stranger to ana's and bob's tasks."""
    return make_user("eve")


@pytest.fixture
def root(make_user):
    return make_user("root", role=Role.ADMIN)


async def run_relay_once() -> int:
    """Publish every committed, unpublished event as the relay process does when woken;
    returns how many it published."""
    from realtime.relay import EventRelay, connect_database

    relay = EventRelay()
    try:
        async with await connect_database() as connection:
            return await relay.publish_pending(connection)
    finally:
        await relay.close()


async def in_db(func, /, *args, **kwargs):
    """Run sync ORM work from an async test body (the fixture above closes that thread's
    connection after the test)."""
    return await sync_to_async(func)(*args, **kwargs)


def seqs(events: list[dict]) -> list[int]:
    """The `seq` of each event, in order."""
    return [event["seq"] for event in events]


def auth(user: User) -> dict[str, str]:
    """Headers that authenticate as `user` with a fresh access token."""
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def assert_problem(response: httpx.Response, status: int) -> dict:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


@contextmanager
def queries_on_every_new_connection():
    """Record the SQL run on database connections opened meanwhile, in any thread: under
    ASGI the view's database work runs in a worker thread with a connection of its own."""
    executed = []
    wrapped = []

    def record(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)
            wrapped.append(connection)

    connection_created.connect(on_connect)
    try:
        yield executed
    finally:
        connection_created.disconnect(on_connect)
        for wrapper in wrapped:
            if record in wrapper.execute_wrappers:
                wrapper.execute_wrappers.remove(record)


# The rows migrate made, which Django's post_migrate signal would make again after each
# flush: kept, so that the signal (skipped below) has nothing to redo.
KEPT_ON_FLUSH = {"django_content_type", "auth_permission"}


@pytest.fixture(scope="session", autouse=True)
def _flush_by_deleting_rows():
    """After each transactional test Django empties the database with a TRUNCATE of
    every table (a new file for each in PostgreSQL), then recreates the content types and
    permissions: most of a fast test's time. Deleting the rows of the tables that have any
    (foreign keys are checked at commit), and keeping the rows migrate made, leaves the
    same database several times sooner. (Deleting users fires their state trigger's
    NOTIFY; no test's listener is still there to hear it.)"""
    from django.core.management.commands import flush
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences:
            return truncate(self, style, tables, reset_sequences=True, allow_cascade=allow_cascade)
        tables = [table for table in tables if table not in KEPT_ON_FLUSH]
        if not tables:
            return []
        quote = self.quote_name
        probe = " UNION ALL ".join(
            f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables
        )
        with self.connection.cursor() as cursor:
            cursor.execute(probe, tables)
            return [f"DELETE FROM {quote(table)}" for (table,) in cursor.fetchall()]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        patch.setattr(flush, "emit_post_migrate_signal", lambda *args, **kwargs: None)
        yield


# --- Tasks, as the task tests share them ----------------------------------------------------

TASKS = "/api/v1/tasks/"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def task_url(task_id: str, action: str = "") -> str:
    return f"{TASKS}{task_id}/{action + '/' if action else ''}"


@pytest.fixture
def make_task(django_db_blocker):
    """Create a task through the service (so it has its `task.created` event); returns its
    representation. `fields` are model attributes (priority as a number, assignee_id)."""

    def make(creator, **fields) -> dict:
        fields.setdefault("title", "Plan the release")
        with django_db_blocker.unblock():
            return services.task_create(actor=creator, data=fields).body

    return make


@pytest.fixture
def change_task(django_db_blocker):
    """Apply a service call to a task outside any request (setup only)."""

    def change(service, task: dict, actor, **kwargs):
        with django_db_blocker.unblock():
            return service(task_id=task["id"], actor=actor, **kwargs)

    return change


@pytest.fixture
def people(ana, bob, eve, root):
    """The four relations a user can have to `task`."""
    return {"creator": ana, "assignee": bob, "stranger": eve, "admin": root}


@pytest.fixture
def task(make_task, ana, bob):
    """ana's task, assigned to bob."""
    return make_task(ana, assignee_id=bob.pk)


@pytest.fixture
def archived_task(task, change_task, ana):
    change_task(services.task_archive, task, ana)
    return task


@pytest.fixture
def updated_task(task, change_task, ana):
    """`task` after ana renamed it to "Newer": at version 2."""
    change_task(services.task_update, task, ana, data={"title": "Newer"})
    return task


@pytest.fixture
def unassigned_task(make_task, ana):
    return make_task(ana, title="Private")


async def read_task(api, task_id: str, as_user) -> dict:
    """The task as `as_user` reads it now."""
    response = await api.get(task_url(task_id), headers=auth(as_user))
    assert response.status_code == 200, response.text
    return response.json()


async def list_task_ids(api, user, **params) -> set[str]:
    response = await api.get(TASKS, params={"archived": "all", **params}, headers=auth(user))
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["results"]}


# --- Projects, as the project tests share them ----------------------------------------------

PROJECTS = "/api/v1/projects/"


def project_url(project_id, action: str = "") -> str:
    return f"{PROJECTS}{project_id}/{action + '/' if action else ''}"


@pytest.fixture
def make_project(django_db_blocker):
    """A project of `owner` with `members` ({user: role}), written straight to the tables
    (setup only: no events). Returns the Project."""

    def make(owner, *, name=None, members=None, **fields) -> Project:
        with django_db_blocker.unblock():
            project = Project.objects.create(
                name=name or f"Project {Project.objects.count() + 1}", created_by=owner, **fields
            )
            now = timezone.now()
            Membership.objects.create(project=project, user=owner, role="owner", added_at=now)
            for user, role in (members or {}).items():
                Membership.objects.create(project=project, user=user, role=role, added_at=now)
            return project

    return make

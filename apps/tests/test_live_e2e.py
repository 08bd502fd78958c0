"""End to end with the real processes: daphne serves the API and the stream, a separate
live relay publishes each committed event through the Redis channel layer, a Celery
worker sends its emails to a real SMTP server, and clients speak WebSocket and HTTP over
TCP.

The processes start once per module (the worker once for the tests that need it); the
database is flushed between tests, so each test makes its own users and tasks.
"""

import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from html import escape
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import connect

from apps.tests.conftest import PASSWORD, auth, seqs
from apps.tests.processes import (
    REPO,
    base_env,
    celery_worker,
    daphne_server,
    database_url_for_subprocess,
    live_relay,
    smtp_sink,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARRIVES = 10  # seconds to wait for something that should arrive
TASKS = "/api/v1/tasks/"
DUE = "2031-05-04T09:30:00Z"
LATER_DUE = "2031-06-01T17:00:00Z"
# What live_through_lifecycle() does: (event type, actor).
LIFECYCLE = [
    ("task.created", "ana"),
    ("task.updated", "bob"),  # the assignee starts work
    ("task.updated", "ana"),  # the creator hands it to carl, due later
    ("task.archived", "ana"),
    ("task.restored", "ana"),
    ("task.deleted", "ana"),
]
PUBLISHED_LINE = r"published (task\.\w+) task={task_id} .*ms after commit"


# --- Processes ------------------------------------------------------------------------------


def _worker_env(mailbox, **extra: str) -> dict:
    return base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        EMAIL_URL=mailbox.url,
        **extra,
    )


@pytest.fixture(scope="module")
def mailbox():
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def web_url(django_db_setup):
    """daphne serving the project against the test database and Redis."""
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        AUTH_THROTTLE_RATE="1000/min",  # the tests register and log in over and over
    )
    with daphne_server(env=env) as base_url:
        yield base_url


@pytest.fixture
async def web(web_url):
    async with httpx.AsyncClient(base_url=web_url, timeout=ARRIVES) as client:
        yield client


@pytest.fixture
def carl(make_user):
    return make_user("carl")


# --- Helpers --------------------------------------------------------------------------------


class StreamClient:
    """A WebSocket client of /ws/tasks/ over TCP, whose hello has been read."""

    def __init__(self, socket, hello: dict):
        self.socket = socket
        self.hello = hello

    async def receive(self) -> dict:
        return json.loads(await asyncio.wait_for(self.socket.recv(), ARRIVES))

    async def events(self, count: int) -> list[dict]:
        """The next `count` messages, each of which must be an event."""
        events = [await self.receive() for _ in range(count)]
        assert all("seq" in event for event in events), events
        return events

    async def assert_nothing_more(self) -> None:
        """Everything sent before a ping has arrived before its pong: nothing else may."""
        await self.socket.send(json.dumps({"type": "ping"}))
        assert await self.receive() == {"type": "pong"}


@asynccontextmanager
async def stream(web_url: str, user, *, after: int | None = None, via_subprotocol=False):
    """`user`'s connection to the stream; yields a StreamClient."""
    url = web_url.replace("http://", "ws://", 1) + "/ws/tasks/"
    if after is not None:
        url += f"?after={after}"
    token = str(AccessToken.for_user(user))
    options: dict[str, Any]
    if via_subprotocol:
        options = {"subprotocols": ["bearer", token]}
    else:
        options = {"additional_headers": {"Authorization": f"Bearer {token}"}}
    async with connect(url, open_timeout=ARRIVES, **options) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), ARRIVES))
        assert hello["type"] == "hello", hello
        assert hello["user"] == {"id": user.pk, "username": user.username}
        yield StreamClient(socket, hello)


async def call(web, method: str, path: str, user, expected: int = 200, **kwargs) -> Any:
    """The decoded JSON body of the response, None when it has none."""
    response = await web.request(method, path, headers=auth(user), **kwargs)
    assert response.status_code == expected, response.text
    return response.json() if response.content else None


async def live_through_lifecycle(web, *, ana, bob, carl, title: str) -> str:
    """Walk a task through LIFECYCLE over REST; returns its id."""
    task = await call(
        web, "POST", TASKS, ana, 201, json={"title": title, "assignee": bob.pk, "due_at": DUE}
    )
    url = f"{TASKS}{task['id']}/"
    await call(web, "PATCH", url, bob, json={"status": "in_progress"})
    await call(web, "PATCH", url, ana, json={"assignee": carl.pk, "due_at": LATER_DUE})
    await call(web, "POST", f"{url}archive/", ana)
    await call(web, "POST", f"{url}restore/", ana)
    await call(web, "DELETE", url, ana, 204)
    return task["id"]


def kinds(events: list[dict]) -> list[tuple[str, str]]:
    return [(event["type"], event["actor"]["username"]) for event in events]


async def wait_for_log(worker, pattern: str, count: int) -> list[str]:
    """Wait until the worker's output holds `count` matches of `pattern`; returns them."""
    deadline = time.monotonic() + ARRIVES
    while len(found := re.findall(pattern, worker.log())) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(found)} of {count} log lines matching {pattern!r} within {ARRIVES}s:\n"
                f"{worker.log()}"
            )
        await asyncio.sleep(0.1)
    return found


# --- With the worker ------------------------------------------------------------------------


@pytest.fixture(scope="class")
def worker(django_db_setup, mailbox):
    """The relay and the worker for TestWithWorker's tests, stopped when they are done;
    yields the relay (whose log tells what was published)."""
    env = _worker_env(mailbox)
    with celery_worker(env=env) as worker, live_relay(env=env) as relay:
        print(f"\nCelery worker ready {worker.startup_seconds:.2f}s after start")
        print(f"relay ready {relay.startup_seconds:.2f}s after start")
        yield relay


class TestWithWorker:
    """Everything that a running worker (text logs) delivers."""

    async def test_each_user_receives_the_events_of_tasks_they_see_in_order(
        self, web, web_url, worker, ana, bob, carl, eve
    ):
        async with (
            stream(web_url, ana) as ana_stream,
            stream(web_url, bob) as bob_stream,
            stream(web_url, eve, via_subprotocol=True) as eve_stream,
        ):
            task_id = await live_through_lifecycle(web, ana=ana, bob=bob, carl=carl, title="Plan")
            ana_events = await ana_stream.events(6)
            bob_events = await bob_stream.events(3)
            await ana_stream.assert_nothing_more()
            await bob_stream.assert_nothing_more()
            await eve_stream.assert_nothing_more()

        assert ana_stream.hello["last_seq"] == bob_stream.hello["last_seq"] == 0
        assert kinds(ana_events) == LIFECYCLE
        assert seqs(ana_events) == [1, 2, 3, 4, 5, 6]
        # Handed to carl, the task leaves bob's view with the change that did it.
        assert kinds(bob_events) == LIFECYCLE[:3]
        assert seqs(bob_events) == [1, 2, 3]
        assert {event["task"]["id"] for event in ana_events + bob_events} == {task_id}
        assert bob_events[1]["changes"] == {"status": ["todo", "in_progress"]}
        assert bob_events[2]["changes"] == {
            "assignee": [bob.pk, carl.pk],
            "due_at": [DUE, LATER_DUE],
        }
        assert ana_events[0]["task"]["title"] == "Plan"
        assert ana_events[-1]["task"] == {"id": task_id}
        assert eve_stream.hello["last_seq"] == 0

    async def test_reconnecting_with_after_delivers_exactly_the_missed_events(
        self, web, web_url, worker, ana, bob
    ):
        async with stream(web_url, bob) as bob_stream:
            async with stream(web_url, ana) as ana_stream:
                task = await call(
                    web, "POST", TASKS, ana, 201, json={"title": "Seam", "assignee": bob.pk}
                )
                url = f"{TASKS}{task['id']}/"
                await call(web, "PATCH", url, ana, json={"title": "Seam, renamed"})
                before = await ana_stream.events(2)
            # ana is away while these two are published live (bob sees them arrive).
            await call(web, "PATCH", url, bob, json={"status": "in_progress"})
            await call(web, "PATCH", url, ana, json={"priority": "high"})
            assert seqs(await bob_stream.events(4)) == [1, 2, 3, 4]

            async with stream(web_url, ana, after=before[-1]["seq"]) as ana_stream:
                await call(web, "POST", f"{url}archive/", ana)
                await call(web, "POST", f"{url}restore/", ana)
                after = await ana_stream.events(4)
                # The worker has published the last event to everyone: any duplicate of
                # it (or of the replayed ones) would have come before the pong.
                assert seqs(await bob_stream.events(2)) == [5, 6]
                await ana_stream.assert_nothing_more()

        assert seqs(before) == [1, 2]
        assert ana_stream.hello["last_seq"] == 4
        assert seqs(after) == [3, 4, 5, 6]
        assert [event["type"] for event in after] == [
            "task.updated",
            "task.updated",
            "task.archived",
            "task.restored",
        ]
        assert after[0]["changes"] == {"status": ["todo", "in_progress"]}
        assert after[1]["changes"] == {"priority": ["medium", "high"]}

    async def test_each_event_is_emailed_to_the_creator_and_the_assignee(
        self, web, worker, mailbox, ana, bob, carl
    ):
        title = f"Report {uuid.uuid4().hex[:8]}"
        task_id = await live_through_lifecycle(web, ana=ana, bob=bob, carl=carl, title=title)
        mails = await asyncio.to_thread(
            mailbox.wait_for, lambda mail: title in mail.message["Subject"], 12, ARRIVES
        )

        def subject(verb: str) -> str:
            return f"Task “{title}” has been {verb}"

        in_progress_before, in_progress_after = ("In progress", DUE), ("In progress", LATER_DUE)
        expected = [
            (subject("created"), "ana", ("To do", DUE)),
            (subject("created"), "bob", ("To do", DUE)),
            (subject("updated"), "ana", in_progress_before),
            (subject("updated"), "bob", in_progress_before),
            (subject("updated"), "ana", in_progress_after),
            (subject("updated"), "carl", in_progress_after),
            *(
                (subject(verb), name, in_progress_after)
                for verb in ("archived", "restored", "deleted")
                for name in ("ana", "carl")
            ),
        ]
        received = []
        for mail in mails:
            message = mail.message
            assert message.get_content_type() == "multipart/alternative"
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            status = re.search(r"^Status: ([^\r\n]+)", text, re.MULTILINE).group(1)
            due = re.search(r"^Due: ([^\r\n]+)", text, re.MULTILINE).group(1)
            (recipient,) = mail.rcpt_tos
            assert message["To"] == recipient
            received.append((message["Subject"], recipient.split("@")[0], (status, due)))
            link = f"/?task={task_id}"
            assert title in text
            assert link in text
            assert escape(title) in html
            assert escape(status) in html
            assert due in html
            assert re.search(rf'<a href="[^"]*{re.escape(escape(link))}"', html), html
        assert Counter(received) == Counter(expected)

    async def test_relay_logs_one_published_line_per_event(self, web, worker, ana, bob, carl):
        task_id = await live_through_lifecycle(web, ana=ana, bob=bob, carl=carl, title="Logged")
        published = await wait_for_log(worker, PUBLISHED_LINE.format(task_id=task_id), 6)
        assert Counter(published) == Counter(kind for kind, _ in LIFECYCLE)

    async def test_watch_events_script_prints_an_event_created_over_rest(
        self, web, web_url, worker
    ):
        # The script logs in with a password, so the user is registered through the API.
        credentials = {"username": "wendy", "password": PASSWORD}
        response = await web.post(
            "/api/v1/auth/register/", json={**credentials, "email": "wendy@example.com"}
        )
        assert response.status_code == 201, response.text
        script = await asyncio.create_subprocess_exec(
            sys.executable,
            "scripts/watch_events.py",
            *("--url", web_url, "--username", "wendy", "--password", PASSWORD),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            connected = await asyncio.wait_for(script.stderr.readline(), ARRIVES)
            assert "connected as wendy" in connected.decode(), connected
            tokens = (await web.post("/api/v1/auth/login/", json=credentials)).json()
            response = await web.post(
                TASKS,
                json={"title": "Watched"},
                headers={"Authorization": f"Bearer {tokens['access']}"},
            )
            assert response.status_code == 201, response.text
            line = (await asyncio.wait_for(script.stdout.readline(), ARRIVES)).decode()
        finally:
            if script.returncode is None:
                script.send_signal(signal.SIGINT)
            returncode = await asyncio.wait_for(script.wait(), ARRIVES)
        errors = (await script.stderr.read()).decode()

        assert f'#1  task.created  {response.json()["id"]} "Watched"  by wendy' in line
        assert returncode == 0, errors
        assert "Traceback" not in errors


# --- With a relay that logs JSON ------------------------------------------------------------


@pytest.fixture
def json_relay(django_db_setup, mailbox):
    """A relay of its own (outside TestWithWorker, so no other relay takes the events)."""
    with live_relay(env=_worker_env(mailbox, LOG_FORMAT="json")) as relay:
        yield relay


async def test_relay_json_log_lines_describe_each_published_event(web, json_relay, ana, bob):
    task = await call(web, "POST", TASKS, ana, 201, json={"title": "JSON", "assignee": bob.pk})
    await call(web, "PATCH", f"{TASKS}{task['id']}/", bob, json={"status": "done"})
    await wait_for_log(json_relay, PUBLISHED_LINE.format(task_id=task["id"]), 2)

    entries = [json.loads(line) for line in json_relay.log().splitlines() if line.strip()]
    assert all(isinstance(entry, dict) for entry in entries)
    published = [
        entry
        for entry in entries
        if entry["message"].startswith("published ") and entry.get("task_id") == task["id"]
    ]
    assert sorted(entry["event_type"] for entry in published) == ["task.created", "task.updated"]
    for entry in published:
        assert entry["task_id"] == task["id"]
        assert entry["recipients"] == sorted([ana.pk, bob.pk])
        assert isinstance(entry["published_ms_after_commit"], int | float)

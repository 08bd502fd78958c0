"""The fault suite as one command: `scripts/reliability [--quick] [--only NAME,...]`.

It starts every process of the product natively, as compose runs them, against
dependencies of its own: a throwaway PostgreSQL cluster (initdb), a password-protected
redis-server, a real SMTP sink (aiosmtpd, in a process of its own), the web tier
(compose/django/start: supervisord and two daphnes sharing a port), the live relay, a
Celery worker and beat. It plays compose's `restart: unless-stopped` for the relay and the
worker; supervisord restarts a daphne by itself.

Each fault runs under a steady load, as people use the product: writers PATCH tasks on a
fixed schedule (20 a second) while browser tabs (WebSockets) watch them, and the product
emails the assignee about each change. The load client behaves as the browser page does:
it retries a write that got a 503 (after `Retry-After`, at most 1 s here) or lost its
connection, and a tab whose socket drops reconnects with `?after=<last seq>`.

For each fault it prints the writes sent and their statuses, server errors, the events
expected, received, replayed after a reconnect, lost and duplicated, the emails expected,
received and duplicated, and how long the product took to recover. It exits with 1 if
anything was lost, duplicated or answered with a server error, or did not recover.

- an email sent twice (same Message-ID) counts as duplicated, with one exception: a
  Celery worker SIGKILLed after the mail server took a message and before the worker
  heard its 250 cannot know it went out (RFC 1047), so the worker fault allows one resend
  per send in flight, and says so.
- lost event: a seq of the user's stream, after the tab opened, that never reached it;
  duplicated: a seq that reached one tab twice (a reconnect's replay included).
- a write is *healthy* when its first attempt answered 2xx and its event reached every tab
  that should see it within 1 s. *Recovered* is how long after the fault ended (the
  service started again, or the process was killed) writes were healthy again, every
  one after that included.
- a server error: any 5xx answer other than the documented 503 with Retry-After, or a
  traceback in a log of the web tier during the bad-input set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.policy
import functools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: E402

from apps.tests.processes import (  # noqa: E402
    base_env,
    celery_beat,
    celery_worker,
    free_port,
    kill_process_group,
    live_relay,
    postgres_cluster,
    redis_server,
    run_checked,
    web_tier,
)

TASKS = "/api/v1/tasks/"
HEALTHY_DELAY = 1.0  # seconds from sending a write to its event on every tab
MAX_RETRY_WAIT = 5.0  # the load client honours Retry-After up to this
WRITE_GIVES_UP = 90.0  # seconds after which a write that keeps failing counts as failed
CAUGHT_UP = 60.0  # seconds the tabs have to receive every event after the load
EMAILS_SENT = 120.0  # seconds for every planned email; a lost send is re-queued after 30 s
RESTART_DELAY = 1.0  # compose restarts a dead container after about a second
WORKER_CONCURRENCY = 2  # as compose runs it (EMAIL_WORKER_CONCURRENCY)
CLOSE_UNAUTHORIZED = 4401


@dataclass(frozen=True)
class Pace:
    rate: float  # writes a second
    before: float  # seconds of load before the fault
    outage: float  # seconds a stopped service stays down
    after: float  # seconds of load after the fault ended


QUICK = Pace(rate=20, before=2, outage=3, after=5)
FULL = Pace(rate=20, before=5, outage=10, after=15)


def now() -> float:
    return time.monotonic()


# --- The product's processes ------------------------------------------------------------


class Supervised:
    """A product process that the command restarts after it dies, as compose would."""

    def __init__(self, launch: Callable[[], contextlib.AbstractContextManager]):
        self._launch = launch
        self._running: contextlib.AbstractContextManager | None = None
        self.process = None
        self._earlier_logs: list[str] = []

    def start(self) -> None:
        self._running = self._launch()
        self.process = self._running.__enter__()

    def kill(self) -> None:
        """SIGKILL it and its children, as a crash or the OOM killer would."""
        kill_process_group(self.process.process)
        self.stop()

    def stop(self) -> None:
        if self._running is not None:
            self._earlier_logs.append(self.process.log())
            self._running.__exit__(None, None, None)
            self._running = None

    def exited_by_itself(self) -> int | None:
        """Its exit status if it stopped without being killed (then it is started again,
        as compose would), else None."""
        status = self.process.process.poll()
        if status is not None:
            self.stop()
            self.start()
        return status

    def log(self) -> str:
        current = self.process.log() if self._running is not None else ""
        return "".join(self._earlier_logs) + current


@dataclass(frozen=True)
class Received:
    rcpt_tos: tuple[str, ...]
    message_id: str


class MaildirSink:
    """A real SMTP server (aiosmtpd) in a process of its own, keeping each message in a
    Maildir. In this process it shared the GIL with the load and the tabs: parsing a
    backlog of emails after an outage held up their clocks by seconds."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}"]
        args += ["-c", "aiosmtpd.handlers.Mailbox", str(directory / "maildir")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = now() + 15
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            if self.process.poll() is not None or now() > deadline:
                raise RuntimeError(f"the SMTP sink did not start ({args})")
            time.sleep(0.05)

    def messages(self) -> list[Received]:
        parser = BytesHeaderParser(policy=email.policy.default)
        received = []
        for path in (self.directory / "maildir" / "new").iterdir():
            headers = parser.parsebytes(path.read_bytes())
            rcpt = tuple(address.strip() for address in str(headers["X-RcptTo"]).split(","))
            received.append(Received(rcpt, str(headers["Message-ID"])))
        return received

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@contextlib.contextmanager
def maildir_sink():
    directory = Path(tempfile.mkdtemp(prefix="taskhub-smtp-"))
    sink = MaildirSink(directory)
    try:
        yield sink
    finally:
        sink.stop()
        shutil.rmtree(directory, ignore_errors=True)


class Stack:
    """The whole product and its dependencies, until the ExitStack closes."""

    def __init__(self, exits: contextlib.ExitStack):
        started = now()
        self.cluster = exits.enter_context(postgres_cluster())
        self.redis = exits.enter_context(redis_server())
        self.mailbox = exits.enter_context(maildir_sink())
        self.env = base_env(
            DATABASE_URL=self.cluster.url,
            REDIS_URL=self.redis.url,
            EMAIL_URL=self.mailbox.url,
            DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
            DJANGO_DEBUG="false",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            AUTH_THROTTLE_RATE="100000/min",
            API_USER_RATE="100000/min",
            WEB_CONCURRENCY="2",
        )
        run_checked([sys.executable, "manage.py", "migrate", "--noinput"], env=self.env)
        self.web = exits.enter_context(web_tier(env=self.env, processes=2))
        self.relay = Supervised(lambda: live_relay(env=self.env))
        self.worker = Supervised(
            lambda: celery_worker(env=self.env, purge=False, concurrency=WORKER_CONCURRENCY)
        )
        for process in (self.relay, self.worker):
            process.start()
            exits.callback(process.stop)
        self.beat = exits.enter_context(celery_beat(env=self.env))
        self.ws_url = self.web.base_url.replace("http://", "ws://", 1) + "/ws/tasks/"
        # The command's own ORM calls (users, stream heads, email records) see the same
        # database and Redis as the product.
        os.environ.update(
            {key: self.env[key] for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY")}
        )
        os.environ.update(DJANGO_DEBUG="false", DJANGO_SECURE_SSL_REDIRECT="false")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        # The command's own HTTP client and ORM calls are not what anyone wants to read.
        for name in ("httpx", "django", "apps", "realtime", ""):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("psycopg").setLevel(logging.ERROR)  # its pool, after an outage
        print(f"The stack is up in {now() - started:.1f} s: {self.web.base_url}", flush=True)

    def web_log_size(self) -> int:
        return len(self.web.log())

    def keep_logs(self, directory: Path) -> None:
        """Every process's output, restarts included, into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        logs = {
            "web": self.web.log(),
            "relay": self.relay.log(),
            "worker": self.worker.log(),
            "beat": self.beat.log(),
            "postgres": self.cluster.log(),
            "redis": self.redis.log(),
        }
        for name, text in logs.items():
            (directory / f"{name}.log").write_text(text)


def orm(function, *args):
    """Run an ORM call on a thread and hand its connection back (the database may be
    restarted between two calls)."""

    def call():
        from django.db import connections

        try:
            return function(*args)
        finally:
            connections.close_all()

    return asyncio.to_thread(call)


# --- People, tasks, tabs -----------------------------------------------------------------


@dataclass
class Person:
    id: int
    username: str
    email: str
    token: str

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def make_people(prefix: str, names: tuple[str, ...]) -> dict[str, Person]:
    """Users named `<prefix>-<name>`. The writer (the first) is emailed about others'
    changes only, so each write plans one email: to the assignee."""
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.users.models import EmailNotifications, User

    people = {}
    for index, name in enumerate(names):
        username = f"{prefix}-{name}"
        user = User.objects.create_user(
            username,
            f"{username}@example.com",
            secrets.token_urlsafe(16),
            email_notifications=EmailNotifications.OTHERS if index == 0 else "all",
        )
        token = str(AccessToken.for_user(user))
        people[name] = Person(user.pk, username, user.email, token)
    return people


@dataclass
class Arrival:
    seq: int
    at: float
    replayed: bool
    task: str | None
    version: int | None


class Tab:
    """One browser tab of a person: reads the live stream, and when the socket drops
    (not when access is revoked: 4401) reconnects with `?after=<last seq>`, as the page
    does."""

    def __init__(self, url: str, person: Person):
        self.url = url
        self.person = person
        self.arrivals: list[Arrival] = []
        self.seq_at_open = 0
        self.reconnects = 0
        self.reconnect_seconds: list[float] = []
        self.close_codes: list[int | None] = []
        self.revoked_at: float | None = None
        self.errors: list[dict] = []
        self._stopping = False
        self._reader: asyncio.Task | None = None

    async def open(self) -> None:
        socket, hello = await self._connect("")
        self.seq_at_open = hello["last_seq"]
        self._reader = asyncio.create_task(self._run(socket, replay_until=0))

    async def _connect(self, query: str):
        socket = await connect(
            self.url + query, additional_headers=self.person.auth, open_timeout=5
        )
        hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if hello.get("type") != "hello":
            await socket.close()
            raise ConnectionError(f"expected a hello, got {hello}")
        return socket, hello

    def last_seq(self) -> int:
        return max((arrival.seq for arrival in self.arrivals), default=self.seq_at_open)

    async def _run(self, socket, replay_until: int) -> None:
        while True:
            with contextlib.suppress(ConnectionClosed):
                async for raw in socket:
                    self._keep(json.loads(raw), replay_until)
            self.close_codes.append(socket.close_code)
            if socket.close_code == CLOSE_UNAUTHORIZED:
                self.revoked_at = now()
                return
            if self._stopping:
                return
            dropped = now()
            while not self._stopping:
                try:
                    socket, hello = await self._connect(f"?after={self.last_seq()}")
                    break
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                    await asyncio.sleep(0.2)
            else:
                return
            self.reconnects += 1
            self.reconnect_seconds.append(now() - dropped)
            replay_until = hello["last_seq"]

    def _keep(self, message: dict, replay_until: int) -> None:
        if "seq" not in message:
            if message.get("type") == "error":
                self.errors.append(message)
            return
        task = message.get("task") or {}
        self.arrivals.append(
            Arrival(
                seq=message["seq"],
                at=now(),
                replayed=message["seq"] <= replay_until,
                task=task.get("id"),
                version=task.get("version"),
            )
        )

    async def close(self) -> None:
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# --- The load ----------------------------------------------------------------------------


@dataclass
class Write:
    sent: float
    task: str
    first_status: str = ""
    statuses: list[str] = field(default_factory=list)
    version: int | None = None
    acked: float | None = None
    server_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.acked is not None


def status_name(response: httpx.Response) -> str:
    """`503+Retry-After` is the documented answer while a dependency is down."""
    if response.status_code == 503 and response.headers.get("Retry-After"):
        return "503+Retry-After"
    return str(response.status_code)


async def send_write(client: httpx.AsyncClient, writer: Person, write: Write, body: dict) -> None:
    """PATCH one task, retrying as the page does until it is acknowledged."""
    url = f"{TASKS}{write.task}/"
    while True:
        retry_in = 0.25
        try:
            response = await client.patch(url, json=body, headers=writer.auth)
        except httpx.TransportError as error:
            write.statuses.append(f"dropped ({type(error).__name__})")
        else:
            name = status_name(response)
            write.statuses.append(name)
            if response.is_success:
                write.version = response.json()["version"]
                write.acked = now()
            elif response.status_code >= 500 and name != "503+Retry-After":
                write.server_errors += 1
            elif name == "503+Retry-After" or response.status_code == 429:
                retry_in = min(float(response.headers.get("Retry-After", 1)), MAX_RETRY_WAIT)
            else:
                break  # a 4xx: the write is refused, and counted as failed
        if write.acked is not None or now() - write.sent > WRITE_GIVES_UP:
            break
        await asyncio.sleep(retry_in)
    write.first_status = write.statuses[0]


class Load:
    """Writes on a fixed schedule (each at its time, whatever the earlier ones did),
    round-robin over the tasks, until `stop()`."""

    def __init__(self, client: httpx.AsyncClient, writer: Person, tasks: list[str], rate: float):
        self.client, self.writer, self.tasks, self.rate = client, writer, tasks, rate
        self.writes: list[Write] = []
        self._stop_at: float | None = None
        self._runner = asyncio.create_task(self._run())

    async def _run(self) -> None:
        started, pending = now(), []
        for index in range(10**9):
            due = started + index / self.rate
            if self._stop_at is not None and due >= self._stop_at:
                break
            await asyncio.sleep(max(0.0, due - now()))
            write = Write(sent=now(), task=self.tasks[index % len(self.tasks)])
            self.writes.append(write)
            body = {"description": f"write {index}"}
            pending.append(asyncio.create_task(send_write(self.client, self.writer, write, body)))
        await asyncio.gather(*pending)

    async def stop(self) -> list[Write]:
        self._stop_at = now()
        await self._runner
        return self.writes


# --- A scenario --------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    writes: list[Write] = field(default_factory=list)
    events_expected: int = 0
    events_received: int = 0
    events_replayed: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    emails_expected: int = 0
    emails_received: int = 0
    emails_duplicated: int = 0
    # Sends that a SIGKILL may catch after the mail server took the message, before the
    # worker heard its 250 (RFC 1047): no sender can know those went out.
    emails_in_flight_at_kill: int = 0
    emails_seconds: float | None = None
    recovered: float | None = None
    server_errors: int = 0
    problems: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)


class Scene:
    """The people, tasks and tabs of one fault, and the load on them."""

    def __init__(self, stack: Stack, name: str, client: httpx.AsyncClient):
        self.stack, self.name, self.client = stack, name, client
        self.prefix = f"{re.sub(r'[^a-z]+', '-', name.lower()).strip('-')}-{uuid.uuid4().hex[:6]}"
        self.people: dict[str, Person] = {}
        self.tasks: dict[str, str] = {}  # task id -> assignee name
        self.tabs: list[Tab] = []
        self.outcome = Outcome(name)
        self.fault_at = self.fault_ended = 0.0

    async def setup(self, names=("ana", "bob"), tabs=(("ana", 2), ("bob", 2)), tasks=None):
        self.people = await orm(make_people, self.prefix, names)
        writer = self.people[names[0]]
        for assignee in tasks or ["bob", "bob", "bob"]:
            response = await self.client.post(
                TASKS,
                json={"title": f"{self.name}: watched", "assignee": self.people[assignee].id},
                headers={**writer.auth, "Idempotency-Key": uuid.uuid4().hex},
            )
            response.raise_for_status()
            self.tasks[response.json()["id"]] = assignee
        for name, count in tabs:
            for _ in range(count):
                tab = Tab(self.stack.ws_url, self.people[name])
                await tab.open()
                self.tabs.append(tab)

    def tabs_of(self, name: str) -> list[Tab]:
        return [tab for tab in self.tabs if tab.person is self.people[name]]

    async def under_load(self, pace: Pace, fault: Callable[[], Awaitable[None]]) -> None:
        """The load, with `fault` after `pace.before` seconds; it sets fault_at and
        fault_ended."""
        writer = next(iter(self.people.values()))
        load = Load(self.client, writer, list(self.tasks), pace.rate)
        await asyncio.sleep(pace.before)
        await fault()
        await asyncio.sleep(pace.after)
        self.outcome.writes = await load.stop()

    async def account(self, *, watched: list[Tab] | None = None, stream_ends=None) -> Outcome:
        """Wait for every event and email, then count. `stream_ends` may cap what a
        person is owed (a deactivated one is owed nothing after the deactivation)."""
        outcome = self.outcome
        watched = self.tabs if watched is None else watched
        heads = await orm(stream_heads, [person.id for person in self.people.values()])
        heads.update(stream_ends or {})
        owed = {id(tab): range(tab.seq_at_open + 1, heads[tab.person.id] + 1) for tab in watched}
        deadline = now() + CAUGHT_UP
        while now() < deadline and any(  # noqa: ASYNC110 (a poll of the tabs' progress)
            not set(owed[id(tab)]) <= {a.seq for a in tab.arrivals} for tab in watched
        ):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # anything sent twice would come now
        for tab in watched:
            seqs = [arrival.seq for arrival in tab.arrivals if arrival.seq in owed[id(tab)]]
            outcome.events_expected += len(owed[id(tab)])
            outcome.events_received += len(set(seqs))
            outcome.events_replayed += sum(
                1 for arrival in tab.arrivals if arrival.replayed and arrival.seq in owed[id(tab)]
            )
            outcome.events_lost += len(set(owed[id(tab)]) - set(seqs))
            outcome.events_duplicated += len(seqs) - len(set(seqs))
        await self.account_emails()
        self.account_writes(watched)
        return outcome

    async def account_emails(self) -> None:
        outcome = self.outcome
        user_ids = [person.id for person in self.people.values()]
        started = now()
        while await orm(unsent_emails, user_ids) and now() - started < EMAILS_SENT:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        outcome.emails_seconds = now() - self.fault_ended
        unsent = await orm(unsent_emails, user_ids)
        if unsent:
            outcome.problems.append(f"{unsent} emails unsent after {EMAILS_SENT:.0f} s")
        outcome.emails_expected = await orm(planned_emails, user_ids)
        addresses = {person.email for person in self.people.values()}
        ids = Counter(
            mail.message_id
            for mail in self.stack.mailbox.messages()
            if addresses & set(mail.rcpt_tos)
        )
        outcome.emails_received = len(ids)
        outcome.emails_duplicated = sum(count - 1 for count in ids.values())

    def account_writes(self, watched: list[Tab]) -> None:
        """Server errors, writes that never went through, and when they were healthy
        again: first attempt 2xx and the event on every tab of its people in 1 s."""
        outcome = self.outcome
        outcome.server_errors += sum(write.server_errors for write in outcome.writes)
        failed = [write for write in outcome.writes if not write.ok]
        if failed:
            outcome.problems.append(
                f"{len(failed)} writes never acknowledged: "
                f"{Counter(write.statuses[-1] for write in failed)}"
            )
        writer_name = next(iter(self.people))
        arrivals: dict[tuple, list[float]] = {}
        for tab in watched:
            for arrival in tab.arrivals:
                arrivals.setdefault((id(tab), arrival.task, arrival.version), []).append(arrival.at)
        missing = 0

        def healthy(write: Write) -> bool:
            nonlocal missing
            if not write.ok:
                return False
            people = {self.people[writer_name].id, self.people[self.tasks[write.task]].id}
            tabs = [tab for tab in watched if tab.person.id in people]
            times = [arrivals.get((id(tab), write.task, write.version)) for tab in tabs]
            if not all(times):
                missing += 1
                return False
            return write.first_status.startswith("2") and (
                max(min(found) for found in times) - write.sent <= HEALTHY_DELAY
            )

        states = [(write, healthy(write)) for write in outcome.writes]
        if missing:
            outcome.problems.append(f"{missing} acknowledged writes never reached a tab")
        after_fault = [(write, ok) for write, ok in states if write.sent >= self.fault_at]
        unhealthy = [index for index, (_, ok) in enumerate(after_fault) if not ok]
        if not unhealthy:
            outcome.recovered = 0.0
        elif unhealthy[-1] + 1 < len(after_fault):
            back = after_fault[unhealthy[-1] + 1][0].sent
            outcome.recovered = max(0.0, back - self.fault_ended)
        else:
            outcome.problems.append("writes were still not healthy when the load ended")
        late = Counter(
            write.first_status if not write.first_status.startswith("2") else "event after 1 s"
            for write, ok in states
            if not ok and write.sent >= self.fault_ended
        )
        if late:
            outcome.details.append(
                f"writes sent after the fault ended that were not healthy: {dict(late)}"
            )
        answered = sorted(
            write.acked - write.sent
            for write in outcome.writes
            if write.ok and len(write.statuses) == 1 and write.sent >= self.fault_ended
        )
        if answered:
            outcome.details.append(
                f"answer time of writes sent after the fault ended: p50 "
                f"{1000 * answered[len(answered) // 2]:.0f} ms, max {answered[-1]:.2f} s"
            )
        delays = sorted(
            min(found) - write.sent
            for write in outcome.writes
            if write.ok
            for tab in watched
            if (found := arrivals.get((id(tab), write.task, write.version)))
        )
        if delays:
            outcome.details.append(
                f"event delay from sending the write: p50 "
                f"{1000 * delays[len(delays) // 2]:.0f} ms, max {delays[-1]:.2f} s"
            )

    async def close(self) -> None:
        for tab in self.tabs:
            await tab.close()


def stream_heads(user_ids: list[int]) -> dict[int, int]:
    from apps.tasks.models import EventStream

    heads = dict.fromkeys(user_ids, 0)
    heads.update(
        EventStream.objects.filter(user_id__in=user_ids).values_list("user_id", "last_seq")
    )
    return heads


def unsent_emails(user_ids: list[int]) -> int:
    from apps.tasks.models import DeliveryStatus, EmailDelivery

    return (
        EmailDelivery.objects.filter(user_id__in=user_ids)
        .exclude(status=DeliveryStatus.SENT)
        .count()
    )


def planned_emails(user_ids: list[int]) -> int:
    from apps.tasks.models import EmailDelivery

    return EmailDelivery.objects.filter(user_id__in=user_ids).count()


# --- The faults --------------------------------------------------------------------------


def stopped(stop: Callable[[], None], start: Callable[[], None]):
    """A fault that stops a server as a crash would, for `pace.outage` seconds."""

    async def run(stack: Stack, scene: Scene, pace: Pace) -> None:
        async def fault():
            scene.fault_at = now()
            await asyncio.to_thread(stop)
            await asyncio.sleep(pace.outage)
            await asyncio.to_thread(start)
            scene.fault_ended = now()

        await scene.setup()
        await scene.under_load(pace, fault)
        await scene.account()

    return run


async def postgres_stopped(stack: Stack, scene: Scene, pace: Pace) -> None:
    crash = functools.partial(stack.cluster.stop, "immediate")
    await stopped(crash, stack.cluster.start)(stack, scene, pace)


async def redis_stopped(stack: Stack, scene: Scene, pace: Pace) -> None:
    # A crash: it keeps nothing on disk, so it comes back empty.
    crash = functools.partial(stack.redis.stop, signal.SIGKILL)
    await stopped(crash, stack.redis.start)(stack, scene, pace)


def killed(process: Supervised) -> Callable[[Stack, Scene, Pace], Awaitable[None]]:
    async def run(stack: Stack, scene: Scene, pace: Pace) -> None:
        async def fault():
            scene.fault_at = scene.fault_ended = now()
            await asyncio.to_thread(process.kill)
            await asyncio.sleep(RESTART_DELAY)
            await asyncio.to_thread(process.start)

        await scene.setup()
        await scene.under_load(pace, fault)
        await scene.account()

    return run


async def worker_killed(stack: Stack, scene: Scene, pace: Pace) -> None:
    scene.outcome.emails_in_flight_at_kill = WORKER_CONCURRENCY
    await killed(stack.worker)(stack, scene, pace)
    outcome = scene.outcome
    if 0 < outcome.emails_duplicated <= outcome.emails_in_flight_at_kill:
        outcome.details.append(
            f"{outcome.emails_duplicated} email(s) went out twice, with the same Message-ID:"
            " the kill came after the mail server had taken the message and before the"
            " worker heard its 250 (RFC 1047's window; no SMTP sender can tell). Receivers"
            " that collapse a Message-ID show one."
        )


async def relay_killed(stack: Stack, scene: Scene, pace: Pace) -> None:
    await killed(stack.relay)(stack, scene, pace)


def socket_counts(port: int, daphnes: list[int]) -> Counter:
    """How many established connections each daphne holds on the web port."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pids = Counter(int(pid) for pid in re.findall(r"pid=(\d+)", listing))
    return Counter({pid: pids.get(pid, 0) for pid in daphnes})


async def daphne_killed(stack: Stack, scene: Scene, pace: Pace) -> None:
    async def fault():
        port = int(stack.web.base_url.rsplit(":", 1)[1])
        counts = socket_counts(port, stack.web.daphnes())
        victim, held = counts.most_common(1)[0]
        scene.fault_at = scene.fault_ended = now()
        os.kill(victim, signal.SIGKILL)
        scene.outcome.details.append(f"killed a daphne holding {held} connections")

    await scene.setup(tabs=(("ana", 3), ("bob", 3)))
    await scene.under_load(pace, fault)
    await scene.account()
    reconnects = [seconds for tab in scene.tabs for seconds in tab.reconnect_seconds]
    if not reconnects:
        scene.outcome.problems.append("no tab was on the killed daphne")
    else:
        scene.outcome.details.append(
            f"{len(reconnects)} tabs reconnected, the slowest after {max(reconnects):.2f} s"
        )


def deactivate(user_id: int) -> int:
    """Deactivate the user as the admin does (a save), with their stream locked so that
    no event can be added to it in between; returns its last seq then."""
    from django.db import transaction

    from apps.tasks.models import EventStream
    from apps.users.models import User

    with transaction.atomic():
        stream = EventStream.objects.select_for_update().filter(user_id=user_id).first()
        user = User.objects.get(pk=user_id)
        user.is_active = False
        user.save()
    return stream.last_seq if stream else 0


async def user_deactivated(stack: Stack, scene: Scene, pace: Pace) -> None:
    """Carol, with three tabs open on tasks that keep changing, is deactivated."""
    cutoff = {}

    async def fault():
        carol = scene.people["carol"]
        scene.fault_at = now()
        cutoff[carol.id] = await orm(deactivate, carol.id)
        scene.fault_ended = now()

    await scene.setup(
        names=("ana", "bob", "carol"),
        tabs=(("ana", 1), ("bob", 1), ("carol", 3)),
        tasks=["bob", "carol", "carol"],
    )
    carol_tabs = scene.tabs_of("carol")
    await scene.under_load(pace, fault)
    others = [tab for tab in scene.tabs if tab not in carol_tabs]
    await scene.account(watched=others)
    outcome = scene.outcome
    carol = scene.people["carol"]
    leaked = sum(
        1 for tab in carol_tabs for arrival in tab.arrivals if arrival.seq > cutoff[carol.id]
    )
    closes = [tab.revoked_at - scene.fault_at for tab in carol_tabs if tab.revoked_at]
    outcome.details.append(
        f"carol's {len(carol_tabs)} tabs closed with 4401: {len(closes)}, the last "
        f"{max(closes, default=float('nan')):.3f} s after the deactivation began; "
        f"events she received after it committed: {leaked}"
    )
    if len(closes) < len(carol_tabs) or max(closes) > 1.0:
        outcome.problems.append("a deactivated user's tab was not closed within 1 s")
    if leaked:
        outcome.problems.append(f"{leaked} events reached a deactivated user")
    with contextlib.suppress(ConnectionClosed):
        socket = await connect(stack.ws_url, additional_headers=carol.auth)
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            await asyncio.wait_for(socket.recv(), 5)
        if socket.close_code != CLOSE_UNAUTHORIZED:
            outcome.problems.append(f"a new socket of hers closed with {socket.close_code}")
        await socket.close()


# Odd but valid: a bound that far back matches nothing, and the list is empty.
VALID_BUT_ODD = {"due_before, year 1, +22:17"}


def bad_requests(person: Person, task: str) -> list[tuple[str, str, str, dict]]:
    """(what, method, path, httpx arguments): each must get a 4xx (VALID_BUT_ODD: a 200)."""
    task_url = f"{TASKS}{task}/"
    tasks = (TASKS, task_url)

    def raw(body: bytes, content_type: str = "application/json") -> dict:
        return {"content": body, "headers": {**person.auth, "Content-Type": content_type}}

    def body(data, **headers) -> dict:
        return {"json": data, "headers": {**person.auth, **headers}}

    get = {"headers": person.auth}
    requests = [
        ("malformed JSON", raw(b'{"title": ')),
        ("JSON 100,000 deep", raw(b"[" * 100_000 + b"]" * 100_000)),
        ("2 MiB body", raw(b'{"title": "' + b"x" * 2**21 + b'"}')),
        ("lone surrogate", raw(b'{"title": "\\ud800"}')),
        ("text/plain body", raw(b"title=x", "text/plain")),
        ("NUL in a title", body({"title": "a\x00b"})),
        ("title as a list", body({"title": ["x"]})),
        ("title of 10,000", body({"title": "x" * 10_000})),
        ("unknown field", body({"title": "x", "owner": 1})),
        ("metadata null", body({"title": "x", "metadata": None})),
        ("assignee text", body({"title": "x", "assignee": "abc"})),
        ("assignee 10**30", body({"title": "x", "assignee": 10**30})),
        ("Idempotency-Key of 1,000", body({"title": "x"}, **{"Idempotency-Key": "k" * 1000})),
    ]
    changes = [
        ("status unknown", "PATCH", body({"status": "nope"})),
        ("If-Match garbage", "PATCH", body({"title": "x"}, **{"If-Match": "zz"})),
        ("If-Match stale", "PATCH", body({"title": "x"}, **{"If-Match": '"1"'})),
        ("PUT without title", "PUT", body({"description": "x"})),
    ]
    reads = [
        ("limit=0", f"{TASKS}?limit=0", get),
        ("limit=10**30", f"{TASKS}?limit={10**30}", get),
        ("cursor garbage", f"{TASKS}?cursor=%ff%00", get),
        ("ordering unknown", f"{TASKS}?ordering=password", get),
        ("due_before, year 1, +22:17", f"{TASKS}?due_before=0001-01-01T00:00:00%2B22:17", get),
        ("status list unknown", f"{TASKS}?status=todo,nope", get),
        ("task id not a UUID", f"{TASKS}not-a-uuid/", get),
        ("no such task", f"{TASKS}{uuid.uuid4()}/", get),
        ("events after=-1", "/api/v1/events/?after=-1", get),
        ("token garbage", TASKS, {"headers": {"Authorization": "Bearer x.y.z"}}),
        ("no token", TASKS, {}),
    ]
    auth = [
        ("register: bad email", "register", {"username": "x", "email": "no", "password": "p"}),
        ("login: no fields", "login", {}),
        ("refresh: garbage", "refresh", {"refresh": "x"}),
    ]
    return [
        *((what, "POST", tasks[0], arguments) for what, arguments in requests),
        *((what, method, tasks[1], arguments) for what, method, arguments in changes),
        *((what, "GET", path, arguments) for what, path, arguments in reads),
        *((what, "POST", f"/api/v1/auth/{name}/", {"json": data}) for what, name, data in auth),
    ]


async def bad_frames(url: str, person: Person) -> list[tuple[str, str]]:
    """Bad WebSocket input, each on a socket of its own: (what, what came back)."""

    async def one(what: str, frames: list, query: str = "", headers=None) -> tuple[str, str]:
        got = []
        try:
            socket = await connect(
                url + query,
                additional_headers=person.auth if headers is None else headers,
                max_size=None,
                open_timeout=5,
            )
        except InvalidHandshake as error:
            return what, f"refused ({error})"
        try:
            for frame in frames:
                await socket.send(frame)
            # What it answers within 2 s (live events of the load are not counted).
            deadline = now() + 2
            with contextlib.suppress(TimeoutError):
                while now() < deadline:
                    raw = await asyncio.wait_for(socket.recv(), deadline - now())
                    message = json.loads(raw)
                    if message.get("type") in ("error", "hello", "pong"):
                        got.append(message["type"])
        except ConnectionClosed:
            pass
        finally:
            await socket.close()
        code = socket.close_code
        return what, ", ".join(got) + f" → closed {code}" if code != 1000 else ", ".join(got)

    deep = "[" * 100_000 + "]" * 100_000
    return [
        await one("binary frame", [b"\x00\x01"]),
        await one("JSON 100,000 deep", [deep]),
        await one("not JSON", ["{"]),
        await one("resume without after", [json.dumps({"type": "resume"})]),
        await one("unknown type", [json.dumps({"type": "shutdown"})]),
        await one("128 KiB frame", ["x" * 131_072]),
        await one("300 pings at once", [json.dumps({"type": "ping"})] * 300),
        await one("?after=abc", [], query="?after=abc"),
        await one("no token", [], headers={}),
    ]


async def bad_input(stack: Stack, scene: Scene, pace: Pace) -> None:
    """The bad-input set, sent while the load runs: each gets a clear 4xx (or error
    message and close code), nothing answers 5xx or logs a traceback, and the load and
    its events go on as if nothing happened."""
    results: dict[str, list] = {}
    log_from = stack.web_log_size()

    async def fault():
        scene.fault_at = scene.fault_ended = now()
        person = scene.people["ana"]
        task = next(iter(scene.tasks))
        answers = []
        for what, method, path, arguments in bad_requests(person, task):
            try:
                response = await scene.client.request(method, path, **arguments)
                answers.append((what, status_name(response)))
            except httpx.TransportError as error:
                answers.append((what, f"dropped ({type(error).__name__})"))
        results["http"] = answers
        results["ws"] = await bad_frames(stack.ws_url, person)

    await scene.setup()
    await scene.under_load(pace, fault)
    await scene.account()
    outcome = scene.outcome
    statuses = Counter(status for _, status in results["http"])
    refused = [
        f"{what}: {status}"
        for what, status in results["http"]
        if not status.startswith("4") and not (what in VALID_BUT_ODD and status == "200")
    ]
    outcome.server_errors += sum(1 for _, status in results["http"] if status.startswith("5"))
    outcome.details.append(f"{len(results['http'])} bad requests: {dict(sorted(statuses.items()))}")
    if refused:
        outcome.problems.append(f"bad requests not answered with a 4xx: {refused}")
    outcome.details.append(
        "bad WebSocket input: " + "; ".join(f"{what}: {got}" for what, got in results["ws"])
    )
    abnormal = [f"{what}: {got}" for what, got in results["ws"] if re.search(r"101[01]|None", got)]
    if abnormal:
        outcome.problems.append(f"WebSocket input that broke a socket: {abnormal}")
    log = stack.web.log()[log_from:]
    tracebacks = log.count("Traceback")
    outcome.server_errors += tracebacks
    outcome.details.append(f"tracebacks in the web tier's log: {tracebacks}")
    if tracebacks:
        first = log[log.index("Traceback") :].splitlines()[:40]
        outcome.details.append("the first:\n      " + "\n      ".join(first))


FAULTS: dict[str, tuple[str, Callable]] = {
    "postgres": ("PostgreSQL stopped", postgres_stopped),
    "redis": ("Redis stopped", redis_stopped),
    "worker": ("Celery worker SIGKILLed", worker_killed),
    "relay": ("live relay SIGKILLed", relay_killed),
    "daphne": ("daphne SIGKILLed", daphne_killed),
    "deactivation": ("user deactivated", user_deactivated),
    "bad-input": ("bad input", bad_input),
}


# --- Report ------------------------------------------------------------------------------


def report(outcome: Outcome, pace: Pace, stopped: bool) -> str:
    writes = outcome.writes
    first = Counter(write.first_status for write in writes)
    retried = sum(1 for write in writes if len(write.statuses) > 1)
    failed = sum(1 for write in writes if not write.ok)
    recovered = "no" if outcome.recovered is None else f"{outcome.recovered:.1f} s"
    if not outcome.problems:
        outcome.problems.extend(
            message
            for count, message in (
                (outcome.events_lost, f"{outcome.events_lost} events lost"),
                (outcome.events_duplicated, f"{outcome.events_duplicated} events duplicated"),
                (outcome.server_errors, f"{outcome.server_errors} server errors"),
                (outcome.emails_expected - outcome.emails_received, "emails lost"),
                (
                    outcome.emails_duplicated > outcome.emails_in_flight_at_kill,
                    f"{outcome.emails_duplicated} emails duplicated",
                ),
            )
            if count
        )
    title = outcome.name + (f" for {pace.outage:.0f} s" if stopped else "")
    lines = [
        f"== {title}: {'FAILED' if outcome.failed else 'ok'}",
        f"   writes: {len(writes)} sent, {len(writes) - failed} acknowledged, {retried} retried;"
        f" first answers {dict(sorted(first.items()))}; server errors {outcome.server_errors}",
        f"   events: expected {outcome.events_expected}, received {outcome.events_received}, "
        f"replayed {outcome.events_replayed}, lost {outcome.events_lost}, "
        f"duplicated {outcome.events_duplicated}",
        f"   emails: expected {outcome.emails_expected}, received {outcome.emails_received}, "
        f"duplicated {outcome.emails_duplicated}"
        + (
            f" (all sent {outcome.emails_seconds:.1f} s after the fault)"
            if outcome.emails_seconds is not None
            else ""
        ),
        f"   recovered: {recovered} after the fault ended",
        *(f"   {detail}" for detail in outcome.details),
        *(f"   PROBLEM: {problem}" for problem in outcome.problems),
    ]
    return "\n".join(lines)


def summary_row(outcome: Outcome) -> str:
    writes = outcome.writes
    recovered = "no" if outcome.recovered is None else f"{outcome.recovered:.1f}"
    return (
        f"| {outcome.name} | {len(writes)} | {sum(1 for write in writes if write.ok)} | "
        f"{outcome.server_errors} | {outcome.events_expected} | {outcome.events_received} | "
        f"{outcome.events_replayed} | {outcome.events_lost} | {outcome.events_duplicated} | "
        f"{outcome.emails_expected} | {outcome.emails_received} | "
        f"{outcome.emails_duplicated} | {recovered} |"
    )


async def run_faults(stack: Stack, names: list[str], pace: Pace) -> list[Outcome]:
    outcomes = []
    # Many people, many connections: a write does not wait for a connection of the client.
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=stack.web.base_url, timeout=15, limits=limits) as client:
        for name in names:
            title, run = FAULTS[name]
            scene = Scene(stack, title, client)
            started = now()
            try:
                await run(stack, scene, pace)
            except Exception as error:  # the report says what broke, and the next fault runs
                scene.outcome.problems.append(f"the run itself failed: {error!r}")
            finally:
                await scene.close()
            outcome = scene.outcome
            for what, process in (("the live relay", stack.relay), ("the worker", stack.worker)):
                status = process.exited_by_itself()
                if status is not None:
                    outcome.problems.append(f"{what} exited by itself ({status}); restarted")
            if stack.beat.process.poll() is not None:
                outcome.problems.append("Celery beat exited by itself")
            if stack.web.process.poll() is not None:
                outcome.problems.append("the web tier exited by itself")
            print(report(outcome, pace, name in ("postgres", "redis")), flush=True)
            print(f"   ({now() - started:.0f} s)", flush=True)
            outcomes.append(outcome)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter outages and load (CI)")
    parser.add_argument(
        "--only", default=",".join(FAULTS), help=f"a comma-separated choice of {', '.join(FAULTS)}"
    )
    parser.add_argument(
        "--logs", help="where every process's log is kept (default: a new temporary directory)"
    )
    options = parser.parse_args()
    names = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown or not names:
        parser.error(f"unknown faults {unknown}; choose from {', '.join(FAULTS)}")
    pace = QUICK if options.quick else FULL
    print(
        f"Faults: {', '.join(names)}; load {pace.rate:.0f} writes/s, outages of "
        f"{pace.outage:.0f} s{' (quick)' if options.quick else ''}.",
        flush=True,
    )
    started = now()
    # Stopped with SIGTERM (a CI timeout, kill), it still stops everything it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logs = Path(options.logs or tempfile.mkdtemp(prefix="taskhub-reliability-"))
    with contextlib.ExitStack() as exits:
        stack = Stack(exits)
        try:
            outcomes = asyncio.run(run_faults(stack, names, pace))
        finally:
            stack.keep_logs(logs)
    print(
        "\n| fault | writes | acknowledged | server errors | events expected | received | "
        "replayed | lost | duplicated | emails expected | received | duplicated | "
        "recovered (s) |\n|" + " --- |" * 13
    )
    print("\n".join(summary_row(outcome) for outcome in outcomes))
    failed = [outcome.name for outcome in outcomes if outcome.failed]
    print(
        f"\n{len(outcomes) - len(failed)} of {len(outcomes)} faults passed in "
        f"{now() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ".")
    )
    print(f"The processes' logs: {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

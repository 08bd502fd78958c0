"""Start the product's real processes (daphne, Celery workers, an SMTP sink, a private
Redis) for tests."""

import contextlib
import email.policy
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
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlencode

import httpx
import redis

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def database_url_for_subprocess(**query: str) -> str:
    """The test database as a DATABASE_URL, for the processes a test starts (extra
    connection options, such as application_name, go in the query)."""
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    suffix = f"?{urlencode(query)}" if query else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}{suffix}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_checked(args: list[str], *, env: dict, cwd: Path = REPO, timeout: float = 120) -> str:
    """Run a command to completion; fail with its output if it does not succeed."""
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def daphne_server(*, env: dict, cwd: Path = REPO, startup_timeout: float = 30):
    """Serve project.asgi:application with daphne on a spare port; yields the base URL."""
    port = free_port()
    log = (cwd / f".daphne-{port}.log").open("w+")
    process = subprocess.Popen(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"daphne exited with {process.returncode}:\n{log.read()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(
                    f"daphne did not serve within {startup_timeout}s:\n{log.read()}"
                )
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def process_command_line(pid: int) -> list[str]:
    """A running process's arguments, from /proc."""
    return Path(f"/proc/{pid}/cmdline").read_text().rstrip("\0").split("\0")


def child_processes(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: no psutil)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return sorted(children)


def daphne_processes(manager_pid: int) -> list[int]:
    """The daphne processes that the web tier's supervisord (`manager_pid`) runs."""
    daphnes = []
    for pid in child_processes(manager_pid):
        with contextlib.suppress(OSError):
            if any(Path(part).name == "daphne" for part in process_command_line(pid)):
                daphnes.append(pid)
    return daphnes


@dataclass
class WebTier:
    """The web tier as compose/django/start runs it: supervisord and its daphnes."""

    process: subprocess.Popen
    log_path: Path
    base_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def daphnes(self) -> list[int]:
        return daphne_processes(self.process.pid)

    def listening_daphnes(self) -> int:
        """How many daphnes have said they serve the socket so far (restarts included)."""
        return self.log().count("Listening on TCP address")

    def wait_for(self, what: str, condition, timeout: float = 60) -> None:
        """Wait until `condition()` is true; fail with the tier's output if it is not."""
        wait_while_running(self.process, self.log, what, condition, timeout)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM to supervisord, which stops its daphnes first; its exit status."""
        return terminate_expecting_exit(self.process, self.log, timeout)


def serves_healthz(base_url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    return False


@contextlib.contextmanager
def web_tier(*, env: dict, processes: int, cwd: Path = REPO):
    """compose/django/start on a spare port of 127.0.0.1 until the block ends; yields a
    WebTier once /healthz answers and all `processes` daphnes run."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="taskhub-web-"))
    log_path = log_dir / "web.log"
    env = {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}",
        "PYTHONUNBUFFERED": "1",
        "WEB_HOST": "127.0.0.1",
        "PORT": str(port),
        "TMPDIR": str(log_dir),  # supervisord's pid file goes there, and away with it
    }
    # Appending: supervisord reopens its stdout for its children's lines, so every writer
    # must add at the end rather than at its own offset.
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [str(cwd / "compose/django/start")],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tier = WebTier(process, log_path, f"http://127.0.0.1:{port}")
    try:
        tier.wait_for(f"{processes} daphne(s)", lambda: len(tier.daphnes()) == processes)
        tier.wait_for(
            f"{processes} daphne(s) listening", lambda: tier.listening_daphnes() >= processes
        )
        tier.wait_for("a 200 from /healthz", lambda: serves_healthz(tier.base_url))
        yield tier
    finally:
        with contextlib.suppress(AssertionError):
            tier.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


def base_env(**overrides: str) -> dict:
    """The current environment without the project's settings, plus `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(overrides)
    return env


@dataclass
class WorkerProcess:
    """A running background process of the product (a Celery worker, the live relay): its
    process, where its output goes, how long it took to be ready."""

    process: subprocess.Popen
    log_path: Path
    startup_seconds: float

    def log(self) -> str:
        """Everything the process has written so far (stdout and stderr together)."""
        return self.log_path.read_text(errors="replace")


_WORKER_READY = re.compile(r"@\S+ ready\.")
_RELAY_READY = re.compile(r"relay listening for committed events")


@contextlib.contextmanager
def celery_worker(
    *,
    env: dict,
    cwd: Path = REPO,
    concurrency: int = 2,
    purge: bool = True,
    startup_timeout: float = 60,
):
    """Run `celery -A project worker -l info` until the block ends; yields a WorkerProcess
    once the worker says it is ready. Unless `purge` is off (a worker taking over after a
    crash must find the jobs left queued), jobs left by earlier tests, whose events are
    gone, are purged first, so they cannot delay this test's jobs."""
    args = [str(BIN / "celery"), "-A", "project", "worker", "-l", "info"]
    args += ["--concurrency", str(concurrency), *(["--purge"] if purge else [])]
    with _background(args, _WORKER_READY, env=env, cwd=cwd, timeout=startup_timeout) as worker:
        yield worker


@contextlib.contextmanager
def live_relay(*, env: dict, cwd: Path = REPO, startup_timeout: float = 30):
    """Run `manage.py relay_events` until the block ends; yields a WorkerProcess once the
    relay listens for commits."""
    args = [sys.executable, "manage.py", "relay_events"]
    with _background(args, _RELAY_READY, env=env, cwd=cwd, timeout=startup_timeout) as relay:
        yield relay


@contextlib.contextmanager
def _background(args: list[str], ready: re.Pattern, *, env: dict, cwd: Path, timeout: float):
    log_dir = Path(tempfile.mkdtemp(prefix="taskhub-process-"))
    log_path = log_dir / "process.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children (a worker's pool) go down with it
        )
    running = WorkerProcess(process, log_path, startup_seconds=0.0)
    try:
        deadline = started + timeout
        while not ready.search(running.log()):
            if process.poll() is not None:
                raise AssertionError(f"{args} exited with {process.returncode}:\n{running.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{args} not ready within {timeout}s:\n{running.log()}")
            time.sleep(0.05)
        running.startup_seconds = time.monotonic() - started
        yield running
    finally:
        _stop_process_group(process)
        shutil.rmtree(log_dir, ignore_errors=True)


def terminate_expecting_exit(process: subprocess.Popen, log, timeout: float) -> int:
    """SIGTERM the process and return its exit status; fail, with `log()`, if it is still
    running after `timeout` (its group is SIGKILLed then)."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"it did not stop on SIGTERM within {timeout}s:\n{log()}") from None


def wait_while_running(process: subprocess.Popen, log, what: str, condition, timeout: float):
    """Wait until `condition()` is true; fail, with `log()`, if `process` exits first or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"it exited ({process.returncode}) before {what}:\n{log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s:\n{log()}")
        time.sleep(0.1)


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and its children (a crash: no shutdown of any kind)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a warm shutdown for Celery), then SIGKILL to the whole group if needed."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RedisServer:
    """A password-protected redis-server of a test's own on a spare port, which the test
    may stop, start and restart (same port, same password) as it likes. Keeps nothing
    on disk, so a restart comes back empty, as a Redis without persistence does."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self, timeout: float = 10) -> None:
        """Start the server and wait until it answers PING with the password."""
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--requirepass", self.password, "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory)]
        with (self.directory / "redis.log").open("a") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"redis-server exited:\n{self.log()}")
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not answer in {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: it closes every client connection; SIGKILL: a
        crash) and wait until it has gone, so the port is free again."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and start it again on the same port with the same password."""
        self.stop(sig)
        self.start()
        self.restarts += 1

    def log(self) -> str:
        return (self.directory / "redis.log").read_text(errors="replace")


@contextlib.contextmanager
def redis_server():
    """Run a private, password-protected redis-server until the block ends; yields a
    RedisServer (its `url` is a REDIS_URL for the processes a test starts)."""
    directory = Path(tempfile.mkdtemp(prefix="taskhub-redis-"))
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP sink received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class Inbox:
    """An aiosmtpd handler that keeps every message, parsed."""

    def __init__(self):
        self.messages: list[ReceivedMail] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        return self.keep(envelope)

    def keep(self, envelope) -> str:
        """Keep the message, parsed, and accept it."""
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        with self.arrived:
            self.messages.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message)
            )
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that accepts every message and keeps it."""

    def __init__(self, inbox: Inbox, port: int):
        self._inbox = inbox
        self.port = port
        self.url = f"smtp://127.0.0.1:{port}"

    def messages(self) -> list[ReceivedMail]:
        with self._inbox.arrived:
            return list(self._inbox.messages)

    def wait_for(self, predicate, count: int, timeout: float = 10) -> list[ReceivedMail]:
        """Wait until `count` received messages match `predicate`; returns them. Fails
        (listing what did arrive) if they are not all there within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._inbox.arrived:
            while True:
                matching = [mail for mail in self._inbox.messages if predicate(mail)]
                remaining = deadline - time.monotonic()
                if len(matching) >= count or remaining <= 0:
                    break
                self._inbox.arrived.wait(remaining)
        assert len(matching) >= count, (
            f"{len(matching)} of {count} emails arrived within {timeout}s; received: "
            f"{[(mail.rcpt_tos, mail.message['Subject']) for mail in self.messages()]}"
        )
        return matching


@contextlib.contextmanager
def smtp_sink(inbox: "Inbox | None" = None, **smtp_options):
    """Run an SMTP sink (aiosmtpd) on a spare port with `inbox` (by default one that
    accepts everything) as its handler, and aiosmtpd's `smtp_options` (such as `timeout`,
    after which it drops an idle client); yields an SmtpSink."""
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # a line per SMTP command
    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    try:
        yield SmtpSink(inbox, controller.port)
    finally:
        controller.stop()


@contextlib.contextmanager
def celery_beat(*, env: dict, cwd: Path = REPO):
    """Run Celery beat (the product's schedule) until the block ends."""
    schedule = Path(tempfile.mkdtemp(prefix="taskhub-beat-")) / "schedule"
    args = [str(BIN / "celery"), "-A", "project", "beat", "-l", "info", "--schedule", str(schedule)]
    with _background(args, re.compile(r"beat: Starting"), env=env, cwd=cwd, timeout=30) as beat:
        yield beat
    shutil.rmtree(schedule.parent, ignore_errors=True)


def postgres_program(name: str) -> str:
    """A PostgreSQL server program (initdb, pg_ctl): on PATH, or in Debian's versioned
    directory. Fails, naming what is missing, when neither has it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert candidates, (
        f"PostgreSQL's {name} is needed for the database fault tests: install the "
        "PostgreSQL server (Debian: postgresql) or put its bin directory on PATH"
    )
    return str(candidates[-1])


class PostgresCluster:
    """A PostgreSQL cluster of a test's own, in a temporary directory on a spare port,
    which the test may stop (as a crash, `immediate`, or cleanly) and start again on the
    same port. Runs as the `postgres` user when the test runs as root, which PostgreSQL
    refuses to run as."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/taskhub"
        self.stops = 0

    def _run(self, args: list[str], timeout: float = 60) -> None:
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run([postgres_program("initdb"), "-D", str(self.data), "-U", "postgres",
                   "-A", "trust", "--no-sync"])  # fmt: skip
        self.start()
        self._run([postgres_program("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "postgres", "taskhub"])  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            # No fsync: an `immediate` stop is a crash of PostgreSQL, not of the machine,
            # so what was committed is in the kernel's cache and survives it.
            "-c fsync=off -c full_page_writes=off"
        )
        self._run([postgres_program("pg_ctl"), "-D", str(self.data), "-l",
                   str(self.directory / "postgres.log"), "-o", options, "-w", "start"])  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` drops every connection at once, as a crash does."""
        self._run([postgres_program("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])
        self.stops += 1

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def postgres_cluster():
    """Run a throwaway PostgreSQL cluster with an empty `taskhub` database until the block
    ends; yields a PostgresCluster (its `url` is a DATABASE_URL)."""
    directory = Path(tempfile.mkdtemp(prefix="taskhub-pg-"))
    cluster = PostgresCluster(directory)
    try:
        cluster.create()
        yield cluster
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)

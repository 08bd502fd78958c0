"""What the benchmarks share: the stack as shipped (started through `scripts/run`), a
private Redis, an SMTP sink, the baseline relay, users and tokens, percentiles, the
histogram writer and the driver that alternates ours and the baseline over rounds.

Every process started here runs in a session of its own and is stopped with its whole
process group when the block that started it ends.
"""

import contextlib
import json
import math
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
SECRET_KEY = "bench-" + "x" * 44
# Long enough that no socket is closed at token expiry during a run.
TOKEN_MINUTES = "600"
RELAY_CHANNEL_PREFIX = "relay.user."


def configure_environment(database: str = "taskhub_bench") -> None:
    """Measure the production configuration, on a database of the benchmarks' own."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SECRET_KEY", SECRET_KEY)
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("JWT_ACCESS_MINUTES", TOKEN_MINUTES)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A SIGTERM (kill, timeout) unwinds like Ctrl-C, so that the `finally` of each server
    # the benchmark started stops it: the stacks run in sessions of their own, and a
    # benchmark killed outright left them running, loading the next measurement.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- Processes --------------------------------------------------------------------------


def stop_group(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process (a session leader, such as scripts/run, which stops its own
    children) and its group, then SIGKILL whatever is left of its session after
    `timeout`: scripts/run gives each child a process group of its own."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while session_pids(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in session_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def session_pids(sid: int) -> list[int]:
    """The live processes of session `sid` (all that a session leader started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def daphne_pids(sid: int) -> list[int]:
    """The daphne processes among those `scripts/run` started (however many it runs)."""
    found = []
    for pid in session_pids(sid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(arg.endswith(b"daphne") for arg in argv[:2]):
                found.append(pid)
    return found


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> None:
    """Raise this process's open-files limit to `wanted` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """REDIS_URL when set; otherwise a private, password-protected redis-server on a
    spare port for the duration of the block. Yields the URL (db 0)."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    port, password = free_port(), secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(port), "--bind", "127.0.0.1", "--requirepass", password),
                *("--save", "", "--appendonly", "no", "--dir", workdir),
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_for_port(port, 10)
            yield f"redis://:{password}@127.0.0.1:{port}/0"
        finally:
            stop_group(process)


@contextlib.contextmanager
def smtp_sink() -> Iterator[str]:
    """An SMTP server that accepts and discards every message; yields its EMAIL_URL."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, 10)
        yield f"smtp://127.0.0.1:{port}"
    finally:
        stop_group(process)


def fresh_database(url: str) -> None:
    """Drop and create the benchmark database named in `url` (only `taskhub_bench*`)."""
    import environ

    name = environ.Env.db_url_config(url)["NAME"]
    if not name.startswith("taskhub_bench"):
        raise SystemExit(f"refusing to recreate {name!r}: benchmark databases are taskhub_bench*")
    with _maintenance_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    import environ

    name = environ.Env.db_url_config(url)["NAME"]
    with _maintenance_connection(url) as conn:
        exists = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not conn.execute(exists, [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _maintenance_connection(url: str):
    """An autocommit connection to the `postgres` database of the server in `url`."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    return psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@dataclass
class Stack:
    base_url: str
    ws_url: str
    process: subprocess.Popen
    log: Path

    def daphne_pids(self) -> list[int]:
        return daphne_pids(self.process.pid)


@contextlib.contextmanager
def stack(
    *, redis_url: str, email_url: str, nofile: int | None = None, startup: float = 180
) -> Iterator[Stack]:
    """The product as shipped: `scripts/run` in production configuration on a spare port,
    ready (GET /readyz answers 200) when the block starts, stopped with its whole process
    group when it ends. `nofile` raises the open-files limit its processes inherit."""
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": redis_url,
        "EMAIL_URL": email_url,
        "PORT": str(port),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "AUTH_THROTTLE_RATE": "100000/min",
        # The benchmarks' users send far more than a person would: counted (its cost is
        # part of every figure), never reached.
        "API_USER_RATE": "1000000000/min",
        "JWT_ACCESS_MINUTES": TOKEN_MINUTES,
    }
    log = Path(tempfile.gettempdir()) / f"taskhub-bench-stack-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "run")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: raise_fd_limit(nofile)) if nofile else None,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"scripts/run exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready after {startup}s; see {log}")
            time.sleep(0.2)
        yield Stack(base_url, f"ws://127.0.0.1:{port}", process, log)
    finally:
        stop_group(process)


@contextlib.contextmanager
def relay(redis_url: str, nofile: int | None = None) -> Iterator[Stack]:
    """The baseline: scripts/bench/relay.py (bare websockets + Redis pub/sub) on a spare
    port, in a process of its own as daphne is."""
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"taskhub-bench-relay-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [PYTHON, str(BENCH / "relay.py"), "--port", str(port), "--redis-url", redis_url],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: raise_fd_limit(nofile)) if nofile else None,
        )
    try:
        _wait_for_port(port, 15)
        yield Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", process, log)
    finally:
        stop_group(process)


# --- The product's data ----------------------------------------------------------------


@dataclass
class BenchUser:
    id: int
    username: str
    token: str


@dataclass
class BenchTask:
    id: str
    creator: BenchUser
    assignee: BenchUser | None
    version: int
    title: str
    # Everyone its events go to, when that is more than its creator and assignee (the
    # members of its project).
    audience: tuple[int, ...] = ()

    @property
    def recipients(self) -> list[int]:
        if self.audience:
            return list(self.audience)
        return [self.creator.id] + ([self.assignee.id] if self.assignee else [])


def create_tasks(base_url: str, users: list[BenchUser], each: int = 5, shared: int = 2):
    """`each` tasks per user, through the API as the product's clients create them; the
    first `shared` of each user's are assigned to the next user (their events go to 2)."""
    import httpx

    tasks = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for number, user in enumerate(users):
            for index in range(each):
                assignee = users[(number + 1) % len(users)] if index < shared else None
                body = {"title": f"{user.username} task {index}"}
                if assignee:
                    body["assignee"] = assignee.id
                response = client.post(
                    "/api/v1/tasks/", json=body, headers={"Authorization": f"Bearer {user.token}"}
                )
                response.raise_for_status()
                created = response.json()
                tasks.append(
                    BenchTask(created["id"], user, assignee, created["version"], body["title"])
                )
    return tasks


def make_project(name: str, members: list[BenchUser]) -> str:
    """A project with these members, straight through the ORM: the first is its owner,
    the rest are members (role "member"). Returns its id."""
    from django.utils import timezone

    from apps.tasks.models import Membership, Project, ProjectRole

    project = Project.objects.create(name=name, created_by_id=members[0].id)
    Membership.objects.bulk_create(
        Membership(
            project=project,
            user_id=member.id,
            role=ProjectRole.OWNER if number == 0 else ProjectRole.MEMBER,
            added_at=timezone.now(),
        )
        for number, member in enumerate(members)
    )
    return str(project.pk)


def create_project_tasks(
    base_url: str, project_id: str, members: list[BenchUser], count: int
) -> list[BenchTask]:
    """`count` tasks of the project, through the API (`"project": <id>` in the body),
    created in turn by its first members; each task's events go to every member."""
    import httpx

    audience = tuple(member.id for member in members)
    tasks = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(count):
            creator = members[index % min(len(members), 20)]
            body = {"title": f"project task {index}", "project": project_id}
            response = client.post(
                "/api/v1/tasks/", json=body, headers={"Authorization": f"Bearer {creator.token}"}
            )
            response.raise_for_status()
            created = response.json()
            tasks.append(
                BenchTask(created["id"], creator, None, created["version"], body["title"], audience)
            )
    return tasks


def setup_django(redis_url: str | None = None) -> None:
    """Django in this process, against the benchmark database (and Redis, when given)."""
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()


def make_users(prefix: str, count: int, *, emails: bool = False) -> list[BenchUser]:
    """`count` new users with access tokens; `emails` is their email preference (all or
    none). Call after the stack is up (it migrates the database)."""
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.users.models import User

    users = User.objects.bulk_create(
        User(
            username=f"{prefix}-{i}",
            email=f"{prefix}-{i}@example.com",
            email_notifications="all" if emails else "none",
        )
        for i in range(count)
    )
    return [BenchUser(user.pk, user.username, str(AccessToken.for_user(user))) for user in users]


def wait_for_emails_sent(timeout: float = 180) -> int:
    """Wait until no email is pending (the stack has worked off the last round), so one
    round's backlog does not land on the next; returns how many are still pending."""
    from apps.tasks.models import DeliveryStatus, EmailDelivery

    deadline = time.monotonic() + timeout
    while True:
        pending = EmailDelivery.objects.filter(status=DeliveryStatus.PENDING).count()
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def set_email_preference(users: list[BenchUser], *, emails: bool) -> None:
    from apps.users.models import User

    User.objects.filter(pk__in=[user.id for user in users]).update(
        email_notifications="all" if emails else "none"
    )


# --- Sockets ----------------------------------------------------------------------------


async def open_product_socket(ws_url: str, token: str):
    """A socket on /ws/tasks/ past its hello; returns (socket, hello)."""
    from websockets.asyncio.client import connect

    ws = await connect(
        f"{ws_url}/ws/tasks/",
        subprotocols=["bearer", token],
        compression=None,
        ping_interval=None,
        max_queue=None,
        open_timeout=60,
    )
    return ws, json.loads(await ws.recv())


async def open_relay_socket(ws_url: str, user_id: int):
    from websockets.asyncio.client import connect

    ws = await connect(
        f"{ws_url}/u/{user_id}",
        compression=None,
        ping_interval=None,
        max_queue=None,
        open_timeout=60,
    )
    return ws, json.loads(await ws.recv())


async def open_many(factories: list[Callable], concurrency: int = 50) -> list:
    """Await each coroutine factory, at most `concurrency` at a time, in order."""
    import asyncio

    gate = asyncio.Semaphore(concurrency)

    async def one(factory):
        async with gate:
            return await factory()

    return await asyncio.gather(*(one(factory) for factory in factories))


def run(main):
    """asyncio.run, on uvloop when it is installed: less client overhead on a small
    machine that the client shares with the stack it measures."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def wait_until_quiet(count: Callable[[], int], quiet: float = 1, limit: float = 120):
    """Wait until `count()` (arrivals so far) stops changing for `quiet` seconds, so that
    a side still working off its backlog does not load the machine during the next round."""
    import asyncio

    deadline = time.monotonic() + limit
    last = count()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = count()
        if now == last:
            return
        last = now


def relay_channel(user_id: int) -> str:
    return f"{RELAY_CHANNEL_PREFIX}{user_id}"


# --- Figures ----------------------------------------------------------------------------


def percentile(values: list[float], quantile: float) -> float:
    """Nearest-rank percentile of `values` (sorted or not); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline else math.nan


def figure_line(label: str, ours: float, baseline: float, unit: str, fmt: str = ".1f") -> str:
    """One comparable figure: ours, the baseline and ours/baseline."""
    return (
        f"{label:<34} ours {ours:>10{fmt}} {unit:<5} baseline {baseline:>10{fmt}} {unit:<5} "
        f"ratio {ratio(ours, baseline):>7.2f}"
    )


def write_histogram_svg(path: Path, title: str, series: dict[str, list[float]]) -> Path:
    """A dependency-free SVG histogram of delays in ms, one colour per series, on a
    log-spaced x axis (0.1 ms to 10 s) so a fast floor and a slow tail both show."""
    width, height, left, bottom, top = 760, 360, 60, 40, 40
    bins = [0.1 * 10 ** (i / 10) for i in range(51)]  # 0.1 ms .. 10 s, 10 per decade
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    counts = {}
    for name, values in series.items():
        row = [0] * (len(bins) - 1)
        for value in values:
            index = int(10 * math.log10(max(value, 0.1) / 0.1))
            row[min(max(index, 0), len(row) - 1)] += 1
        total = max(len(values), 1)
        counts[name] = [count / total for count in row]
    peak = max((max(row) for row in counts.values() if row), default=1) or 1
    plot_w, plot_h = width - left - 20, height - top - bottom
    bar_w = plot_w / (len(bins) - 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="13">{_xml(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="black"/>',
    ]
    for decade, label in enumerate(["0.1", "1", "10", "100", "1000", "10000"]):
        x = left + decade * 10 * bar_w
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
                     'stroke="#ddd"/>')  # fmt: skip
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 15}" text-anchor="middle">'
                     f"{label}</text>")  # fmt: skip
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 5}" text-anchor="middle">delay, ms '
        "(share of deliveries per bin)</text>"
    )
    for row, colour in zip(counts.values(), colours, strict=False):
        for index, share in enumerate(row):
            if share:
                bar_h = share / peak * plot_h
                parts.append(
                    f'<rect x="{left + index * bar_w:.1f}" y="{top + plot_h - bar_h:.1f}" '
                    f'width="{bar_w:.1f}" height="{bar_h:.1f}" fill="{colour}" '
                    'fill-opacity="0.55"/>'
                )
    for number, ((name, values), colour) in enumerate(zip(series.items(), colours, strict=False)):
        y = top + 14 * number
        summary = (
            f"{name}: n={len(values)} p50={percentile(values, 0.5):.1f} ms "
            f"p99={percentile(values, 0.99):.1f} ms"
        )
        parts.append(f'<rect x="{width - 330}" y="{y}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{width - 315}" y="{y + 9}">{_xml(summary)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return path


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alternate(rounds: int, runners: dict[str, Callable[[int], dict]]) -> dict[str, list[dict]]:
    """Run each runner once per round, alternating which goes first (ABBA...), so that
    drift on a shared machine (caches, other load) falls on both sides alike."""
    results: dict[str, list[dict]] = {name: [] for name in runners}
    names = list(runners)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            results[name].append(runners[name](number))
    return results


def histogram_path(name: str) -> Path:
    """Where a benchmark writes its histogram (BENCH_OUTPUT_DIR, else scripts/bench/out)."""
    return Path(os.environ.get("BENCH_OUTPUT_DIR", BENCH / "out")) / f"{name}.svg"

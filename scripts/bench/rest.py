"""Benchmark: the REST API against a plain sync DRF app on the same cores.

Ours is the stack as shipped (`scripts/run`: WEB_CONCURRENCY daphne processes, one per
core, plus the relay, a Celery worker and beat). The baseline is `baseline_drf/`, an
idiomatic sync Django REST framework app (ModelSerializer, generic views, cursor
pagination, simplejwt's JWTAuthentication) over the same tables, on gunicorn with one
sync worker per core. Both serve the same PostgreSQL database and data; the same tokens
work on both (same signing key).

The data is the issue's: a reader who sees 2,000 of 4,000 tasks (created by or assigned
to them), with descriptions, metadata and due dates, and 200 other users. Requests:

- list: `GET /api/v1/tasks/?limit=50` as the reader (the first page, newest first);
- detail: `GET /api/v1/tasks/<id>/` as the reader, over the 2,000 tasks they see;
- PATCH: `PATCH /api/v1/tasks/<id>/` with a new title and status, as each task's
  creator, over the 2,000 tasks the reader does not see (each assigned to another user,
  so ours writes the event into 2 streams); ours records the event, the stream entries
  and the email decisions in the transaction, the baseline updates the row and inserts
  one event row; no If-Match;
- POST: `POST /api/v1/tasks/` as one of the 200 users at random.

wrk (closed loop, `rest.lua` picks each request's task and token at random) at 16 and
64 connections, ours and the baseline alternating over rounds (ABBA...) after a warm-up.
Then an open-loop client (`openloop.py`) sends list and detail requests at 70 % of the
baseline's peak rate and measures latency from each request's scheduled send time.
Figures are medians over rounds. Users' email preference is "none": the email decisions
are made and send nothing (the live relay still publishes every event to Redis).

    .venv/bin/python scripts/bench/rest.py [--rounds 4] [--seconds 10] [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_rest, which is dropped and re-created.
Needs wrk (Debian package `wrk`; installed here when missing and this is root).
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common
import openloop

common.configure_environment("taskhub_bench_rest")

READER = "rest-reader"
OTHERS = 200
TASKS = 4000
OPEN_LOOP_SHARE = 0.7


@dataclass(frozen=True)
class Endpoint:
    kind: str  # rest.lua's request kind
    label: str
    min_ratio: float  # ours / baseline in requests per second
    p99_no_worse: bool = False


ENDPOINTS = [
    Endpoint("list", "list limit=50", 1.5, p99_no_worse=True),
    Endpoint("detail", "detail GET", 1.5),
    Endpoint("patch", "PATCH", 1.0),
    Endpoint("post", "POST", 1.0),
]
OPEN_LOOP_KINDS = ("list", "detail")


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Row:
    label: str
    connections: str
    ours: Figures
    baseline: Figures
    ratio: float
    target: str
    met: bool


# --- Servers and data -------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing and this process may."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing wrk (Debian package)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("error: this benchmark needs wrk (Debian: sudo apt-get install wrk).")
    return found


@contextlib.contextmanager
def baseline_server(workers: int):
    """The baseline app on gunicorn, `workers` sync workers, on a spare port."""
    import httpx

    port = common.free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "baseline_drf.settings",
        "PYTHONPATH": str(common.BENCH),
    }
    log = Path(tempfile.gettempdir()) / f"taskhub-bench-baseline-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *(common.PYTHON, "-m", "gunicorn", "baseline_drf.wsgi"),
                *("--workers", str(workers), "--worker-class", "sync"),
                *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            ],
            cwd=common.BENCH,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/api/v1/tasks/", timeout=2).status_code == 401:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the baseline was not ready after 60s; see {log}")
            time.sleep(0.2)
        yield base_url
    finally:
        common.stop_group(process)


def seed(task_count: int, workdir: Path) -> dict[str, Path]:
    """The users and tasks (the stack has migrated the database); returns rest.lua's
    targets file for each request kind."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.tasks.models import Priority, Status, Task
    from apps.users.models import User

    users = User.objects.bulk_create(
        User(username=name, email=f"{name}@example.com", email_notifications="none")
        for name in [READER, *(f"rest-user-{i}" for i in range(OTHERS))]
    )
    reader, others = users[0], users[1:]
    tokens = {user.pk: str(AccessToken.for_user(user)) for user in users}
    now = timezone.now()
    statuses, priorities = list(Status.values), list(Priority.values)
    quarter = task_count // 4

    def people(number: int):
        """(creator, assignee): the first half is the reader's (created by them, or
        assigned to them), the second half is between two other users."""
        other, next_other = others[number % OTHERS], others[(number + 1) % OTHERS]
        if number < quarter:
            return reader, next_other if number % 2 else None
        if number < 2 * quarter:
            return other, reader
        return other, next_other

    tasks = []
    for number in range(task_count):
        creator, assignee = people(number)
        tasks.append(
            Task(
                title=f"Task {number}: prepare the quarterly report section",
                description=f"Benchmark task {number}. " + "Gather the figures, check them "
                "against last quarter, write the summary and ask for a review. " * 3,
                status=statuses[number % 3],
                priority=priorities[number % 4],
                due_at=now + timedelta(days=number % 60 - 20) if number % 4 else None,
                metadata={"labels": ["report", f"team-{number % 7}"], "estimate": number % 8},
                created_by=creator,
                assignee=assignee,
            )
        )
    Task.objects.bulk_create(tasks)
    with connection.cursor() as cursor:
        # Spread creation over 90 days, as a real list is; then fresh statistics.
        cursor.execute(
            "UPDATE tasks_task SET created_at = now() - random() * interval '90 days', "
            "updated_at = now() - random() * interval '1 day'"
        )
        cursor.execute("ANALYZE")
    visible = tasks[: 2 * quarter]
    hidden = tasks[2 * quarter :]
    lines = {
        "list": [f"{tokens[reader.pk]} -"],
        "detail": [f"{tokens[reader.pk]} {task.id}" for task in visible],
        "patch": [f"{tokens[task.created_by_id]} {task.id}" for task in hidden],
        "post": [f"{tokens[user.pk]} -" for user in others],
    }
    files = {}
    for kind, rows in lines.items():
        files[kind] = workdir / f"{kind}.txt"
        files[kind].write_text("\n".join(rows) + "\n")
    return files


def first_target(path: Path) -> tuple[str, str]:
    token, task_id = path.read_text().splitlines()[0].split()
    return token, task_id


def compare_fields(ours_url: str, baseline_url: str, targets: dict[str, Path]) -> None:
    """Print a warning when ours and the baseline do not render the same fields."""
    import httpx

    token, task_id = first_target(targets["detail"])
    headers = {"Authorization": f"Bearer {token}"}
    bodies = {}
    for side, url in (("ours", ours_url), ("baseline", baseline_url)):
        page = httpx.get(f"{url}/api/v1/tasks/?limit=50", headers=headers, timeout=30)
        detail = httpx.get(f"{url}/api/v1/tasks/{task_id}/", headers=headers, timeout=30)
        page.raise_for_status()
        detail.raise_for_status()
        bodies[side] = (page.json(), detail.json())
    for what, index in (("list page", 0), ("task", 1)):
        ours, baseline = bodies["ours"][index], bodies["baseline"][index]
        shapes = [(what, ours, baseline)]
        if what == "list page":
            shapes.append(("list row", ours["results"][0], baseline["results"][0]))
            if len(ours["results"]) != len(baseline["results"]):
                print(f"warning: list pages differ in length: ours {len(ours['results'])}, "
                      f"baseline {len(baseline['results'])}")  # fmt: skip
        else:
            shapes.append(("created_by", ours["created_by"], baseline["created_by"]))
            differing = sorted(name for name in ours if baseline.get(name) != ours[name])
            if differing:
                print(f"note: the same task renders differently in {', '.join(differing)}")
        for name, mine, theirs in shapes:
            if set(mine) != set(theirs):
                print(
                    f"warning: {name} fields differ: ours only {sorted(set(mine) - set(theirs))}, "
                    f"baseline only {sorted(set(theirs) - set(mine))}"
                )
    print(f"fields of a task (both): {', '.join(bodies['ours'][1])}")


def wait_for_relay(limit: float = 60) -> None:
    """Wait until our relay has published every event, so that a write round's backlog
    does not load the machine during the next measurement."""
    from apps.tasks.models import TaskEvent

    deadline = time.monotonic() + limit
    while TaskEvent.objects.filter(published_at__isnull=True).exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


# --- Measurements -----------------------------------------------------------------------


def run_wrk(wrk, url, kind, targets, *, connections, seconds, threads) -> Figures:
    command = [
        wrk,
        *("-t", str(min(threads, connections)), "-c", str(connections)),
        *("-d", f"{max(1, round(seconds))}s", "--timeout", "30s"),
        *("-s", str(common.BENCH / "rest.lua"), url, "--", kind, str(targets[kind])),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    return Figures(
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=sum(result["errors"].values()),
    )


def open_loop(url, kind, targets, *, rate, seconds) -> Figures:
    import random

    rows = [line.split() for line in targets[kind].read_text().splitlines()]

    def make_request(host: str) -> bytes:
        token, task_id = random.choice(rows)
        path = "/api/v1/tasks/?limit=50" if kind == "list" else f"/api/v1/tasks/{task_id}/"
        return openloop.build_request("GET", path, host, {"Authorization": f"Bearer {token}"})

    result = common.run(openloop.run_open_loop(url, make_request, rate=rate, seconds=seconds))
    return Figures(
        rps=len(result.latencies_ms) / seconds,
        p50_ms=common.percentile(result.latencies_ms, 0.5),
        p99_ms=common.percentile(result.latencies_ms, 0.99),
        errors=result.errors,
    )


def median_figures(rounds: list[Figures]) -> Figures:
    return Figures(
        rps=statistics.median(f.rps for f in rounds),
        p50_ms=statistics.median(f.p50_ms for f in rounds),
        p99_ms=statistics.median(f.p99_ms for f in rounds),
        errors=sum(f.errors for f in rounds),
    )


def measure(label: str, rounds: int, sides: dict[str, callable]) -> dict[str, Figures]:
    """Each side once per round, alternating (ABBA); prints every round; medians."""

    def runner(side):
        def run(number):
            figures = sides[side]()
            print(
                f"  {label:<28} round {number + 1} {side:<8} {figures.rps:9.1f}/s "
                f"p50 {figures.p50_ms:8.1f} ms  p99 {figures.p99_ms:8.1f} ms"
                + (f"  errors {figures.errors}" if figures.errors else ""),
                flush=True,
            )
            return figures

        return run

    results = common.alternate(rounds, {side: runner(side) for side in sides})
    return {side: median_figures(figures) for side, figures in results.items()}


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'endpoint':<26} {'conns':>8} | {'ours rps':>9} {'p50':>7} {'p99':>7} | "
        f"{'base rps':>9} {'p50':>7} {'p99':>7} | {'ratio':>6}  {'target':<28} met"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.label:<26} {row.connections:>8} | {row.ours.rps:9.1f} {row.ours.p50_ms:7.1f} "
            f"{row.ours.p99_ms:7.1f} | {row.baseline.rps:9.1f} {row.baseline.p50_ms:7.1f} "
            f"{row.baseline.p99_ms:7.1f} | {row.ratio:6.2f}  {row.target:<28} "
            f"{'yes' if row.met else 'no'}"
        )
    print("(rps: requests per second; p50 and p99 in ms; ratio: ours / baseline, in rps for")
    print(" wrk rows and in p99 for the open-loop rows)")


def bench(args, wrk, ours_url, baseline_url, targets) -> None:
    urls = {"ours": ours_url, "baseline": baseline_url}
    print(f"warm-up: {args.warmup:g}s of each request kind on each side", flush=True)
    for endpoint in ENDPOINTS:
        for url in urls.values():
            run_wrk(wrk, url, endpoint.kind, targets, connections=16,
                    seconds=args.warmup, threads=args.threads)  # fmt: skip
        wait_for_relay()

    rows: list[Row] = []
    peaks: dict[str, float] = {}
    for endpoint in ENDPOINTS:
        for connections in args.connections:
            label = f"{endpoint.label}, {connections} conns"
            figures = measure(
                label,
                args.rounds,
                {
                    side: lambda url=url, kind=endpoint.kind, connections=connections: (
                        _wrk_then_settle(wrk, url, kind, targets, connections, args)
                    )
                    for side, url in urls.items()
                },
            )
            ours, baseline = figures["ours"], figures["baseline"]
            peaks[endpoint.kind] = max(peaks.get(endpoint.kind, 0), baseline.rps)
            ratio = common.ratio(ours.rps, baseline.rps)
            met = ratio >= endpoint.min_ratio
            target = f"rps >= {endpoint.min_ratio:g}x"
            if endpoint.p99_no_worse:
                met = met and ours.p99_ms <= baseline.p99_ms
                target += ", p99 no worse"
            print(common.figure_line(f"{endpoint.label} c{connections} rps", ours.rps,
                                     baseline.rps, "/s"))  # fmt: skip
            print(common.figure_line(f"{endpoint.label} c{connections} p99", ours.p99_ms,
                                     baseline.p99_ms, "ms"))  # fmt: skip
            for side, side_figures in figures.items():
                if side_figures.errors:
                    print(f"warning: {side} answered {side_figures.errors} {endpoint.label} "
                          "requests with an error (non-2xx, timeout or socket error)")  # fmt: skip
            rows.append(Row(endpoint.label, str(connections), ours, baseline, ratio, target, met))

    for kind in OPEN_LOOP_KINDS:
        endpoint = next(endpoint for endpoint in ENDPOINTS if endpoint.kind == kind)
        rate = max(1.0, round(OPEN_LOOP_SHARE * peaks[kind], 1))
        label = f"open-loop {kind} at {rate:g}/s"
        figures = measure(
            label,
            args.rounds,
            {
                side: lambda url=url, kind=kind, rate=rate: open_loop(
                    url, kind, targets, rate=rate, seconds=args.seconds
                )
                for side, url in urls.items()
            },
        )
        ours, baseline = figures["ours"], figures["baseline"]
        print(common.figure_line(f"open-loop {kind} p99", ours.p99_ms, baseline.p99_ms, "ms"))
        for side, side_figures in figures.items():
            if side_figures.errors:
                print(f"warning: {side} answered {side_figures.errors} open-loop requests "
                      "with an error")  # fmt: skip
        rows.append(
            Row(
                f"open-loop {endpoint.label}",
                f"{rate:g}/s",
                ours,
                baseline,
                common.ratio(ours.p99_ms, baseline.p99_ms),
                "p99 no worse (ratio <= 1)",
                ours.p99_ms <= baseline.p99_ms,
            )
        )

    print()
    print_table(rows)


def _wrk_then_settle(wrk, url, kind, targets, connections, args) -> Figures:
    figures = run_wrk(wrk, url, kind, targets, connections=connections,
                      seconds=args.seconds, threads=args.threads)  # fmt: skip
    if kind in ("patch", "post"):
        wait_for_relay()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="measurements of each side")
    parser.add_argument("--seconds", type=float, default=10, help="length of a measurement")
    parser.add_argument("--warmup", type=float, default=3, help="seconds per kind and side")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.warmup, args.connections = 1, 1, 1, [16]
    wrk = ensure_wrk()
    cores = os.cpu_count() or 1
    common.fresh_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as product,
        tempfile.TemporaryDirectory(prefix="bench-rest-") as workdir,
    ):
        common.setup_django(redis_url)
        targets = seed(TASKS, Path(workdir))
        with baseline_server(workers=cores) as baseline_url:
            print(
                f"REST: ours (scripts/run, one daphne per core) vs plain sync DRF on gunicorn "
                f"({cores} sync workers), {cores} cores; {TASKS} tasks, the reader sees "
                f"{TASKS // 2}; {args.rounds} rounds of {args.seconds:g}s per side",
                flush=True,
            )
            compare_fields(product.base_url, baseline_url, targets)
            bench(args, wrk, product.base_url, baseline_url, targets)


if __name__ == "__main__":
    main()

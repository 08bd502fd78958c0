"""Benchmark: what one change to a shared project's task costs to write, against a
personal task's, for projects of 1, 10, 50 and 200 members, in one run.

Each change is one title change through the product's write service
(`apps.tasks.services.task_update`, the code `PATCH /api/v1/tasks/<id>/` calls) from one
thread of this process, one after the other (the cost of a change, not contention). The
service's transaction runs inside one of this benchmark's, so the whole transaction is
timed, from BEGIN to the COMMIT's acknowledgement. Per change:

- rows written: counted by PostgreSQL itself (`pg_stat_xact_user_tables`, read inside
  the transaction before it commits, on a few changes kept out of the timings): the task's
  UPDATE, the event's INSERT, the stream upserts (one per recipient: an UPDATE of
  `tasks_eventstream`, or an INSERT the first time) and the stream entries (one INSERT per
  recipient);
- the transaction's milliseconds, p50 and p95, and within it the one statement that
  writes the event, the stream upserts and the entries (`events._insert_event_with_entries`)
  and the statement that reads and locks the project's members;
- WAL written during the transaction (`pg_current_wal_insert_lsn()` before and after): the
  server's, so other databases' writes on a shared server fall in it; the p50 is given;
- the relay's CPU per change (the stack's `manage.py relay_events` publishes each event
  to every recipient: one message each, encoded for each).

The stack runs as shipped (`scripts/run`): it migrates the database, and its relay
publishes the events as in production. Emails are off for everyone (the email decisions
are made, nothing is sent). Sizes are measured in rounds, in alternating order (ABBA), so
drift on a shared machine falls on all of them alike. Baseline: a personal task (its
creator and its assignee, 2 recipients).

    .venv/bin/python scripts/bench/project_writes.py [--sizes 1,10,50,200] [--changes 300]
        [--rounds 6] [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_project_writes, dropped and re-created.
"""

import argparse
import concurrent.futures
import itertools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common

common.configure_environment("taskhub_bench_project_writes")

SIZES = (1, 10, 50, 200)
TASKS_PER_SUBJECT = 10
COUNTED_CHANGES = 3  # per size: the changes whose rows are counted (not timed)
BASELINE = "personal"
# Statements told apart by a piece of their SQL (the writes of record_event, the
# project's members read and locked FOR SHARE).
STATEMENTS = {
    "event + streams + entries": ("WITH event AS",),
    "members, locked": ("FOR SHARE", "tasks_membership WHERE project_id"),
}
ALL_STATEMENTS = "all statements"  # every statement of the change, COMMIT aside
COMMIT = "COMMIT"


@dataclass
class Subject:
    """What is changed: a personal task, or the tasks of a project of `members`."""

    name: str
    recipients: int
    tasks: list[str]
    actor_ids: list[int]
    totals_ms: list[float] = field(default_factory=list)
    statement_ms: dict[str, list[float]] = field(default_factory=dict)
    wal_bytes: list[int] = field(default_factory=list)
    rows: list[Counter] = field(default_factory=list)
    relay_cpu_s: float = 0.0
    changes: int = 0
    busy_s: float = 0.0  # wall time of the timed changes


def make_subjects(base_url: str, sizes: list[int]) -> list[Subject]:
    """A personal task pair and one project per size, with their tasks (through the API)."""
    people = common.make_users("writer", max([*sizes, 2]))
    owner, other = people[0], people[1]
    # Each of the two assigns all its tasks to the other: 2 recipients each.
    personal = common.create_tasks(
        base_url, [owner, other], each=TASKS_PER_SUBJECT // 2, shared=TASKS_PER_SUBJECT // 2
    )
    actors = [task.creator.id for task in personal]
    subjects = [Subject(BASELINE, 2, [task.id for task in personal], actors)]
    for size in sizes:
        members = people[:size]
        project_id = common.make_project(f"writes {size}", members)
        tasks = common.create_project_tasks(base_url, project_id, members, TASKS_PER_SUBJECT)
        actors = [task.creator.id for task in tasks]
        name = f"{size} member{'s' if size > 1 else ''}"
        subjects.append(Subject(name, size, [task.id for task in tasks], actors))
    return subjects


def rows_written(cursor) -> Counter:
    """Rows inserted, updated and deleted per table by this session: this transaction's,
    and earlier ones' that PostgreSQL has not yet flushed to its statistics."""
    cursor.execute(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
        "WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
    )
    counted: Counter = Counter()
    for table, inserted, updated, deleted in cursor.fetchall():
        for kind, count in (("ins", inserted), ("upd", updated), ("del", deleted)):
            if count:
                counted[f"{table} {kind}"] += count
    return counted


def change(subject: Subject, number: int, titles, *, count_rows: bool) -> None:
    """One change through the service, timed from BEGIN to the acknowledged COMMIT."""
    from django.db import connection, transaction

    from apps.tasks import services
    from apps.users.models import User

    task_id = subject.tasks[number % len(subject.tasks)]
    actor = User.objects.get(pk=subject.actor_ids[number % len(subject.actor_ids)])
    statement_ms: Counter = Counter()

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = (time.perf_counter() - started) * 1000
            statement_ms[ALL_STATEMENTS] += spent
            for name, markers in STATEMENTS.items():
                if any(marker in sql for marker in markers):
                    statement_ms[name] += spent

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        (wal_before,) = cursor.fetchone()
    counted = None
    with connection.execute_wrapper(timed):
        begun = time.perf_counter()
        with transaction.atomic():
            if count_rows:
                # The view also holds the session's earlier transactions until PostgreSQL
                # flushes them (at most once a second): count the difference.
                with connection.cursor() as cursor:
                    before = rows_written(cursor)
            services.task_update(task_id=task_id, actor=actor, data={"title": next(titles)})
            if count_rows:
                with connection.cursor() as cursor:
                    counted = rows_written(cursor) - before
            committing = time.perf_counter()
        done = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [wal_before])
        (wal,) = cursor.fetchone()
    if count_rows:
        subject.rows.append(counted)
        return
    subject.totals_ms.append((done - begun) * 1000)
    statement_ms[COMMIT] = (done - committing) * 1000
    for name in (ALL_STATEMENTS, *STATEMENTS, COMMIT):
        subject.statement_ms.setdefault(name, []).append(statement_ms[name])
    subject.wal_bytes.append(int(wal))


class SharedTitles:
    """A new title for each change, from any thread."""

    def __init__(self, numbers) -> None:
        self.numbers = numbers

    def __iter__(self):
        return self

    def __next__(self) -> str:
        return f"change {next(self.numbers)}"


def change_in_thread(subject: Subject, number: int, titles) -> None:
    """`change` from a writer thread, on that thread's own database connection."""
    from django.db import close_old_connections, connections

    close_old_connections()
    try:
        change(subject, number, titles, count_rows=False)
    finally:
        connections.close_all()


def wait_until_published(timeout: float = 60) -> None:
    """Until the relay has published every event (its CPU for them is then spent)."""
    from apps.tasks.models import TaskEvent

    deadline = time.monotonic() + timeout
    while TaskEvent.objects.filter(published_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not publish every event in time")
        time.sleep(0.05)


def relay_pids(product: common.Stack) -> list[int]:
    found = []
    for pid in common.session_pids(product.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"relay_events" in argv:
            found.append(pid)
    return found


def bench(args, product, subjects: list[Subject]) -> None:
    numbers = itertools.count()  # next() on it is atomic: the writer threads share it
    titles = SharedTitles(numbers)
    relay = relay_pids(product)
    for subject in subjects:  # warm-up, and the counted changes
        for number in range(args.warmup):
            change(subject, number, titles, count_rows=False)
        for number in range(COUNTED_CHANGES):
            change(subject, number, titles, count_rows=True)
        subject.totals_ms.clear()
        subject.statement_ms.clear()
        subject.wal_bytes.clear()
    per_round = max(1, args.changes // args.rounds)
    for number in range(args.rounds):
        for subject in subjects if number % 2 == 0 else reversed(subjects):
            wait_until_published()
            cpu_before = common.cpu_seconds(relay)
            began = time.perf_counter()
            if args.threads == 1:
                for index in range(per_round):
                    change(subject, index, titles, count_rows=False)
            else:
                with concurrent.futures.ThreadPoolExecutor(args.threads) as writers:
                    jobs = [
                        writers.submit(change_in_thread, subject, index, titles)
                        for index in range(per_round)
                    ]
                    for job in jobs:
                        job.result()
            subject.busy_s += time.perf_counter() - began
            wait_until_published()
            subject.relay_cpu_s += common.cpu_seconds(relay) - cpu_before
            subject.changes += per_round
    report(args, subjects, relay)


def report(args, subjects: list[Subject], relay: list[int]) -> None:
    base = subjects[0]
    writers = (
        "one thread, one after the other"
        if args.threads == 1
        else f"{args.threads} threads at once (changes/s = what they got through; WAL "
        "includes the other threads')"
    )
    print(
        f"\nproject writes: one change (a new title) through services.task_update, "
        f"{base.changes} timed changes per subject in {args.rounds} rounds (ABBA), "
        f"{writers}, emails off; relay pids {relay}"
    )
    print("rows written per change (pg_stat_xact_user_tables, counted on "
          f"{COUNTED_CHANGES} changes each):")  # fmt: skip
    tables = sorted({name for subject in subjects for rows in subject.rows for name in rows})
    print(f"  {'subject':<12} {'recipients':>10} {'total':>6}  " + "  ".join(tables))
    for subject in subjects:
        last = subject.rows[-1]
        print(f"  {subject.name:<12} {subject.recipients:>10} {sum(last.values()):>6}  "
              + "  ".join(f"{last[name]:>{len(name)}}" for name in tables))  # fmt: skip
    print("per change (ours = the project, baseline = a personal task with 2 recipients):")
    for subject in subjects[1:]:
        lines = [
            (f"txn p50, {subject.name}", subject.totals_ms, base.totals_ms, 0.5),
            (f"txn p95, {subject.name}", subject.totals_ms, base.totals_ms, 0.95),
        ]
        for name in (ALL_STATEMENTS, *STATEMENTS, COMMIT):
            lines.append(
                (f"  {name} p50", subject.statement_ms[name], base.statement_ms[name], 0.5)
            )
        for label, ours, theirs, quantile in lines:
            print(common.figure_line(label, common.percentile(ours, quantile),
                                     common.percentile(theirs, quantile), "ms", ".2f"))  # fmt: skip
        wal = [
            common.percentile(values, 0.5) / 1024 for values in (subject.wal_bytes, base.wal_bytes)
        ]
        print(common.figure_line(f"  WAL p50, {subject.name}", *wal, "KiB", ".1f"))
        rates = [one.changes / one.busy_s if one.busy_s else 0.0 for one in (subject, base)]
        print(common.figure_line(f"  changes/s, {subject.name}", *rates, "/s", ".1f"))
        relay = [one.relay_cpu_s * 1000 / max(one.changes, 1) for one in (subject, base)]
        print(common.figure_line(f"  relay CPU, {subject.name}", *relay, "ms", ".2f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--changes", type=int, default=300, help="timed changes per subject")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1, help="writers at once (each change in one of them)"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.quick:
        args.changes, args.rounds, args.warmup = 4, 2, 1
    common.fresh_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as product,
    ):
        common.setup_django(redis_url)
        subjects = make_subjects(product.base_url, sizes)
        bench(args, product, subjects)


if __name__ == "__main__":
    main()

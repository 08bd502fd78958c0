"""Side experiment (2026-12-03, issue 13), not a benchmark: the cost of one event with 200
recipients written by the product's own statement (`events._insert_event_with_entries`),
with tasks_streamentry's indexes as migrated (A) and without the two single-column
indexes Django adds for its foreign keys, which the (user, seq) and (event, user) indexes
already lead with (B). Order A, B, A, B. Run against the database project_writes.py left
behind (its 200 users):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskhub_bench_project_writes \
        .venv/bin/python scripts/bench/results/2026-12-03/stream_entry_indexes_experiment.py
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "x" * 50)
os.environ.setdefault("DJANGO_DEBUG", "false")
import django

django.setup()
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.tasks.events import _insert_event_with_entries  # noqa: E402
from apps.tasks.models import TaskEvent  # noqa: E402
from apps.users.models import User  # noqa: E402

users = sorted(User.objects.filter(username__startswith="writer-").values_list("pk", flat=True))[
    :200
]
INDEXES = ("tasks_streamentry_user_id_f0a0b872", "tasks_streamentry_event_id_a7bd2b23")
DEFS = {}
with connection.cursor() as cursor:
    for name in INDEXES:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        DEFS[name] = cursor.fetchone()[0]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(label, count=300):
    totals, statements, commits, wal = [], [], [], []
    for _ in range(count):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            (before,) = cursor.fetchone()
        begun = time.perf_counter()
        with transaction.atomic():
            event = TaskEvent(type="task.updated", changes={}, created_at=timezone.now())
            started = time.perf_counter()
            _insert_event_with_entries(event, users)
            statement = time.perf_counter() - started
            committing = time.perf_counter()
        done = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [before])
            wal.append(int(cursor.fetchone()[0]))
        totals.append((done - begun) * 1000)
        statements.append(statement * 1000)
        commits.append((done - committing) * 1000)
    print(
        f"{label:<40} txn p50 {pct(totals, 0.5):6.2f} p95 {pct(totals, 0.95):6.2f} ms  "
        f"statement p50 {pct(statements, 0.5):5.2f}  COMMIT p50 {pct(commits, 0.5):5.2f} ms  "
        f"WAL p50 {pct(wal, 0.5) / 1024:6.1f} KiB",
        flush=True,
    )


def set_indexes(present):
    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(DEFS[name] if present else f"DROP INDEX {name}")


print(f"{len(users)} recipients per event")
measure("warm-up (A)", 50)
try:
    for number in range(2):
        measure(f"A, indexes as migrated ({number + 1})")
        set_indexes(False)
        measure(f"B, without the 2 FK indexes ({number + 1})")
        set_indexes(True)
finally:
    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(DEFS[name].replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS"))

"""Benchmark: the task list endpoint under concurrent load, served by daphne.

Seeds users and tasks into PostgreSQL, starts daphne, and runs concurrent clients against
`GET /api/v1/tasks/` for a fixed time per page size; prints throughput, latency
percentiles and the server's resident memory. Figures only: nothing here passes or fails.

    .venv/bin/python scripts/bench/list_tasks.py [--tasks 5000] [--seconds 10] [--clients 16]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/taskhub_bench (created if
missing); its tasks are replaced. The server is the stack as shipped (scripts/run), on
REDIS_URL when set, else on a private redis-server.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common
from common import configure_environment, ensure_database

configure_environment()


def seed(task_count: int) -> str:
    """Replace the bench data; return an access token for a user who sees every task."""
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.tasks.models import Priority, Status, Task
    from apps.users.models import User

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    Task.objects.all().delete()
    User.objects.filter(username__startswith="bench-").delete()
    users = User.objects.bulk_create(
        User(username=f"bench-{i}", email=f"bench-{i}@example.com") for i in range(50)
    )
    reader = users[0]
    statuses, priorities = list(Status.values), list(Priority.values)
    Task.objects.bulk_create(
        Task(
            title=f"Task {i}",
            description="Benchmark task " * 5,
            status=statuses[i % 3],
            priority=priorities[i % 4],
            created_by=reader if i % 2 else users[i % 50],
            assignee=users[(i + 1) % 50] if i % 2 else reader,
            metadata={"n": i},
        )
        for i in range(task_count)
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would give a real table
    return str(AccessToken.for_user(reader))


async def load(base_url: str, token: str, *, limit: int, seconds: float, clients: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def client_loop(client):
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.get(f"/api/v1/tasks/?limit={limit}", headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or len(response.json()["results"]) != limit:
                errors += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()

    def pick(quantile: float) -> float:
        return latencies[min(len(latencies) - 1, int(quantile * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    token = seed(args.tasks)
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as server,
    ):
        base_url = server.base_url
        print(f"list endpoint, {args.tasks} tasks, {args.clients} clients, {args.seconds}s each")
        columns = ("limit", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "rss MiB")
        print(" ".join(f"{name:>8}" for name in columns))
        for limit in (1, 50, 200):
            result = asyncio.run(
                load(base_url, token, limit=limit, seconds=args.seconds, clients=args.clients)
            )
            figures = [result[name] for name in ("rps", "p50_ms", "p95_ms", "p99_ms")]
            print(
                f"{limit:>8} "
                + " ".join(f"{value:>8.1f}" for value in figures)
                + f" {result['errors']:>8} {common.rss_kib(server.daphne_pids()) / 1024:>8.1f}"
            )


if __name__ == "__main__":
    main()

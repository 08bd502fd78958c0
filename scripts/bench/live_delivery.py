"""Benchmark: live event delivery through daphne's WebSocket consumer.

Starts the stack as shipped (scripts/run), opens one WebSocket per user (N users), then
publishes M events to each user's stream group from this process, the way a Celery worker
does, and measures how fast they reach the sockets: deliveries per second, delay from
publish to receipt (p50/p99), daphne's CPU time per delivered event, and the database
transactions the server ran meanwhile (the consumer should need none per event).

    .venv/bin/python scripts/bench/live_delivery.py [--users 200] [--events 50]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/taskhub_bench.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common
from common import configure_environment, ensure_database

configure_environment()


def setup_users(count: int) -> list[tuple[int, str]]:
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.tasks.models import EventStream
    from apps.users.models import User

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    User.objects.filter(username__startswith="live-").delete()
    users = User.objects.bulk_create(
        User(username=f"live-{i}", email=f"live-{i}@example.com") for i in range(count)
    )
    EventStream.objects.filter(user__in=users).delete()
    return [(user.pk, str(AccessToken.for_user(user))) for user in users]


def transactions_committed() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


async def run(args, users, server) -> None:
    import websockets

    from realtime.groups import user_stream_group
    from realtime.publisher import send_to_groups

    expected = args.users * args.events
    delays: list[float] = []
    all_received = asyncio.Event()

    async def socket(token: str, ready: asyncio.Event):
        async with websockets.connect(
            f"{server.ws_url}/ws/tasks/", subprotocols=["bearer", token], max_queue=None
        ) as ws:
            json.loads(await ws.recv())  # hello
            ready.set()
            while True:
                event = json.loads(await ws.recv())
                delays.append(time.time() - event["task"]["sent_at"])
                if len(delays) >= expected:
                    all_received.set()

    readies = [asyncio.Event() for _ in users]
    sockets = [
        asyncio.create_task(socket(token, ready))
        for (_, token), ready in zip(users, readies, strict=True)
    ]
    await asyncio.gather(*(ready.wait() for ready in readies))
    await asyncio.sleep(0.5)  # let the last subscriptions settle

    def publish_all():
        for seq in range(1, args.events + 1):
            sent_at = time.time()
            send_to_groups(
                [
                    (
                        user_stream_group(user_id),
                        {
                            "type": "task.event",
                            "event": {
                                "type": "task.updated",
                                "seq": seq,
                                "at": "2026-11-26T10:00:00Z",
                                "actor": {"id": user_id, "username": "bench"},
                                "task": {"id": "bench", "sent_at": sent_at},
                                "changes": {"status": ["todo", "done"]},
                            },
                        },
                    )
                    for user_id, _ in users
                ]
            )

    loop = asyncio.get_running_loop()
    commits_before = await loop.run_in_executor(None, transactions_committed)
    cpu_before = common.cpu_seconds(server.daphne_pids())
    started = time.monotonic()
    await loop.run_in_executor(None, publish_all)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_received.wait(), args.timeout)
    elapsed = time.monotonic() - started
    cpu_used = common.cpu_seconds(server.daphne_pids()) - cpu_before
    commits = await loop.run_in_executor(None, transactions_committed) - commits_before
    for task in sockets:
        task.cancel()
    delays.sort()
    got = len(delays)

    def percentile(quantile: float) -> float:
        return delays[min(got - 1, int(quantile * got))] * 1000 if got else float("nan")

    print(f"{args.users} sockets, {args.events} events each: {got}/{expected} delivered")
    print(f"  deliveries per second  {got / elapsed:10.0f}")
    print(f"  publish to receipt     p50 {percentile(0.5):.1f} ms, p99 {percentile(0.99):.1f} ms")
    print(f"  daphne CPU per event   {cpu_used / max(got, 1) * 1e6:10.0f} µs")
    print(f"  database commits       {commits:10d} (during delivery, all processes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as server,
    ):
        os.environ["REDIS_URL"] = redis_url
        users = setup_users(args.users)
        asyncio.run(run(args, users, server))


if __name__ == "__main__":
    main()

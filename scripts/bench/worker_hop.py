"""Benchmark: the hop from a committed change to its live publish starting on Redis.

Changes go through the product's REST API (`PATCH /api/v1/tasks/<id>/`, the stack as
shipped via `scripts/run`) on a fixed open-loop schedule; or, with `--writer service`
(the default), through the product's own write service (`services.task_update`, the code
the API calls) from threads of this process, which brackets the commit within one
transaction's few milliseconds, even at a rate the REST tier on 2 cores cannot serve.
A process of its own subscribes to the channel layer's Redis pub/sub channels (channels_redis'
RedisPubSubChannelLayer publishes a group's messages on `<prefix>__group__<group>`:
here `taskhub__group__user-stream.<id>`) and timestamps the first message of each
(task id, version). Three figures:

- change begun -> on Redis: from sending the PATCH, or calling the service (commit comes
  later than this);
- change done -> on Redis: from its response, or the service's return (commit came
  before this). It is negative when the publish starts before the caller has its answer;
- commit -> on Redis (service writer only): the service's transaction runs inside one of
  this benchmark's, so the COMMIT is timed when it is issued (an upper bound: nothing
  can be published before it) and when it is acknowledged (a lower bound). The two differ
  by the COMMIT's round trip, so they decide the target.

Baseline (the floor of the hop): at the moment each PATCH is sent, this process also
PUBLISHes a plain message to Redis and times its arrival on the same subscription.

    .venv/bin/python scripts/bench/worker_hop.py [--rate 200] [--seconds 10] [--rounds 3]
        [--emails off|on] [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_hop, which is dropped and re-created.
"""

import argparse
import asyncio
import concurrent.futures
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common

common.configure_environment("taskhub_bench_hop")

LAYER_PATTERN = "taskhub__group__user-stream.*"
FLOOR_PREFIX = "bench.hop."
TARGET_P99 = 10.0
CONNECTIONS = 100


def event_key(data: bytes) -> tuple[str, int] | None:
    """(task id, version) of a channel-layer message (msgpack, as channels_redis packs it;
    the event inside is the JSON text the relay encoded once for every socket)."""
    import msgpack

    try:
        message = msgpack.unpackb(data)
        task = json.loads(message["text"])["task"]
        return task["id"], task["version"]
    except (ValueError, KeyError, TypeError):
        return None


def write_through_service(task, title: str) -> tuple[float, float, list, object]:
    """One change through the product's write service, with the moment it began, the
    moment its COMMIT was issued, and (filled in after commit) the moment the commit was
    acknowledged. The service's transaction is nested in one of this function's, so the
    COMMIT is this function's to time: the relay can publish no earlier than the COMMIT
    is issued, and the acknowledgement comes no earlier than the commit itself."""
    from django.db import close_old_connections, transaction

    from apps.tasks import services
    from apps.users.models import User

    close_old_connections()
    actor = User.objects.get(pk=task.creator.id)
    acknowledged: list[float] = []
    begun = time.monotonic()  # here, not when queued for a thread
    with transaction.atomic():
        # Registered first, so it runs first after the commit, before the service's own.
        transaction.on_commit(lambda: acknowledged.append(time.monotonic()))
        updated = services.task_update(task_id=task.id, actor=actor, data={"title": title})
        committing = time.monotonic()
    return begun, committing, acknowledged, updated


def record_arrivals(redis_url: str, sink) -> None:
    """In a process of its own: subscribe, and send (key, arrival time) through `sink`
    for each message. Timed here, not in the benchmark's process, whose writer threads
    hold the GIL and would delay the timestamps of both sides (CLOCK_MONOTONIC is one
    clock for every process of the machine)."""
    import redis

    pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(LAYER_PATTERN, FLOOR_PREFIX + "*")
    sink.send(None)  # subscribed
    for message in pubsub.listen():
        now = time.monotonic()
        if message["type"] != "pmessage":
            continue
        if message["channel"].startswith(FLOOR_PREFIX.encode()):
            key = ("floor", int(message["data"]))
        else:
            key = event_key(message["data"])
        if key is not None:
            sink.send((key, now))


async def bench(args, product, redis_url, tasks) -> None:
    import multiprocessing

    import httpx
    import redis.asyncio as redis

    from project.settings import redis_url_with_db

    # Forked before this process starts any thread (the writers' pool comes later).
    receiving, sink = multiprocessing.get_context("fork").Pipe(duplex=False)
    recorder = multiprocessing.get_context("fork").Process(
        target=record_arrivals, args=(redis_url_with_db(redis_url, 2), sink), daemon=True
    )
    recorder.start()
    receiving.recv()  # subscribed
    on_redis: dict[tuple, float] = {}

    def take_arrivals() -> None:
        while receiving.poll():
            key, at = receiving.recv()
            on_redis.setdefault(tuple(key), at)

    asyncio.get_running_loop().add_reader(receiving.fileno(), take_arrivals)
    # One connection, taken now: a pool would open connections in bursts under load.
    publisher = redis.from_url(redis_url, single_connection_client=True)
    await publisher.ping()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    client = httpx.AsyncClient(base_url=product.base_url, limits=limits, timeout=120)
    titles, floor_numbers = itertools.count(), itertools.count()
    writers = concurrent.futures.ThreadPoolExecutor(max_workers=16)
    figures = {"sent": [], "response": [], "floor": [], "issued": [], "acknowledged": []}
    commits: dict[tuple, tuple[float, float]] = {}
    missing = {"ours": 0, "floor": 0}
    failures = changes = 0

    async def change(task, number: int, results: list) -> None:
        nonlocal failures
        if args.writer == "service":
            title = f"hop {next(titles)}"
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                writers, lambda: write_through_service(task, title)
            )
            sent, committing, acknowledged, updated = outcome
            key = (str(task.id), updated.version)
            commits[key] = (committing, acknowledged[0])
            results.append((key, sent, time.monotonic(), number))
            return
        sent = time.monotonic()
        response = await client.patch(
            f"/api/v1/tasks/{task.id}/",
            json={"title": f"hop {next(titles)}"},
            headers={"Authorization": f"Bearer {task.creator.token}"},
        )
        answered = time.monotonic()
        if response.status_code != 200:
            failures += 1
            return
        results.append(((task.id, response.json()["version"]), sent, answered, number))

    # CONNECTIONS senders take the changes in order, each over its own connection: when the
    # server falls behind, changes wait here (not in an HTTP pool that grows without bound
    # and slows the client) and are timed from when their request is actually sent.
    queue: asyncio.Queue = asyncio.Queue()

    async def sender():
        while True:
            task, number, results = await queue.get()
            try:
                await change(task, number, results)
            except Exception:
                nonlocal failures
                failures += 1
            finally:
                queue.task_done()

    senders = [asyncio.create_task(sender()) for _ in range(CONNECTIONS)]
    floor_sent: dict[int, float] = {}
    # The tasks' creation events may still be on their way: start once they have landed.
    await common.wait_until_quiet(lambda: len(on_redis), quiet=2)
    answered_rates = []
    for _ in range(args.rounds):
        await asyncio.to_thread(common.wait_for_emails_sent)
        loop = asyncio.get_running_loop()
        count = max(1, int(args.rate * args.seconds))
        changes += count
        done: list = []
        began = loop.time()
        for index in range(count):
            delay = began + index / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            number = next(floor_numbers)
            queue.put_nowait((tasks[index % len(tasks)], number, done))
            floor_sent[number] = time.monotonic()
            await publisher.publish(f"{FLOOR_PREFIX}{number}", number)
        await queue.join()
        answered_rates.append(len(done) / (loop.time() - began))
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and not all(key in on_redis for key, *_ in done):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for key, sent, answered, number in done:
            if key in on_redis:
                figures["sent"].append((on_redis[key] - sent) * 1000)
                figures["response"].append((on_redis[key] - answered) * 1000)
                if key in commits:
                    issued, acknowledged = commits[key]
                    figures["issued"].append((on_redis[key] - issued) * 1000)
                    figures["acknowledged"].append((on_redis[key] - acknowledged) * 1000)
            else:
                missing["ours"] += 1
            if ("floor", number) in on_redis:
                figures["floor"].append((on_redis[("floor", number)] - floor_sent[number]) * 1000)
            else:
                missing["floor"] += 1
        await common.wait_until_quiet(lambda: len(on_redis))
    for task in senders:
        task.cancel()

    print(
        f"\nworker hop, emails {args.emails}, changes through {args.writer}: {args.rate:g} "
        f"changes/s, {args.rounds} rounds x "
        f"{args.seconds:g} s; ours and the floor are timed on the same changes"
    )
    for name, quantile in (("p50", 0.5), ("p99", 0.99)):
        ours = common.percentile(figures["sent"], quantile)
        floor = common.percentile(figures["floor"], quantile)
        print(common.figure_line(f"change begun -> on Redis {name}", ours, floor, "ms"))
    for name, quantile in (("p50", 0.5), ("p99", 0.99)):
        ours = common.percentile(figures["response"], quantile)
        print(f"{'change done -> on Redis ' + name:<34} ours {ours:>10.1f} ms    "
              "(negative: published before the change's caller got its answer)")  # fmt: skip
    if figures["issued"]:
        # Through the service the commit itself is bracketed within its round trip.
        for name, quantile in (("p50", 0.5), ("p99", 0.99)):
            issued = common.percentile(figures["issued"], quantile)
            acknowledged = common.percentile(figures["acknowledged"], quantile)
            print(f"{'commit -> on Redis ' + name:<34} ours {issued:>10.1f} ms from COMMIT "
                  f"issued, {acknowledged:.1f} ms from its acknowledgement")  # fmt: skip
        low = common.percentile(figures["acknowledged"], 0.99)
        high = common.percentile(figures["issued"], 0.99)
    else:
        low = common.percentile(figures["response"], 0.99)
        high = common.percentile(figures["sent"], 0.99)
    verdict = "met" if high <= TARGET_P99 else "missed" if low > TARGET_P99 else "undecided"
    print(f"commit -> on Redis p99 lies in [{low:.1f}, {high:.1f}] ms: target <= "
          f"{TARGET_P99:g} ms {verdict}")  # fmt: skip
    print(f"{'not on Redis ' + str(args.drain) + ' s after':<34} ours {missing['ours']:>10} of "
          f"{changes - failures:<8} baseline {missing['floor']:>6}")  # fmt: skip
    print(f"{'failed PATCHes':<34} ours {failures:>10} of {changes}")
    answered = sum(answered_rates) / len(answered_rates)
    print(f"{'PATCHes answered per second':<34} ours {answered:>10.1f} (offered {args.rate:g})")
    path = common.write_histogram_svg(
        common.histogram_path("worker_hop"),
        f"worker hop, {args.rate:g} changes/s: PATCH sent -> message on Redis",
        {"ours": figures["sent"], "floor (plain PUBLISH)": figures["floor"]},
    )
    print(f"histogram: {path}")
    asyncio.get_running_loop().remove_reader(receiving.fileno())
    recorder.terminate()
    recorder.join()
    await client.aclose()
    await publisher.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="changes per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--drain", type=float, default=30)
    parser.add_argument("--emails", choices=("off", "on"), default="off")
    parser.add_argument("--writer", choices=("rest", "service"), default="service")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.rounds, args.drain = 20, 2, 1, 10
    common.fresh_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as product,
    ):
        common.setup_django(redis_url)
        users = common.make_users("hop", 20, emails=args.emails == "on")
        tasks = common.create_tasks(product.base_url, users)
        common.run(bench(args, product, redis_url, tasks))


if __name__ == "__main__":
    main()

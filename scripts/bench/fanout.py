"""Benchmark: fan-out of task events through the two channels-redis layers.

One process holds N sockets' worth of channels (as daphne would), each in its own
user-stream group; another process (as a Celery worker would) publishes events, each to
the groups of K recipients, through one long-lived event loop. Prints, per layer, the
deliveries per second and the delay from `group_send` to arrival (p50/p99), so the choice
of layer in settings rests on figures from this machine.

    .venv/bin/python scripts/bench/fanout.py [--sockets 2000] [--events 2000] [--recipients 3]

Needs REDIS_URL (e.g. redis://:password@127.0.0.1:6379/0); it uses db+2 like the product.
"""

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

LAYERS = {
    "RedisChannelLayer": "channels_redis.core.RedisChannelLayer",
    "RedisPubSubChannelLayer": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def make_layer(backend: str):
    from django.utils.module_loading import import_string

    from project.settings import redis_url_with_db

    address = redis_url_with_db(os.environ["REDIS_URL"], 2)
    host = {"address": address, "max_connections": 2000}
    return import_string(backend)(hosts=[host], prefix="bench")


def publish(backend: str, sockets: int, events: int, recipients: int, ready, go) -> None:
    """The worker side: one loop, `events` events, each to `recipients` groups."""

    async def run():
        layer = make_layer(backend)
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        rng = random.Random(7)
        for _ in range(events):
            targets = rng.sample(range(sockets), recipients)
            sent_at = time.time()
            await asyncio.gather(
                *(
                    layer.group_send(f"user-stream.{user}", {"type": "task.event", "t": sent_at})
                    for user in targets
                )
            )
        await asyncio.sleep(0.5)

    asyncio.run(run())


async def receive_all(backend: str, sockets: int, expected: int) -> dict:
    layer = make_layer(backend)
    channels = []
    for user in range(sockets):
        channel = await layer.new_channel()
        await layer.group_add(f"user-stream.{user}", channel)
        channels.append(channel)
    delays: list[float] = []
    done = asyncio.Event()

    async def socket_loop(channel):
        while True:
            message = await layer.receive(channel)
            delays.append(time.time() - message["t"])
            if len(delays) >= expected:
                done.set()

    tasks = [asyncio.create_task(socket_loop(channel)) for channel in channels]
    return {"layer": layer, "channels": channels, "delays": delays, "done": done, "tasks": tasks}


def run_layer(name: str, args) -> None:
    backend = LAYERS[name]
    expected = args.events * args.recipients
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()

    async def main():
        state = await receive_all(backend, args.sockets, expected)
        publisher = ctx.Process(
            target=publish, args=(backend, args.sockets, args.events, args.recipients, ready, go)
        )
        publisher.start()
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        started = time.monotonic()
        go.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state["done"].wait(), args.timeout)
        elapsed = time.monotonic() - started
        publisher.join(timeout=30)
        # Cancelled receives make channels-redis log clean-up noise; it is not news here.
        logging.disable(logging.CRITICAL)
        for task in state["tasks"]:
            task.cancel()
        delays = sorted(state["delays"])
        got = len(delays)

        def percentile(quantile: float) -> float:
            return delays[min(got - 1, int(quantile * got))] * 1000 if got else float("nan")

        print(
            f"{name:>24} {got:>8}/{expected:<8} {got / elapsed:>10.0f} "
            f"{percentile(0.5):>8.1f} {percentile(0.99):>8.1f}"
        )

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL (e.g. redis://:password@127.0.0.1:6379/0).")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    print(
        f"{args.sockets} sockets, {args.events} events to {args.recipients} recipients each\n"
        f"{'layer':>24} {'delivered':>17} {'per second':>10} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for name in LAYERS:
        run_layer(name, args)


if __name__ == "__main__":
    main()

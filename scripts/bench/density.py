"""Benchmark: density, what an idle authenticated socket costs the web tier.

Opens N idle sockets (one per user) to the stack as shipped (`scripts/run`), and reports
the daphne processes' resident memory per socket (RSS after minus before, summed over
every daphne process in scripts/run's process group, divided by N) and their CPU over an
idle stretch (% of one core). The baseline is scripts/bench/relay.py holding the same
sockets. Each measurement starts a fresh server (freed memory is not given back to the
system, so a second fill of the same process would look cheaper); ours and the baseline
alternate over the rounds. Memory is in KiB.

    .venv/bin/python scripts/bench/density.py [--sockets 1000 5000] [--rounds 2] [--idle 10]
        [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_density, which is dropped and re-created.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common

common.configure_environment("taskhub_bench_density")

TARGETS = {"kib": 30, "cpu": 5.0}
WARM_UP = 20  # sockets opened and closed first, so lazy imports and pools are not counted
FD_LIMIT = 16384


async def measure(opener, users, pids, idle_seconds: float) -> dict:
    """Fill the server with one socket per user; RSS per socket and idle CPU %."""
    warm = await common.open_many([lambda u=u: opener(u) for u in users[:WARM_UP]])
    await close_all(warm)
    await asyncio.sleep(1)
    before = common.rss_kib(pids())
    opened = await common.open_many([lambda u=u: opener(u) for u in users])
    await asyncio.sleep(2)  # connects still being handled settle
    after = common.rss_kib(pids())
    cpu_before, started = common.cpu_seconds(pids()), time.monotonic()
    await asyncio.sleep(idle_seconds)
    cpu = (common.cpu_seconds(pids()) - cpu_before) / (time.monotonic() - started) * 100
    await close_all(opened)
    return {"kib": (after - before) / len(users), "cpu": cpu, "rss_mib": after / 1024}


async def close_all(opened) -> None:
    async def close(ws):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)

    await asyncio.gather(*(close(ws) for ws, _ in opened))


def measure_ours(users, count, idle_seconds, redis_url, email_url) -> dict:
    with common.stack(redis_url=redis_url, email_url=email_url, nofile=FD_LIMIT) as product:
        opener = lambda user: common.open_product_socket(product.ws_url, user.token)  # noqa: E731
        return common.run(measure(opener, users[:count], product.daphne_pids, idle_seconds))


def measure_baseline(users, count, idle_seconds, redis_url) -> dict:
    with common.relay(redis_url, nofile=FD_LIMIT) as relay:
        opener = lambda user: common.open_relay_socket(relay.ws_url, user.id)  # noqa: E731
        pids = lambda: [relay.process.pid]  # noqa: E731
        return common.run(measure(opener, users[:count], pids, idle_seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle CPU measured")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.rounds, args.idle = [200], 1, 2
    common.raise_fd_limit(FD_LIMIT)
    common.fresh_database(os.environ["DATABASE_URL"])
    with common.redis_server() as redis_url, common.smtp_sink() as email_url:
        # One start to migrate the fresh database before the users are made.
        with common.stack(redis_url=redis_url, email_url=email_url):
            common.setup_django(redis_url)
            users = common.make_users("idle", max(args.sockets) + WARM_UP)
        users = users[WARM_UP:] + users[:WARM_UP]  # the warm-up sockets are other users
        for count in args.sockets:
            results = common.alternate(
                args.rounds,
                {
                    "ours": lambda _, c=count: measure_ours(
                        users, c, args.idle, redis_url, email_url
                    ),
                    "baseline": lambda _, c=count: measure_baseline(users, c, args.idle, redis_url),
                },
            )
            mine, floor = results["ours"], results["baseline"]
            print(f"\ndensity, {count} idle authenticated sockets, {args.rounds} rounds, "
                  f"idle CPU over {args.idle:g} s")  # fmt: skip
            for key, label, unit in (
                ("kib", f"RSS per socket (target <= {TARGETS['kib']} KiB)", "KiB"),
                ("cpu", f"idle CPU (target < {TARGETS['cpu']:g} %)", "%"),
                ("rss_mib", "RSS with all sockets open", "MiB"),
            ):
                ours_value = statistics.median(result[key] for result in mine)
                floor_value = statistics.median(result[key] for result in floor)
                print(common.figure_line(label, ours_value, floor_value, unit))


if __name__ == "__main__":
    main()

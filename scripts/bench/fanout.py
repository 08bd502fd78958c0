"""Benchmark: fan-out through daphne's consumer (the stack as shipped, `scripts/run`),
against a bare relay on Redis pub/sub with the same sockets.

Two layouts: one group of 1,000 sockets (1,000 tabs of one user) and 100 groups of 10
(100 users x 10 tabs). This process publishes events to the groups through the product's
channel layer (`realtime.publisher.send_to_groups`; the relay pipelines the same
messages, so this publisher is, if anything, slower than the product's) at a fixed
rate of deliveries per second, for a fixed time, in order per group from the hello's
`last_seq` (the consumer forwards only the next `seq`). The delay of a delivery runs from
its planned publish time to its arrival on the socket, so a publisher that falls behind
shows too. Lost = not on its socket `--drain` seconds after the last publish.

The baseline (scripts/bench/relay.py) gets the same event text with a plain Redis PUBLISH
to each user's channel, on the same schedule.

    .venv/bin/python scripts/bench/fanout.py [--rate 10000] [--seconds 30] [--rounds 2] [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_fanout, which is dropped and re-created.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common

common.configure_environment("taskhub_bench_fanout")

LAYOUTS = {"1 group x 1000": (1, 1000), "100 groups x 10": (100, 10)}
TARGETS = {"rate": 10_000, "p99": 100.0, "floor_share": 0.3}


def event_body(user_id: int, seq: int) -> dict:
    """One user's stream entry, shaped as the live path sends it."""
    return {
        "type": "task.updated",
        "seq": seq,
        "at": "2026-11-28T10:00:00.000000Z",
        "actor": {"id": user_id, "username": "fanout"},
        "task": {
            "id": "00000000-0000-0000-0000-000000000000",
            "title": "Fan-out benchmark task",
            "status": "in_progress",
            "priority": "High",
            "assignee": user_id,
            "created_by": {"id": user_id, "username": "fanout"},
            "version": seq + 1,
        },
        "changes": {"status": ["todo", "in_progress"]},
    }


def layer_message(user_id: int, seq: int) -> dict:
    """The channel-layer message as the relay sends it: the seq, and the JSON text that
    the consumer sends as it is."""
    from realtime.relay import stream_message

    return stream_message(seq, event_body(user_id, seq))


def seq_of(text: str) -> int | None:
    """The event's `seq`, read without decoding the whole message (the client must stay
    cheap at 10,000 messages a second); None for messages that have none."""
    start = text.find('"seq": ')
    if start < 0:
        return json.loads(text).get("seq")
    start += 7
    return int(text[start : text.find(",", start)])


class Receiver:
    """Per socket: arrivals (time, user, seq), in-order count and duplicates."""

    def __init__(self):
        self.arrivals: list[tuple[float, int, int]] = []
        self.duplicated = 0
        self.last: dict[int, int] = {}

    async def run(self, ws, socket_no: int, user_id: int) -> None:
        arrivals, last = self.arrivals, self.last
        with contextlib.suppress(Exception):
            async for text in ws:
                now = time.monotonic()
                seq = seq_of(text)
                if seq is None:
                    continue
                if seq <= last.get(socket_no, -1):
                    self.duplicated += 1
                    continue
                last[socket_no] = seq
                arrivals.append((now, user_id, seq))


def publish_on_schedule(send_tick, ticks: int, tick_rate: float, started: float) -> None:
    """Call send_tick(i) at started + i / tick_rate (in this thread), never early."""
    for number in range(ticks):
        delay = started + number / tick_rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send_tick(number)


async def run_round(side, users, sockets_each, seqs, rate, seconds, drain, send_tick_for):
    """One timed round; `send_tick_for(first_seqs)` returns the function that publishes
    tick i (seq = first_seqs[user] + i to every user's group)."""
    receiver: Receiver = side["receiver"]
    receiver.arrivals.clear()
    receiver.duplicated = 0
    total = len(users) * sockets_each
    tick_rate = rate / total
    ticks = max(1, int(tick_rate * seconds))
    first = {user.id: seqs[user.id] + 1 for user in users}
    started = time.monotonic() + 0.2
    thread = threading.Thread(
        target=publish_on_schedule, args=(send_tick_for(first), ticks, tick_rate, started)
    )
    thread.start()
    await asyncio.to_thread(thread.join)
    published = time.monotonic()
    expected = total * ticks
    deadline = published + drain
    while len(receiver.arrivals) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    arrivals = list(receiver.arrivals)
    await common.wait_until_quiet(lambda: len(receiver.arrivals))
    for user in users:
        seqs[user.id] += ticks
    delays = [
        (arrived - (started + (seq - first[user]) / tick_rate)) * 1000
        for arrived, user, seq in arrivals
        if seq >= first[user]
    ]
    last_arrival = max((arrived for arrived, _, _ in arrivals), default=published)
    return {
        "delays": delays,
        "delivered": len(delays),
        "expected": expected,
        "lost": max(0, expected - len(delays)),
        "duplicated": receiver.duplicated,
        "per_second": len(delays) / max(last_arrival - started, 1e-9),
    }


async def bench_layout(args, label, users, sockets_each, product, base, seqs) -> None:
    import redis

    from realtime.groups import user_stream_group
    from realtime.publisher import send_to_groups

    ours, floor = {"receiver": Receiver()}, {"receiver": Receiver()}
    layout = [user for user in users for _ in range(sockets_each)]
    opened_ours = await common.open_many(
        [lambda u=u: common.open_product_socket(product.ws_url, u.token) for u in layout]
    )
    opened_floor = await common.open_many(
        [lambda u=u: common.open_relay_socket(base.ws_url, u.id) for u in layout]
    )
    for user in users:
        seqs.setdefault(user.id, 0)
    hello_seqs = {hello["last_seq"] for _, hello in opened_ours}
    assert hello_seqs == {0}, f"fresh users start at last_seq 0, got {hello_seqs}"
    tasks = []
    for side, opened in ((ours, opened_ours), (floor, opened_floor)):
        for number, ((ws, _), user) in enumerate(zip(opened, layout, strict=True)):
            tasks.append(asyncio.create_task(side["receiver"].run(ws, number, user.id)))
    await asyncio.sleep(1)  # every subscription settled
    publisher = redis.Redis.from_url(os.environ["REDIS_URL"])
    floor_seqs = dict.fromkeys(seqs, 0)

    def ours_tick_for(first):
        def send(tick):
            send_to_groups(
                [(user_stream_group(u.id), layer_message(u.id, first[u.id] + tick)) for u in users]
            )

        return send

    def floor_tick_for(first):
        def send(tick):
            pipe = publisher.pipeline(transaction=False)
            for u in users:
                text = json.dumps(event_body(u.id, first[u.id] + tick))
                pipe.publish(common.relay_channel(u.id), text)
            pipe.execute()

        return send

    runners = {
        "ours": lambda _: run_round(
            ours, users, sockets_each, seqs, args.rate, args.seconds, args.drain, ours_tick_for
        ),
        "baseline": lambda _: run_round(
            floor, users, sockets_each, floor_seqs, args.rate, args.seconds, args.drain,
            floor_tick_for,
        ),
    }  # fmt: skip
    results = {"ours": [], "baseline": []}
    for number in range(args.rounds):
        for name in ("ours", "baseline") if number % 2 == 0 else ("baseline", "ours"):
            results[name].append(await runners[name](number))
    merged = {name: _merge(rounds) for name, rounds in results.items()}
    mine, floor_figures = merged["ours"], merged["baseline"]
    print(
        f"\nfan-out, {label} ({len(layout)} sockets): {args.rate:g} deliveries/s offered, "
        f"{args.rounds} rounds x {args.seconds:g} s each side"
    )
    rate_label = f"deliveries/s (target >= {TARGETS['rate']})"
    print(
        common.figure_line(rate_label, mine["per_second"], floor_figures["per_second"], "/s", ".0f")
    )
    for name, quantile in (("p50", 0.5), ("p99", 0.99)):
        target = f" (target <= {TARGETS['p99']:g} ms)" if name == "p99" else ""
        ours_ms = common.percentile(mine["delays"], quantile)
        floor_ms = common.percentile(floor_figures["delays"], quantile)
        print(common.figure_line(f"delay {name}{target}", ours_ms, floor_ms, "ms"))
    for name in ("lost", "duplicated"):
        print(f"{name + ' (target 0)':<34} ours {mine[name]:>10} of {mine['expected']:<8} "
              f"baseline {floor_figures[name]:>6} of {floor_figures['expected']}")  # fmt: skip
    share = common.ratio(mine["per_second"], floor_figures["per_second"])
    print(f"{'ours / floor (target >= 0.3)':<34} {share:.2f}")
    slug = label.replace(" ", "")
    path = common.write_histogram_svg(
        common.histogram_path(f"fanout_{slug}"),
        f"fan-out {label}, {args.rate:g} deliveries/s: publish -> socket",
        {"ours": mine["delays"], "baseline": floor_figures["delays"]},
    )
    print(f"histogram: {path}")
    publisher.close()
    for task in tasks:
        task.cancel()
    for ws, _ in opened_ours + opened_floor:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


def _merge(rounds: list[dict]) -> dict:
    return {
        "delays": [delay for result in rounds for delay in result["delays"]],
        "per_second": sum(r["per_second"] for r in rounds) / len(rounds),
        **{name: sum(r[name] for r in rounds) for name in ("lost", "duplicated", "expected")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--drain", type=float, default=15)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.drain = 2, 1, 3
    common.raise_fd_limit(8192)
    common.fresh_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url, nofile=8192) as product,
        common.relay(redis_url, nofile=8192) as base,
    ):
        common.setup_django(redis_url)
        seqs: dict[int, int] = {}
        for label, (groups, sockets_each) in LAYOUTS.items():
            users = common.make_users(f"fan{groups}", groups)
            common.run(bench_layout(args, label, users, sockets_each, product, base, seqs))


if __name__ == "__main__":
    main()

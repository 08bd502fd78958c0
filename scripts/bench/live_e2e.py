"""Benchmark: end to end, from a REST change to its arrival on every socket that should
get it, through the stack as shipped (`scripts/run`), against a bare relay.

Layout: 20 users x 10 tabs (200 sockets) plus 50 idle sockets of 50 other users. Each of
the 20 has 5 tasks, 2 of them assigned to the next user, so those events go to 2 users
(20 sockets). Changes are PATCHes (`PATCH /api/v1/tasks/<id>/`, bearer token) sent on a
fixed open-loop schedule: each at its planned time, whatever the earlier responses did.
A delivery is matched by (user, task id, task version); its delay runs from sending the
PATCH to its arrival on that socket. Lost = an expected delivery that did not arrive
within the drain time; duplicated = one that arrived more than once.

With `--project-members N`, every change is to a task of one project of N members
(created with the ORM: the first is its owner, the rest role "member"), each member has
one socket (plus the 50 idle ones), and each event goes to all N. The project's 20 tasks
are created through the API (`"project": <id>`), each PATCHed by its creator. Each
delivery's delay is also given from the PATCH's answer (which comes after the commit, so
it is a lower bound of commit -> socket, as "from sent" is an upper bound), and per
change the delay to its LAST member's socket.

Baseline: scripts/bench/relay.py (bare websockets, Redis pub/sub per user) with the same
sockets, fed at the same times by this process PUBLISHing the same events to Redis (one
PUBLISH per recipient).

    .venv/bin/python scripts/bench/live_e2e.py [--rate 20] [--seconds 20] [--rounds 4]
        [--emails on|off|both] [--find-max] [--project-members N] [--quick]

REDIS_URL is used when set (else a private redis-server); DATABASE_URL defaults to
postgres://postgres@127.0.0.1:5432/taskhub_bench_live, which is dropped and re-created.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common
import openloop

common.configure_environment("taskhub_bench_live")

USERS, TABS, IDLE = 20, 10, 50
TARGETS = {"p50": 15.0, "p99": 50.0, "max_rate": 100}
# --project-members: commit -> every member's socket, at 20 changes/s (issue 13).
PROJECT_TARGETS = {"p50": 10.0, "p99": 40.0}
PROJECT_TASKS = 20
FIND_MAX_RATES = (50, 100, 150, 200)
START_LIMIT_MS = 100  # find-max: a rate whose first fifth waits longer is past capacity


@dataclass
class Side:
    """One side's sockets and what arrived on them, keyed (socket, task id, version)."""

    name: str
    sockets_of: dict[int, list[int]] = field(default_factory=dict)  # user id -> socket nos
    arrivals: dict[tuple, list] = field(default_factory=dict)  # key -> [first time, count]
    open: list = field(default_factory=list)
    answered_ms: list = field(default_factory=list)  # PATCH sent -> its response (ours)


def baseline_event(task: common.BenchTask, version: int, seq: int, title: str) -> str:
    """The event the product would send for this change, as text (the relay forwards it)."""
    return json.dumps(
        {
            "type": "task.updated",
            "seq": seq,
            "at": "2026-11-28T10:00:00.000000Z",
            "actor": {"id": task.creator.id, "username": task.creator.username},
            "task": {
                "id": task.id,
                "title": title,
                "description": "",
                "status": "todo",
                "priority": "Medium",
                "due_at": None,
                "metadata": {},
                "assignee": task.assignee.id if task.assignee else None,
                "created_by": {"id": task.creator.id, "username": task.creator.username},
                "archived_at": None,
                "version": version,
                "created_at": "2026-11-28T10:00:00.000000Z",
                "updated_at": "2026-11-28T10:00:00.000000Z",
            },
            "changes": {"title": [task.title, title]},
        }
    )


async def receive(ws, socket_no: int, side: Side) -> None:
    arrivals = side.arrivals
    with contextlib.suppress(Exception):
        async for text in ws:
            now = time.monotonic()
            task = json.loads(text).get("task")
            if task is None:
                continue
            key = (socket_no, task["id"], task["version"])
            seen = arrivals.get(key)
            if seen is None:
                arrivals[key] = [now, 1]
            else:
                seen[1] += 1


async def open_side(side: Side, opener, users, idle, tabs: int = TABS) -> list[asyncio.Task]:
    """`tabs` sockets per user and one per idle user; returns their receiving tasks."""
    layout = [(user, tab) for user in users for tab in range(tabs)] + [(user, 0) for user in idle]
    opened = await common.open_many([lambda user=user: opener(user) for user, _ in layout])
    receivers = []
    for socket_no, ((user, _), (ws, _hello)) in enumerate(zip(layout, opened, strict=True)):
        side.sockets_of.setdefault(user.id, []).append(socket_no)
        side.open.append(ws)
        receivers.append(asyncio.create_task(receive(ws, socket_no, side)))
    return receivers


async def run_round(side: Side, send_change, tasks, rate: float, seconds: float, drain: float):
    """Send rate x seconds changes at their planned times; wait for them to arrive."""
    pending = await asyncio.to_thread(common.wait_for_emails_sent)
    side.arrivals.clear()
    sent: dict[tuple, tuple] = {}  # (task id, version) -> (send time, answer time, task)
    failures = 0
    in_flight = set()

    async def one(number: int, task: common.BenchTask):
        nonlocal failures
        started = time.monotonic()
        try:
            version = await send_change(task, number)
        except Exception:
            version = None
        if version is None:
            failures += 1
        else:
            sent[(task.id, version)] = (started, time.monotonic(), task)

    loop = asyncio.get_running_loop()
    count = max(1, int(rate * seconds))
    began = loop.time()
    for number in range(count):
        delay = began + number / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        job = asyncio.create_task(one(number, tasks[number % len(tasks)]))
        in_flight.add(job)
        job.add_done_callback(in_flight.discard)
    send_span = loop.time() - began
    if in_flight:
        await asyncio.wait(set(in_flight), timeout=60)
    expected = sum(
        len(side.sockets_of[user]) for *_, task in sent.values() for user in task.recipients
    )
    deadline = loop.time() + drain
    while len(side.arrivals) < expected and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # a duplicate, if any, comes right after
    arrivals = {key: list(seen) for key, seen in side.arrivals.items()}
    await common.wait_until_quiet(lambda: sum(seen[1] for seen in side.arrivals.values()))
    delays, from_answer, last_member, by_send, lost, duplicated = [], [], [], [], 0, 0
    for (task_id, version), (started, answered, task) in sent.items():
        last = -math.inf
        for user in task.recipients:
            for socket_no in side.sockets_of[user]:
                seen = arrivals.get((socket_no, task_id, version))
                if seen is None:
                    lost += 1
                    continue
                delay_ms = (seen[0] - started) * 1000
                delays.append(delay_ms)
                from_answer.append((seen[0] - answered) * 1000)
                last = max(last, seen[0])
                by_send.append((started, delay_ms))
                duplicated += seen[1] - 1
        if last > -math.inf:
            last_member.append((last - answered) * 1000)
    return {
        "delays": delays,
        "from_answer": from_answer,
        "last_member": last_member,
        "by_send": by_send,
        "lost": lost,
        "duplicated": duplicated,
        "expected": expected,
        "failures": failures,
        "changes": count,
        "send_rate": count / send_span if send_span > 0 else math.inf,
        "pending_before": pending,
    }


def backlog_held(result: dict) -> tuple[bool, float, float]:
    """Is the delay at the end of the run no worse than at its start (first and last
    fifth of the sends, by p50; 'no worse' allows 2x or +20 ms of noise), and was there
    no backlog to begin with (the first fifth's p50 at most START_LIMIT_MS)? Without the
    second rule, a rate far past capacity passed when its backlog had grown within the
    first fifth already (200/s: p50 1.9 s at the start, 2.9 s at the end)."""
    by_send = sorted(result["by_send"])
    if not by_send:
        return False, math.nan, math.nan
    fifth = max(1, len(by_send) // 5)
    start = common.percentile([delay for _, delay in by_send[:fifth]], 0.5)
    end = common.percentile([delay for _, delay in by_send[-fifth:]], 0.5)
    held = (
        not result["lost"]
        and not result["failures"]
        and start <= START_LIMIT_MS
        and end <= max(2 * start, start + 20)
    )
    return held, start, end


def merge(results: list[dict]) -> dict:
    return {
        **{
            name: [delay for result in results for delay in result[name]]
            for name in ("delays", "from_answer", "last_member")
        },
        **{
            name: sum(result[name] for result in results)
            for name in ("lost", "duplicated", "expected", "failures", "changes")
        },
    }


async def bench(args, product, base, users, idle, tasks) -> None:
    import redis.asyncio as redis

    tabs = 1 if args.project_members else TABS
    ours, baseline = Side("ours"), Side("baseline")
    receivers = await open_side(
        ours,
        lambda user: common.open_product_socket(product.ws_url, user.token),
        users,
        idle,
        tabs,
    )
    receivers += await open_side(
        baseline, lambda user: common.open_relay_socket(base.ws_url, user.id), users, idle, tabs
    )
    await asyncio.sleep(1)  # every subscription settled
    # The tasks' creation events may still be on their way: start once they have landed.
    await common.wait_until_quiet(lambda: sum(seen[1] for seen in ours.arrivals.values()), quiet=2)
    client = openloop.KeepAliveClient(product.base_url, max_connections=200)
    publisher = redis.from_url(os.environ["REDIS_URL"], max_connections=200)
    versions = {task.id: task.version for task in tasks}
    seqs: dict[int, int] = {}
    # A PATCH that changes nothing makes no event: every change gets a title never used.
    titles = itertools.count()

    async def patch(task: common.BenchTask, number: int) -> int | None:
        started = time.perf_counter()
        headers = {
            "Authorization": f"Bearer {task.creator.token}",
            "Content-Type": "application/json",
        }
        body = json.dumps({"title": f"change {next(titles)}"}).encode()
        try:
            status, content = await asyncio.wait_for(
                client.request("PATCH", f"/api/v1/tasks/{task.id}/", headers, body), 60
            )
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            return None
        ours.answered_ms.append((time.perf_counter() - started) * 1000)
        return json.loads(content)["version"] if status == 200 else None

    async def publish(task: common.BenchTask, number: int) -> int:
        versions[task.id] += 1
        version = versions[task.id]
        texts = []
        for user in task.recipients:
            seqs[user] = seqs.get(user, 0) + 1
            text = baseline_event(task, version, seqs[user], f"change {number}")
            texts.append((common.relay_channel(user), text))
        if args.project_members:
            # One pipeline per change, as the product's relay sends a batch: a PUBLISH per
            # member at once took up to 50 of the pool's connections per change, and a
            # backlog emptied the pool ("Too many connections": changes failed).
            async with publisher.pipeline(transaction=False) as pipe:
                for channel, text in texts:
                    pipe.publish(channel, text)
                await pipe.execute()
        else:
            await asyncio.gather(*(publisher.publish(channel, text) for channel, text in texts))
        return version

    async def run(side, rate, seconds):
        sender = patch if side is ours else publish
        return await run_round(side, sender, tasks, rate, seconds, args.drain)

    layout = f"{len(users) * tabs} sockets ({len(users)} users x {tabs} tabs) + {IDLE} idle"
    if args.project_members:
        layout += f"; every change to a task of a {args.project_members}-member project"
    for emails in ("off", "on") if args.emails == "both" else (args.emails,):
        await asyncio.to_thread(common.set_email_preference, users + idle, emails=emails == "on")
        results = {"ours": [], "baseline": []}
        for number in range(args.rounds):
            order = ("ours", "baseline") if number % 2 == 0 else ("baseline", "ours")
            for name in order:
                side = ours if name == "ours" else baseline
                result = await run(side, args.rate, args.seconds)
                results[name].append(result)
                # Per round, so that a stall in one round shows as such.
                print(f"  round {number + 1} {name:<8} p50 / p99 from sent "
                      f"{common.percentile(result['delays'], 0.5):7.1f} / "
                      f"{common.percentile(result['delays'], 0.99):7.1f} ms, lost "
                      f"{result['lost']}", flush=True)  # fmt: skip
        mine, floor = merge(results["ours"]), merge(results["baseline"])
        print(
            f"\nlive e2e, emails {emails}: {args.rate:g} changes/s, {args.rounds} rounds x "
            f"{args.seconds:g} s each side, {layout}"
        )
        for label, quantile in (("p50", 0.5), ("p99", 0.99)):
            # The project run's targets are on commit -> socket (see print_project_figures).
            goal = "from sent" if args.project_members else f"target <= {TARGETS[label]:g} ms"
            line = common.figure_line(
                f"delay {label} ({goal})",
                common.percentile(mine["delays"], quantile),
                common.percentile(floor["delays"], quantile),
                "ms",
            )
            print(line)
        print(f"(lost = not on its socket {args.drain:g} s after the round's last response)")
        for name in ("lost", "duplicated"):
            print(f"{name + ' (target 0)':<34} ours {mine[name]:>10} of {mine['expected']:<8} "
                  f"baseline {floor[name]:>6} of {floor['expected']}")  # fmt: skip
        failed = f"baseline {floor['failures']:>6} of {floor['changes']}"
        print(f"{'failed PATCHes (PUBLISHes)':<34} ours {mine['failures']:>10} of "
              f"{mine['changes']:<8} {failed}")  # fmt: skip
        if args.project_members:
            print_project_figures(mine, floor)
        # How much of the delay is the PATCH itself: sent -> answered, as the client saw it.
        answered = ours.answered_ms
        print(
            f"{'PATCH answered p50 / p99':<34} ours {common.percentile(answered, 0.5):>7.1f} / "
            f"{common.percentile(answered, 0.99):.1f} ms"
        )
        ours.answered_ms = []
        name = f"project{args.project_members}_" if args.project_members else ""
        path = common.write_histogram_svg(
            common.histogram_path(f"live_e2e_{name}emails_{emails}"),
            f"live e2e, {name}emails {emails}, {args.rate:g} changes/s: PATCH sent -> socket",
            {"ours": mine["delays"], "baseline": floor["delays"]},
        )
        print(f"histogram: {path}")
    if args.find_max:
        await find_max(args, ours, baseline, run)
    client.close()
    await publisher.aclose()
    for receiver in receivers:
        receiver.cancel()
    for ws in ours.open + baseline.open:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


def print_project_figures(mine: dict, floor: dict) -> None:
    """From the PATCH's answer (the baseline's: its PUBLISHes done) to each member's
    socket, and per change to its last member's; the answer comes after the commit, so
    these are lower bounds of commit -> socket (the "delay" lines above, from sending the
    PATCH, are upper bounds)."""
    print("from the answer (after the commit: a lower bound of commit -> socket):")
    rows = [(f"from answer {label}", "from_answer", quantile, PROJECT_TARGETS.get(label))
            for label, quantile in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))]  # fmt: skip
    rows += [(f"last member, from answer {label}", "last_member", quantile, None)
             for label, quantile in (("p50", 0.5), ("p99", 0.99))]  # fmt: skip
    rows.append(("delay max (from sent)", "delays", 1.0, None))
    for label, series, quantile, target in rows:
        goal = f" (target <= {target:g} ms)" if target else ""
        ours = common.percentile(mine[series], quantile)
        base = common.percentile(floor[series], quantile)
        print(common.figure_line(label + goal, ours, base, "ms"))


async def find_max(args, ours, baseline, run) -> None:
    print(f"\nfind max: {args.max_seconds:g} s per rate, held = no lost, no failed PATCH, "
          f"p50 of the first fifth <= {START_LIMIT_MS} ms and of the last fifth "
          "<= max(2x, +20 ms) of the first fifth's")  # fmt: skip
    held = {"ours": 0, "baseline": 0}
    failed = set()
    for rate in args.max_rates:
        for side in (ours, baseline):
            if side.name in failed:
                continue
            result = await run(side, rate, args.max_seconds)
            ok, start, end = backlog_held(result)
            print(
                f"  {side.name:<8} {rate:>5}/s  sent at {result['send_rate']:7.1f}/s  "
                f"p50 start {start:8.1f} ms, end {end:8.1f} ms  lost {result['lost']}  "
                f"failed {result['failures']}  {'held' if ok else 'NOT held'}"
            )
            if ok:
                held[side.name] = rate
            else:
                failed.add(side.name)
    print(common.figure_line(f"max rate held (target >= {TARGETS['max_rate']}/s)",
                             held["ours"], held["baseline"], "/s", "d"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--drain", type=float, default=30, help="seconds to wait for stragglers")
    parser.add_argument("--emails", choices=("on", "off", "both"), default="both")
    parser.add_argument("--find-max", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument(
        "--project-members",
        type=int,
        default=0,
        help="every change to a task of a project of this many members, one socket each",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = parser.parse_args()
    args.max_rates = FIND_MAX_RATES
    if args.quick:
        args.seconds, args.rounds, args.drain, args.max_seconds = 1, 2, 5, 2
        args.max_rates = FIND_MAX_RATES[:1]
    common.fresh_database(os.environ["DATABASE_URL"])
    with (
        common.redis_server() as redis_url,
        common.smtp_sink() as email_url,
        common.stack(redis_url=redis_url, email_url=email_url) as product,
        common.relay(redis_url) as base,
    ):
        common.setup_django(redis_url)
        if args.project_members:
            users = common.make_users("member", args.project_members, emails=True)
            project_id = common.make_project("live bench", users)
            tasks = common.create_project_tasks(product.base_url, project_id, users, PROJECT_TASKS)
        else:
            users = common.make_users("live", USERS, emails=True)
            tasks = common.create_tasks(product.base_url, users)
        idle = common.make_users("idle", IDLE)
        common.run(bench(args, product, base, users, idle, tasks))


if __name__ == "__main__":
    main()

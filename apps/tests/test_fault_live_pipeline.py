"""Faults in the live pipeline, with the real processes: daphne, the live relay, a Celery
worker and beat, a Redis of the test's own (so it can be taken away), PostgreSQL and an
SMTP sink. Three sockets track `seq` while a burst of writes goes through REST, and
something fails in the middle of it.

Whatever fails, every write answers 2xx, every socket ends with every event exactly once
and in order without reconnecting, and every email arrives exactly once.
"""

import asyncio
import json
import signal
import time
from collections import Counter
from contextlib import AsyncExitStack

import httpx
import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import connect

from apps.tasks.models import DeliveryStatus, EmailDelivery, EventStream
from apps.tests.conftest import auth
from apps.tests.processes import (
    base_env,
    celery_beat,
    celery_worker,
    daphne_server,
    database_url_for_subprocess,
    kill_process_group,
    live_relay,
    redis_server,
    smtp_sink,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TASKS = "/api/v1/tasks/"
WRITES = 150  # PATCHes in the burst, about 20 a second
OUTAGE_SECONDS = 5
CAUGHT_UP = 15  # seconds within which the sockets must have every event after recovery
EMAILS_ARRIVE = 75  # seconds: the sweep queues a lost send 30 s after the change


class SeqTracker:
    """One WebSocket of a user, reading everything it is sent, in the background."""

    def __init__(self, socket, hello: dict):
        self.socket = socket
        self.last_seq_at_hello = hello["last_seq"]
        self.seqs: list[int] = []
        self.closed = False
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                message = json.loads(raw)
                if "seq" in message:
                    self.seqs.append(message["seq"])
        finally:
            self.closed = True

    async def until(self, last_seq: int, within: float) -> float:
        """Wait until `last_seq` has arrived; returns how long that took."""
        started = time.monotonic()
        while last_seq not in self.seqs:
            assert not self.closed, "the socket was closed"
            assert time.monotonic() - started < within, (
                f"seq {last_seq} did not arrive within {within}s; got {self.seqs}"
            )
            await asyncio.sleep(0.05)
        return time.monotonic() - started


async def open_trackers(stack: AsyncExitStack, web_url: str, users) -> list[SeqTracker]:
    """A socket for each of `users` (closed with the stack), hello read."""
    url = web_url.replace("http://", "ws://", 1) + "/ws/tasks/"
    trackers = []
    for user in users:
        token = str(AccessToken.for_user(user))
        socket = await stack.enter_async_context(
            connect(url, additional_headers={"Authorization": f"Bearer {token}"})
        )
        hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert hello["type"] == "hello"
        trackers.append(SeqTracker(socket, hello))
    return trackers


def stack_env(redis_url: str, mailbox) -> dict:
    return base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=redis_url,
        EMAIL_URL=mailbox.url,
        AUTH_THROTTLE_RATE="1000/min",
    )


async def burst(web: httpx.AsyncClient, ana, bob, *, during=None) -> list[int]:
    """Create a task of ana's assigned to bob, then PATCH it WRITES times at about 20 a
    second; `during(i)` runs before write i. Returns every status code."""
    created = await web.post(TASKS, json={"title": "Burst", "assignee": bob.pk}, headers=auth(ana))
    statuses = [created.status_code]
    url = f"{TASKS}{created.json()['id']}/"
    for i in range(WRITES):
        if during is not None:
            await during(i)
        response = await web.patch(url, json={"description": f"step {i}"}, headers=auth(ana))
        statuses.append(response.status_code)
        await asyncio.sleep(0.05)
    return statuses


def last_seqs(*users) -> list[int]:
    return [EventStream.objects.get(user=user).last_seq for user in users]


def assert_every_event_once_in_order(trackers: list[SeqTracker], last_seq: int) -> None:
    for tracker_ in trackers:
        expected = list(range(tracker_.last_seq_at_hello + 1, last_seq + 1))
        assert tracker_.seqs == expected, f"missing or repeated seqs: {tracker_.seqs}"
        assert not tracker_.closed


def assert_every_email_once(mailbox, timeout: float) -> tuple[int, float]:
    """Every planned delivery is sent, and the sink got each message exactly once;
    returns how many, and how long the wait was."""
    started = time.monotonic()
    while EmailDelivery.objects.exclude(status=DeliveryStatus.SENT).exists():
        assert time.monotonic() - started < timeout, (
            f"{EmailDelivery.objects.exclude(status=DeliveryStatus.SENT).count()} emails "
            f"still unsent after {timeout}s"
        )
        time.sleep(0.5)
    expected = EmailDelivery.objects.count()
    ids = Counter(mail.message["Message-ID"] for mail in mailbox.messages())
    assert len(ids) == expected, ids
    assert set(ids.values()) == {1}, ids
    return expected, time.monotonic() - started


async def test_redis_stopped_for_5s_fails_no_write_and_loses_no_event(ana, bob):
    with redis_server() as redis, smtp_sink() as mailbox:
        env = stack_env(redis.url, mailbox)
        with (
            daphne_server(env=env) as web_url,
            live_relay(env=env) as relay,
            celery_worker(env=env),
            celery_beat(env=env),
        ):
            async with (
                AsyncExitStack() as stack,
                httpx.AsyncClient(base_url=web_url, timeout=30) as web,
            ):
                trackers = await open_trackers(stack, web_url, (ana, ana, bob))
                outage = {}

                async def take_redis_away_for_5s(i: int) -> None:
                    if i == 20:
                        redis.stop(signal.SIGKILL)  # as a crash
                        outage["stopped"] = time.monotonic()
                    elif (
                        "stopped" in outage
                        and "back" not in outage
                        and time.monotonic() - outage["stopped"] >= OUTAGE_SECONDS
                    ):
                        await asyncio.to_thread(redis.start)
                        outage["back"] = time.monotonic()

                statuses = await burst(web, ana, bob, during=take_redis_away_for_5s)
                assert "back" in outage, "the burst ended before Redis came back"
                ana_last, bob_last = await sync_to_async(last_seqs)(ana, bob)
                waits = [
                    await trackers[0].until(ana_last, CAUGHT_UP),
                    await trackers[1].until(ana_last, CAUGHT_UP),
                    await trackers[2].until(bob_last, CAUGHT_UP),
                ]
                await asyncio.sleep(1)  # anything repeated would come now
                assert_every_event_once_in_order(trackers[:2], ana_last)
                assert_every_event_once_in_order(trackers[2:], bob_last)
            assert set(statuses) <= {200, 201}, Counter(statuses)
            emails, emails_after = await sync_to_async(assert_every_email_once)(
                mailbox, EMAILS_ARRIVE
            )
            assert relay.process.poll() is None
            assert "live publication delayed" in relay.log()
    print(
        f"\n{len(statuses)} writes, all 2xx; sockets caught up {max(waits):.1f}s after "
        f"the burst; all {emails} emails sent once, the last "
        f"{emails_after:.1f}s after the burst"
    )


async def test_relay_and_worker_killed_mid_burst_lose_nothing(ana, bob):
    with redis_server() as redis, smtp_sink() as mailbox:
        env = stack_env(redis.url, mailbox)
        with daphne_server(env=env) as web_url, celery_beat(env=env):
            async with (
                AsyncExitStack() as stack,
                httpx.AsyncClient(base_url=web_url, timeout=30) as web,
            ):
                trackers = await open_trackers(stack, web_url, (ana, ana, bob))
                first = stack.enter_context(live_relay(env=env))
                first_worker = stack.enter_context(celery_worker(env=env))

                async def kill_mid_burst(i: int) -> None:
                    if i == WRITES // 3:
                        kill_process_group(first.process)
                        kill_process_group(first_worker.process)

                statuses = await burst(web, ana, bob, during=kill_mid_burst)
                assert set(statuses) <= {200, 201}, Counter(statuses)
                ana_last, bob_last = await sync_to_async(last_seqs)(ana, bob)
                assert max(trackers[2].seqs, default=0) < bob_last, "the kill came too late"

                with live_relay(env=env) as second, celery_worker(env=env, purge=False):
                    waits = [
                        await trackers[0].until(ana_last, CAUGHT_UP),
                        await trackers[1].until(ana_last, CAUGHT_UP),
                        await trackers[2].until(bob_last, CAUGHT_UP),
                    ]
                    await asyncio.sleep(1)
                    assert_every_event_once_in_order(trackers[:2], ana_last)
                    assert_every_event_once_in_order(trackers[2:], bob_last)
                    emails, emails_after = await sync_to_async(assert_every_email_once)(
                        mailbox, EMAILS_ARRIVE
                    )
                    assert second.process.poll() is None
    print(
        f"\nsockets had every event {max(waits):.1f}s after the new relay was ready; all "
        f"{emails} emails sent once, the last {emails_after:.1f}s "
        f"after that"
    )

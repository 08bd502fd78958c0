"""The live relay: publishes every committed event to its recipients' stream groups.

The event log is the outbox. Each event row is written in its change's transaction with
`published_at` unset, and a trigger NOTIFYs `taskhub_events`, which PostgreSQL delivers
when (and only if) that transaction commits. The relay LISTENs, and on each wake-up
claims the unpublished events (`FOR UPDATE SKIP LOCKED`, so several relays share the
work), sends one pipelined batch of messages to Redis, and marks them published in the
same transaction. A failure anywhere rolls the mark back, so the events are claimed
again; a relay that was away publishes what it missed as soon as it is back. Nothing on
this path involves the request that made the change, or the Celery broker.

Consumers drop a `seq` they already sent, so a batch published twice (a relay killed
between its Redis pipeline and its commit) reaches nobody twice. A message lost on the
way (a daphne process reconnecting its subscription to Redis) is repaired by the
stream heads: every few seconds the relay tells each recently active stream its last
`seq`, and a socket that is behind fills the gap from the log.

Each recipient's payload is encoded to JSON once here; the sockets send the text as is.

The relay also hears of every committed change to a user's state (`taskhub_user_state`,
however the change was made) and stores it for the web processes, which authenticate
requests without reading the user (`apps.users.state`).
"""

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import psycopg
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from channels_redis.utils import _consistent_hash
from django.conf import settings
from django.db import connections

from apps.tasks.models import TaskEvent
from apps.tasks.representation import event_representation
from apps.users.state import USER_STATE_CHANNEL, arefresh_user_states
from realtime.groups import user_stream_group

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "taskhub_events"
BATCH_SIZE = 500
# With no notification for this long the relay looks anyway (a notification is lost when
# the listening connection drops), and sends the stream heads this often.
POLL_SECONDS = 1.0
HEADS_SECONDS = 3.0
# A stream stays "recently active" (its head is repeated) this long after its last event.
HEADS_WINDOW_SECONDS = 30.0
# Reconnecting to PostgreSQL or Redis: at once, then at most every half second. A longer
# backoff (it was 5 s) only made the sockets wait up to that long after the server was
# back (scripts/reliability: 3.9 s after a 3 s PostgreSQL outage); a failed connect to a
# server that is down costs next to nothing.
RETRY_MIN_SECONDS = 0.1
RETRY_MAX_SECONDS = 0.5

_EVENT_TABLE = TaskEvent._meta.db_table
CLAIM_SQL = f"""
    WITH batch AS (
        SELECT id FROM {_EVENT_TABLE} WHERE published_at IS NULL
        ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
    )
    UPDATE {_EVENT_TABLE} AS event SET published_at = now() FROM batch
    WHERE event.id = batch.id
    RETURNING event.id, event.type, event.task_id, event.project_id, event.actor_snapshot,
              event.task_snapshot, event.project_snapshot, event.member_snapshot,
              event.comment_snapshot, event.changes, event.created_at
"""
ENTRIES_SQL = """
    SELECT event_id, user_id, seq FROM tasks_streamentry
    WHERE event_id = ANY(%s) ORDER BY user_id, seq
"""


def stream_message(seq: int, payload: dict) -> dict:
    """The channel-layer message that carries one stream entry: its `seq`, and the JSON
    text every socket of the recipient sends as it is."""
    return {"type": "task.event", "seq": seq, "text": json.dumps(payload)}


def head_message(seq: int) -> dict:
    """Tells a stream's sockets the last `seq` published, so a socket that missed a
    message catches up from the log."""
    return {"type": "stream.head", "seq": seq}


def revoked_message() -> dict:
    """Tells a stream's sockets that their user lost access (deactivated or deleted):
    each closes with 4401 at once."""
    return {"type": "access.revoked"}


def build_stream_messages(
    events: Iterable[TaskEvent], entries: Iterable[tuple[int, int, int]]
) -> list[tuple[str, dict]]:
    """(group, message) for each (event_id, user_id, seq) entry, each user's in `seq`
    order, each event rendered once per recipient."""
    by_id = {event.pk: event for event in events}
    return [
        (
            user_stream_group(user_id),
            stream_message(seq, event_representation(by_id[event_id], seq=seq)),
        )
        for event_id, user_id, seq in sorted(entries, key=lambda entry: (entry[1], entry[2]))
    ]


class EventRelay:
    """One relay process: LISTEN, claim, publish, mark, repeat; recovers from the loss of
    PostgreSQL or Redis by itself, with backoff, and loses nothing meanwhile."""

    def __init__(self, *, batch_size: int = BATCH_SIZE):
        self.batch_size = batch_size
        layer = get_channel_layer()
        config: dict[str, Any] = settings.CHANNEL_LAYERS["default"]["CONFIG"]
        # A RedisChannelLayer (channels_redis is untyped): its serialize() packs messages.
        self._layer: Any = layer
        self._group_prefix = f"{config.get('prefix', 'asgi')}__group__"
        self._redis = [_redis_client(host) for host in config["hosts"]]
        self._heads: dict[int, tuple[int, float]] = {}  # user -> (last seq, when)
        self._heads_sent = 0.0
        self.published = 0  # events, for tests and benchmarks
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Relay until `stop()`: reconnect to PostgreSQL and Redis as often as needed."""
        delay = RETRY_MIN_SECONDS
        while not self._stopping.is_set():
            try:
                async with await connect_database() as listener, await connect_database() as worker:
                    await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    await listener.execute(f"LISTEN {USER_STATE_CHANNEL}")
                    logger.info("relay listening for committed events")
                    delay = RETRY_MIN_SECONDS
                    await self._serve(listener, worker)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                logger.warning("relay lost PostgreSQL (%s); retrying in %.1fs", exc, delay)
            except Exception:  # a bug must not end live delivery: log it and go on
                logger.exception("relay failed; retrying in %.1fs", delay)
            if not self._stopping.is_set():
                await self._sleep(delay)
                delay = min(RETRY_MAX_SECONDS, delay * 2)
        await self.close()

    async def close(self) -> None:
        """Close the Redis connections."""
        for client in self._redis:
            await client.aclose()

    async def _serve(self, listener, worker) -> None:
        while not self._stopping.is_set():
            await self._publish_retrying(worker)
            await self._send_heads_when_due()
            # Wait for the next commit (or the poll interval), then drain the rest.
            async for notify in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                if notify.channel == USER_STATE_CHANNEL:
                    revoked = await arefresh_user_states(worker, [int(notify.payload)])
                    await self.send_revoked(revoked)

    async def _publish_retrying(self, worker) -> None:
        """Publish every unpublished event; on a Redis failure keep them unpublished and
        retry with backoff until Redis answers (PostgreSQL failures propagate)."""
        delay = RETRY_MIN_SECONDS
        while not self._stopping.is_set():
            try:
                await self.publish_pending(worker)
                return
            except aioredis.RedisError as exc:
                logger.warning(
                    "live publication delayed: Redis is unavailable (%s); retrying in %.1fs",
                    exc,
                    delay,
                    extra={"retry_in": delay},
                )
                await self._sleep(delay)
                delay = min(RETRY_MAX_SECONDS, delay * 2)

    async def publish_pending(self, worker) -> int:
        """Claim, publish and mark batches of events until none is left; returns how many
        were published."""
        total = 0
        while True:
            async with worker.transaction():
                rows = await (await worker.execute(CLAIM_SQL, [self.batch_size])).fetchall()
                if not rows:
                    return total
                events = [_event_from_row(row) for row in rows]
                entries = await (
                    await worker.execute(ENTRIES_SQL, [[event.pk for event in events]])
                ).fetchall()
                messages = build_stream_messages(events, entries)
                await self._send(messages)
            total += len(events)
            self.published += len(events)
            self.remember_heads(entries)
            _log_published(events, entries)
            if len(rows) < self.batch_size:
                return total

    async def _send(self, messages: list[tuple[str, dict]]) -> None:
        """Publish the messages in one pipeline per Redis shard: one round trip."""
        by_shard: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
        for group, message in messages:
            channel = self._group_prefix + group
            shard = _consistent_hash(channel, len(self._redis))
            by_shard[shard].append((channel, self._layer.serialize(message)))
        for shard, items in by_shard.items():
            async with self._redis[shard].pipeline(transaction=False) as pipe:
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()

    async def send_revoked(self, user_ids: list[int]) -> None:
        """Close the open sockets of users who lost access; a Redis failure is logged (the
        web processes' own notice, and a socket's token expiry, remain)."""
        if not user_ids:
            return
        try:
            await self._send([(user_stream_group(uid), revoked_message()) for uid in user_ids])
        except aioredis.RedisError as exc:
            logger.error("sockets of users %s not closed: Redis is unavailable (%s)", user_ids, exc)

    def remember_heads(self, entries: Iterable[tuple[int, int, int]]) -> None:
        """Note the last `seq` published to each stream among (event_id, user_id, seq)."""
        now = time.time()
        for _, user_id, seq in entries:
            if seq >= self._heads.get(user_id, (0, 0.0))[0]:
                self._heads[user_id] = (seq, now)

    async def _send_heads_when_due(self) -> None:
        if time.time() - self._heads_sent >= HEADS_SECONDS:
            await self.send_heads()

    async def send_heads(self) -> None:
        """Tell each stream that had an event in the last HEADS_WINDOW_SECONDS its last
        `seq`; a Redis failure here is only logged (the next round repeats them)."""
        now = time.time()
        self._heads_sent = now
        self._heads = {
            user_id: (seq, at)
            for user_id, (seq, at) in self._heads.items()
            if now - at < HEADS_WINDOW_SECONDS
        }
        if not self._heads:
            return
        heads_now = self._heads.items()
        try:
            heads = [(user_stream_group(uid), head_message(seq)) for uid, (seq, _) in heads_now]
            await self._send(heads)
        except aioredis.RedisError as exc:
            logger.warning("stream heads not sent: Redis is unavailable (%s)", exc)

    async def _sleep(self, seconds: float) -> None:
        # Jitter, so that relays restarted together do not retry in lockstep.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds * random.uniform(0.8, 1.2))


def _redis_client(host) -> aioredis.Redis:
    address = host["address"] if isinstance(host, dict) else host
    return aioredis.Redis.from_url(
        address,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
        retry_on_timeout=False,
    )


async def connect_database() -> psycopg.AsyncConnection:
    """A connection of the relay's own to the project's database (autocommit)."""
    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold", "connect_timeout"):
        params.pop(key, None)
    return await psycopg.AsyncConnection.connect(**params, autocommit=True, connect_timeout=5)


def _event_from_row(row) -> TaskEvent:
    (event_id, kind, task_id, project_id, actor, task, project, member, comment, changes,
     created_at) = row  # fmt: skip
    return TaskEvent(
        id=event_id,
        type=kind,
        task_id=task_id,
        project_id=project_id,
        actor_snapshot=actor,
        task_snapshot=task,
        project_snapshot=project,
        member_snapshot=member,
        comment_snapshot=comment,
        changes=changes,
        created_at=created_at,
    )


def _log_published(events: list[TaskEvent], entries: list[tuple[int, int, int]]) -> None:
    """One line per event: what went to whom, and how long after its commit (the event's
    `created_at` is taken just before the commit)."""
    now = time.time()
    recipients: dict[int, list[int]] = defaultdict(list)
    for event_id, user_id, _ in entries:
        recipients[event_id].append(user_id)
    for event in events:
        users = sorted(recipients[event.pk])
        delay_ms = round((now - event.created_at.timestamp()) * 1000, 1)
        logger.info(
            "published %s %s recipients=%s %sms after commit",
            event.type,
            f"task={event.task_id}" if event.task_id else f"project={event.project_id}",
            ",".join(map(str, users)),
            delay_ms,
            extra={
                "event_id": event.pk,
                "event_type": event.type,
                "task_id": str(event.task_id) if event.task_id else None,
                "project_id": str(event.project_id) if event.project_id else None,
                "recipients": users,
                "published_ms_after_commit": delay_ms,
            },
        )

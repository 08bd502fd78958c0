"""Sending to the channel layer from sync code, and the embedded mode's publisher.

With Redis, the live relay (realtime/relay.py) publishes every committed event. In the
embedded mode (in-memory layer, no relay process) `publish_in_process` does the same
after each commit, inside the web process.

`send_to_groups` serves sync callers. In the embedded mode the sockets live on daphne's
event loop, so the messages are sent there. With Redis (sync code outside the web
process, such as the fan-out benchmark; the product itself publishes through the relay)
a process keeps one event loop in a thread of its own, so the channel layer's Redis
connection pool lives as long as the process: no connection per call.
"""

import asyncio
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.utils import timezone

from apps.tasks.models import StreamEntry, TaskEvent
from realtime.groups import user_stream_group
from realtime.relay import BATCH_SIZE, build_stream_messages, revoked_message

SEND_TIMEOUT_SECONDS = 30
# Closing a deactivated user's sockets runs after the change's commit, in its request or
# job: it must not hold that up for long when Redis is away (the relay sends it too).
REVOKE_TIMEOUT_SECONDS = 2


class _ProcessLoop:
    """An event loop running in a daemon thread, one per process (re-made after a fork)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def run(self, coroutine, timeout: float = SEND_TIMEOUT_SECONDS):
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="channel-layer-loop", daemon=True
                )
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


process_loop = _ProcessLoop()


def send_to_groups(messages: list[tuple[str, dict]], timeout: float = SEND_TIMEOUT_SECONDS) -> None:
    """`group_send` each (group, message), all in one hop to the loop that owns the layer.
    Messages must be JSON-ready primitives (the Redis layer packs them with msgpack)."""
    if not messages:
        return
    layer = get_channel_layer()
    assert layer is not None  # settings.CHANNEL_LAYERS always names a default

    async def send_all():
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(send_all)()
    else:
        process_loop.run(send_all(), timeout)


def revoke_live_access(user_ids: list[int]) -> None:
    """Close every open socket of these users with 4401: they were deactivated or
    deleted. From sync code, after the change committed."""
    messages = [(user_stream_group(user_id), revoked_message()) for user_id in user_ids]
    send_to_groups(messages, timeout=REVOKE_TIMEOUT_SECONDS)


def publish_in_process() -> None:
    """The embedded mode's relay: publish the events not yet published, after the commit
    that recorded them, to the sockets of this process."""
    with transaction.atomic():
        events = list(
            TaskEvent.objects.filter(published_at__isnull=True).order_by("id")[:BATCH_SIZE]
        )
        if not events:
            return
        ids = [event.pk for event in events]
        TaskEvent.objects.filter(pk__in=ids).update(published_at=timezone.now())
        entries = list(
            StreamEntry.objects.filter(event_id__in=ids).values_list("event_id", "user_id", "seq")
        )
    send_to_groups(build_stream_messages(events, entries))

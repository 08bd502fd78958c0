"""The live task stream: `/ws/tasks/`."""

import asyncio
import time
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from apps.tasks import selectors
from apps.users.state import aget_user_state
from realtime.groups import user_stream_group
from realtime.middleware import BEARER_SUBPROTOCOL

CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
REPLAY_PAGE = 200
# Every number of this many digits fits the seq column (a PostgreSQL bigint).
SEQ_MAX_DIGITS = 18
# A client sends a ping now and then and a resume after a reconnect: this many messages at
# once, and this many a second after that, are plenty. A socket over it is closed (1008).
MESSAGE_BURST = 20
MESSAGES_PER_SECOND = 5


class TaskStreamConsumer(AsyncJsonWebsocketConsumer):
    """Sends a user their event stream: every event, in `seq` order, exactly once.

    On connect it joins the user's group first, so that live events queue up in its inbox
    while it says hello and replays the log after `?after=`; afterwards a
    live event at or below the last `seq` sent is a duplicate and dropped, and one past a
    gap (jobs may publish out of order) first fills the gap from the log. Live events
    carry their rendered payload, so delivering one costs no query and no thread hop.
    """

    # The scope's user, set on connect: a StreamUser from realtime.middleware (the stubs
    # type the scope's "user" as Channels' lazy object, which names no attributes).
    user: Any = None
    delivered = 0
    closed = False  # closed by this side (lost access, abuse): nothing more is sent
    # The client's message allowance (a token bucket), set on its first message.
    allowance = float(MESSAGE_BURST)
    allowance_at = 0.0
    # A timer rather than a sleeping task: an idle socket should cost as little as it can.
    expiry: asyncio.TimerHandle | None = None
    closing: asyncio.Task | None = None
    # Channel-layer messages not handled yet, and the task handling them; None while idle.
    inbox: deque | None = None
    draining: asyncio.Task | None = None
    failure: BaseException | None = None

    async def __call__(self, scope, receive, send):
        """Channels' own loop (`await_many_dispatch`) starts a task and an `asyncio.wait`
        for every message, which cost more than delivering the event itself (py-spy, a
        fan-out to 1,000 sockets), and a task per source held for the socket's life costs
        memory (tracemalloc, 1,000 idle sockets). Here the application's own task reads the
        client, and the channel layer calls `layer_message`, which starts a task only while
        messages wait. A lock keeps the handlers one at a time, in arrival order per
        source, as Channels does."""
        self.scope = scope
        # realtime.layers' layers add callback channels, which the stubs' base class lacks.
        layer: Any = get_channel_layer(self.channel_layer_alias)
        self.channel_layer = layer
        self.channel_name = await layer.new_callback_channel(self.layer_message)
        self.base_send = send
        self.one_at_a_time = asyncio.Lock()
        application = asyncio.current_task()
        assert application is not None  # the server runs each connection as a task
        self.application: asyncio.Task = application
        try:
            while True:
                message = await receive()
                async with self.one_at_a_time:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            if self.failure is None:
                raise
            if not isinstance(self.failure, StopConsumer):
                raise self.failure from None
        finally:
            layer.remove_callback_channel(self.channel_name)
            if self.draining is not None:
                self.draining.cancel()
                await asyncio.gather(self.draining, return_exceptions=True)

    def layer_message(self, message: dict) -> None:
        """A channel-layer message (called by the layer): handled after those before it."""
        if self.inbox is None:
            self.inbox = deque()
            self.draining = asyncio.ensure_future(self.drain_inbox())
        self.inbox.append(message)

    async def drain_inbox(self) -> None:
        """Handle the waiting channel-layer messages in order, then stop. A handler that
        fails ends the application, as a failing pump did."""
        try:
            while self.inbox:
                message = self.inbox.popleft()
                async with self.one_at_a_time:
                    await self.dispatch(message)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # StopConsumer too: the application ends
            self.failure = error
            self.application.cancel()
        finally:
            self.inbox = self.draining = None

    async def connect(self):
        """Authenticate, join the stream, say hello and replay what the client missed."""
        subprotocol = BEARER_SUBPROTOCOL if self.scope.get("bearer_subprotocol") else None
        await self.accept(subprotocol)
        user: Any = self.scope.get("user")
        if user is None or self._token_expired():
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        after = _after_from_query(self.scope.get("query_string", b""))
        if after is False:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self._forget_handshake()
        self.user = user
        await self.channel_layer.group_add(user_stream_group(user.pk), self.channel_name)
        # A deactivation that committed after the authentication, before the join, sent
        # its notice to no socket of this one's: look again now that it would arrive.
        state = await aget_user_state(user.pk)
        if state is None or not state.is_active:
            await self._revoke()
            return
        last_seq = await database_sync_to_async(selectors.stream_last_seq)(user=user.pk)
        await self.send_json(
            {
                "type": "hello",
                "user": {"id": user.pk, "username": user.username},
                "last_seq": last_seq,
            }
        )
        self.delivered = last_seq
        if after is not None:
            await self.replay_after(after)
        expires_at = cast("float | None", self.scope.get("token_exp"))  # from the middleware
        if expires_at is not None:
            loop = asyncio.get_running_loop()
            self.expiry = loop.call_at(loop.time() + expires_at - time.time(), self._expire)

    async def disconnect(self, code):
        """Leave the stream group and stop the expiry timer."""
        if self.expiry is not None:
            self.expiry.cancel()
        if self.user is not None:
            await self.channel_layer.group_discard(
                user_stream_group(self.user.pk), self.channel_name
            )

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A client frame: JSON text, within the message allowance. A binary frame closes
        the socket with 1003 after an `error` that says why; a flood, with 1008."""
        if self.closed:
            return
        if not self._allowed_another_message():
            await self.send_json({"type": "error", "detail": "Too many messages; closing."})
            await self._close_for_good(CLOSE_POLICY_VIOLATION, "too many messages")
            return
        if text_data is None:
            detail = "Binary frames are not accepted: send JSON text; closing."
            await self.send_json({"type": "error", "detail": detail})
            await self._close_for_good(CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted")
            return
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    def _allowed_another_message(self) -> bool:
        now = time.monotonic()
        allowance = min(
            float(MESSAGE_BURST),
            self.allowance + (now - self.allowance_at) * MESSAGES_PER_SECOND,
        )
        self.allowance_at = now
        if allowance < 1:
            self.allowance = allowance
            return False
        self.allowance = allowance - 1
        return True

    async def receive_json(self, content, **kwargs):
        """Client messages: `ping` and `resume`."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "resume":
            after = content.get("after")
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                await self.send_json(
                    {"type": "error", "detail": "resume needs `after`: a seq, 0 or more."}
                )
                return
            await self.replay_after(after)
        else:
            await self.send_json(
                {"type": "error", "detail": "Unknown message; send ping or resume."}
            )

    @classmethod
    async def decode_json(cls, text_data):
        """The message, or None when it is not JSON this can read (nested too deep for the
        parser included): the client then gets an `error`."""
        try:
            return await super().decode_json(text_data)
        except (ValueError, RecursionError):
            return None

    async def dispatch(self, message):
        """Channels closes stale database connections before every handler, a thread hop
        per delivered event. Nothing here touches the database outside
        `database_sync_to_async`, which does that cleanup itself, so it is skipped."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def task_event(self, message):
        """A live event from the channel layer: its `seq` and its JSON text, encoded once
        by the relay for every socket of this user."""
        seq = message["seq"]
        if seq <= self.delivered or self.closed:
            return
        if seq > self.delivered + 1:
            await self.replay_after(self.delivered)  # fills the gap, this event included
            return
        await self.send(text_data=message["text"])
        self.delivered = seq

    async def access_revoked(self, message):
        """The user was deactivated or deleted: close at once, and send nothing more."""
        await self._revoke()

    async def _revoke(self) -> None:
        await self._close_for_good(CLOSE_UNAUTHORIZED)

    async def _close_for_good(self, code: int, reason: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            await self.close(code=code, reason=reason)

    async def stream_head(self, message):
        """The relay's periodic word on the stream's last `seq`: catch up if a live
        message was lost on the way (a subscription reconnecting to Redis)."""
        if message["seq"] > self.delivered and not self.closed:
            await self.replay_after(self.delivered)

    async def replay_after(self, after: int) -> None:
        """Send every event of the user's stream after `after` from the log, in order; or
        `resync_required` when the log no longer reaches back that far."""
        if await database_sync_to_async(selectors.stream_is_pruned_after)(
            user=self.user.pk, after=after
        ):
            # The client reloads its state over REST; live events continue from now.
            await self.send_json({"type": "resync_required"})
            self.delivered = await database_sync_to_async(selectors.stream_last_seq)(
                user=self.user.pk
            )
            return
        self.delivered = after
        while True:
            events = await database_sync_to_async(selectors.stream_events_after)(
                user=self.user.pk, after=self.delivered, limit=REPLAY_PAGE
            )
            for event in events:
                if self.closed:
                    return
                await self.send_json(event)
                self.delivered = event["seq"]
            if len(events) < REPLAY_PAGE:
                return

    def _forget_handshake(self) -> None:
        """Nothing reads the handshake's headers and subprotocols after connect, and they
        carry the token, so they are emptied rather than kept for the socket's life. The
        lists are the server's own, shared by every copy of the scope: emptying them in
        place is what frees them."""
        for key in ("headers", "subprotocols"):
            value = self.scope.get(key)
            if isinstance(value, list):
                value.clear()

    def _token_expired(self) -> bool:
        expires_at = cast("float | None", self.scope.get("token_exp"))  # from the middleware
        return expires_at is not None and expires_at <= time.time()

    def _expire(self) -> None:
        self.closing = asyncio.ensure_future(self.close(code=CLOSE_UNAUTHORIZED))


def _after_from_query(query_string: bytes) -> int | bool | None:
    """`?after=<seq>`: the seq, None when absent, False when malformed."""
    values = parse_qs(query_string.decode("latin1")).get("after")
    if not values:
        return None
    value = values[-1]
    return int(value) if value.isdigit() and len(value) <= SEQ_MAX_DIGITS else False


class NoSuchStreamConsumer(AsyncJsonWebsocketConsumer):
    """Any other WebSocket path: accepted only to be closed with 4404."""

    async def connect(self):
        """Close at once: there is no stream here."""
        subprotocol = BEARER_SUBPROTOCOL if self.scope.get("bearer_subprotocol") else None
        await self.accept(subprotocol)
        await self.close(code=CLOSE_NOT_FOUND)

"""The channel layers of the live stream: Channels' own, plus channels delivered by callback.

A socket's consumer receives only group messages, and it would otherwise hold, for as long
as the socket is open, an asyncio.Queue (four deques, about 3 KB), a task awaiting it and,
with Redis, a Redis subscription to its own channel that nobody publishes to. A callback
channel has none of these: the layer calls the consumer with each message as it arrives.
Sending to a callback channel by name reaches it only within the process (the Redis layer
does not subscribe to it); the stream's messages all come through groups.

Everything else (`new_channel`, `send`, `receive`, the groups) works as in Channels.
"""

import uuid
from collections.abc import Callable
from copy import deepcopy

from channels import layers
from channels_redis import pubsub

MessageCallback = Callable[[dict], None]


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels_redis' pub/sub layer, with callback channels."""

    async def new_callback_channel(self, callback: MessageCallback) -> str:
        """A new channel of this process whose messages go to `callback(message)`, called
        on the event loop in the order they arrive; `remove_callback_channel` ends it."""
        layer = self._get_layer()
        channel = f"{layer.prefix}specific.{uuid.uuid4().hex}"
        # The loop layer hands each message of a group to `put_nowait` of its members.
        layer.channels[channel] = _CallbackInbox(callback, self.deserialize)
        return channel

    def remove_callback_channel(self, channel: str) -> None:
        """Stop calling back for `channel` (its group memberships are left to the caller)."""
        self._get_layer().channels.pop(channel, None)


class _CallbackInbox:
    __slots__ = ("callback", "deserialize")

    def __init__(self, callback: MessageCallback, deserialize: Callable[[bytes], dict]):
        self.callback = callback
        self.deserialize = deserialize

    def put_nowait(self, data: bytes) -> None:
        self.callback(self.deserialize(data))


class InMemoryChannelLayer(layers.InMemoryChannelLayer):
    """Channels' in-memory layer (the embedded mode), with callback channels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.callbacks: dict[str, MessageCallback] = {}

    async def new_callback_channel(self, callback: MessageCallback) -> str:
        """As RedisPubSubChannelLayer.new_callback_channel."""
        channel = await self.new_channel()
        self.callbacks[channel] = callback
        return channel

    def remove_callback_channel(self, channel: str) -> None:
        """As RedisPubSubChannelLayer.remove_callback_channel."""
        self.callbacks.pop(channel, None)

    async def send(self, channel, message):
        callback = self.callbacks.get(channel)
        if callback is None:
            return await super().send(channel, message)
        # A copy, as the queue would hold: each member of a group gets its own.
        callback(deepcopy(message))

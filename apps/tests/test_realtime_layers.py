"""The channel layers' callback channels (realtime/layers.py), on the real Redis and in
memory: a group's messages reach the callback in order, and stop once it is removed."""

import asyncio

import pytest
from django.conf import settings

from realtime.layers import InMemoryChannelLayer, RedisPubSubChannelLayer

ARRIVES = 5  # seconds to wait for something that should arrive
SILENCE = 0.5  # seconds of quiet that show nothing (more) was sent


@pytest.fixture(params=["redis", "memory"])
async def layer(request):
    if request.param == "memory":
        yield InMemoryChannelLayer()
        return
    redis_layer = RedisPubSubChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    yield redis_layer
    await redis_layer.flush()


async def test_group_messages_reach_the_callback_in_order(layer):
    received = asyncio.Queue()
    channel = await layer.new_callback_channel(received.put_nowait)
    await layer.group_add("callback-test", channel)
    for n in range(5):
        await layer.group_send("callback-test", {"type": "test.message", "n": n})
    arrived = [await asyncio.wait_for(received.get(), ARRIVES) for _ in range(5)]
    assert [message["n"] for message in arrived] == [0, 1, 2, 3, 4]


async def test_removed_callback_channel_gets_nothing(layer):
    received = []
    channel = await layer.new_callback_channel(received.append)
    await layer.group_add("callback-test", channel)
    layer.remove_callback_channel(channel)
    await layer.group_send("callback-test", {"type": "test.message"})
    await asyncio.sleep(SILENCE)
    assert received == []


async def test_queued_channels_work_beside_callback_channels(layer):
    await layer.new_callback_channel(lambda message: None)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "test.message"})
    assert await asyncio.wait_for(layer.receive(channel), ARRIVES) == {"type": "test.message"}

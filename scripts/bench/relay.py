"""The baseline the live benchmarks compare with: a bare WebSocket relay on Redis pub/sub.

A socket connects to `/u/<user id>` and gets `{"type": "hello", "last_seq": 0}`; the relay
subscribes to that user's Redis channel (`relay.user.<id>`) while the user has a socket,
and forwards each message's text, unchanged, to every socket of the user. No auth, no
database, no channel layer: the floor of what a live path on this machine can do.

    .venv/bin/python scripts/bench/relay.py --port 8800 --redis-url redis://:pw@127.0.0.1:6379/0
"""

import argparse
import asyncio
import contextlib
import signal

import redis.asyncio as redis
from websockets.asyncio.server import broadcast, serve

PREFIX = "relay.user."
HELLO = '{"type": "hello", "last_seq": 0}'


async def main(port: int, redis_url: str) -> None:
    client = redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    # listen() returns at once while nothing is subscribed: hold one channel throughout.
    await pubsub.subscribe(PREFIX + "none")
    sockets: dict[str, set] = {}

    async def forward():
        async for message in pubsub.listen():
            user = message["channel"][len(PREFIX) :].decode()
            broadcast(sockets.get(user, ()), message["data"].decode())

    async def handler(ws):
        user = ws.request.path.rsplit("/", 1)[-1]
        mine = sockets.setdefault(user, set())
        if not mine:
            await pubsub.subscribe(PREFIX + user)
        mine.add(ws)
        try:
            await ws.send(HELLO)
            await ws.wait_closed()
        finally:
            mine.discard(ws)
            if not mine:
                sockets.pop(user, None)
                await pubsub.unsubscribe(PREFIX + user)

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.cancel)
    forwarding = asyncio.create_task(forward())
    # Pings every 20 s, as daphne does by default, so idle sockets cost alike.
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=20):
        with contextlib.suppress(asyncio.CancelledError):
            await stop
    forwarding.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.redis_url))

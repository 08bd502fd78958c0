"""Wait briefly for Redis, then fail with a clear message naming it if it does not answer."""

import sys
import time

import redis

url = sys.argv[1]
client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
deadline = time.monotonic() + 10
while True:
    try:
        client.ping()
        break
    except redis.RedisError as exc:
        if time.monotonic() > deadline:
            host = url.rsplit("@", 1)[-1]
            sys.exit(f"error: Redis is not answering at {host}: {exc}")
        time.sleep(0.1)

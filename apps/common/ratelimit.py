"""Per-user request limits on the API (`API_USER_RATE`, such as `1200/min`): one runaway
client cannot starve the others. A request over its user's limit answers 429 with
Retry-After (the seconds until the user's window ends).

Counted per fixed window, in Redis when the project has it (one pipelined INCR and EXPIRE
on the event loop, no thread hop), so every web process shares the count; in this
process's memory in the embedded mode. When Redis does not answer, the count falls back
to this process's memory for a few seconds at a time: the limit still holds, per process,
and a request never fails for it.
"""

import asyncio
import math
import time
import weakref

import redis
import redis.asyncio
from django.conf import settings

from apps.common.backoff import CountLocallyWhileAway

KEY_PREFIX = "taskhub:ratelimit:"
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_BACKOFF_SECONDS = 5.0
PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`N/period` as (N, seconds); None for an empty rate or `0` (no limit). A malformed
    rate is a configuration error, raised at start-up."""
    rate = (rate or "").strip()
    if rate in ("", "0", "off", "none"):
        return None
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in PERIODS or int(count) < 1:
        raise ValueError(f"API_USER_RATE must look like 1200/min, not {rate!r}")
    return int(count), PERIODS[period]


class _LocalCounts:
    def __init__(self):
        self._counts: dict[tuple[int, int], int] = {}
        self._window = -1

    async def hit(self, user_id: int, window: int, ttl: int) -> int:
        if window != self._window:  # keep only the current window's counts
            self._counts = {key: n for key, n in self._counts.items() if key[1] >= window}
            self._window = window
        count = self._counts.get((user_id, window), 0) + 1
        self._counts[(user_id, window)] = count
        return count


class _RedisCounts:
    def __init__(self, url: str):
        self.url = url
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._clients[loop] = client
        return client

    async def hit(self, user_id: int, window: int, ttl: int) -> int:
        key = f"{KEY_PREFIX}{user_id}:{window}"
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, ttl)
            count, _ = await pipe.execute()
        return count


class UserRequestLimit:
    def __init__(self, rate: str, redis_url: str):
        self.limit = parse_rate(rate)
        self._shared = _RedisCounts(redis_url) if redis_url else None
        self._local = _LocalCounts()
        self._redis = CountLocallyWhileAway("Request limits", REDIS_BACKOFF_SECONDS)

    async def wait_needed(self, user_id: int) -> float | None:
        """Count one request of the user; None when it is within the limit, else the
        seconds until the user's window ends."""
        if self.limit is None:
            return None
        allowed, period = self.limit
        now = time.time()
        window = int(now // period)
        count = await self._hit(user_id, window, period + 1)
        if count <= allowed:
            return None
        return (window + 1) * period - now

    async def _hit(self, user_id: int, window: int, ttl: int) -> int:
        if self._shared is not None and self._redis.available():
            try:
                return await self._shared.hit(user_id, window, ttl)
            except (redis.RedisError, OSError) as exc:
                self._redis.failed(exc)
        return await self._local.hit(user_id, window, ttl)


_limit: UserRequestLimit | None = None


def user_request_limit() -> UserRequestLimit:
    global _limit
    if _limit is None:
        _limit = UserRequestLimit(settings.API_USER_RATE, settings.REDIS_CACHE_URL)
    return _limit


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, never 0 for a wait that is not over."""
    return str(max(1, math.ceil(wait)))

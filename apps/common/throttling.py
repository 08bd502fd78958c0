import redis
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import SimpleRateThrottle

from apps.common.backoff import CountLocallyWhileAway

# While the shared cache (Redis) is down, counts are kept here, in this process's memory,
# and Redis is left alone this long before it is tried again.
_local_counts = LocMemCache("taskhub-throttle-fallback", {"MAX_ENTRIES": 100_000})
CACHE_BACKOFF_SECONDS = 5.0


class ClientAddressThrottle(SimpleRateThrottle):
    """Limits a view per client address at `AUTH_THROTTLE_RATE`, counted in the cache.

    The view's `throttle_scope` keeps separate counts per endpoint (login, register).

    When the cache does not answer, the limit still holds, at the same rate, counted per
    web process instead: login and register keep working (never a 500), and guessing
    passwords is no easier than with as many web processes as there are.
    """

    _redis = CountLocallyWhileAway("Throttle", CACHE_BACKOFF_SECONDS)  # one per process

    def get_rate(self):
        return settings.AUTH_THROTTLE_RATE

    def get_cache_key(self, request, view):
        scope = getattr(view, "throttle_scope", type(view).__name__)
        return f"throttle:{scope}:{self.get_ident(request)}"

    def allow_request(self, request, view):
        if self._redis.available():
            try:
                return super().allow_request(request, view)
            except (redis.RedisError, OSError) as exc:
                self._redis.failed(exc)
        self.cache = _local_counts
        return super().allow_request(request, view)

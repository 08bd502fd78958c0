from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ClientAddressThrottle(SimpleRateThrottle):
    """Limits a view per client address at `AUTH_THROTTLE_RATE`, counted in the cache.

    The view's `throttle_scope` keeps separate counts per endpoint (login, register).
    """

    def get_rate(self):
        return settings.AUTH_THROTTLE_RATE

    def get_cache_key(self, request, view):
        scope = getattr(view, "throttle_scope", type(view).__name__)
        return f"throttle:{scope}:{self.get_ident(request)}"

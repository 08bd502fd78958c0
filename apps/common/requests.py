"""Per-request cleanup, done on the event loop.

Django connects sync receivers to `request_started` (`reset_queries`,
`close_old_connections`) and `request_finished` (`close_old_connections`, `close_caches`,
`reset_urlconf`). Under ASGI each sync receiver means a thread hop per request, while the
API's handlers already hand their database connection back to the pool inside their one
hop (`apps.common.threads.in_thread`). These async receivers do the same work, and hop to a
thread only when a connection is still open: after a view that used the ORM on its own.
"""

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.urls import set_urlconf


async def start_request(**kwargs) -> None:
    for connection in connections.all(initialized_only=True):
        connection.queries_log.clear()


async def finish_request(**kwargs) -> None:
    set_urlconf(None)
    # The cache backends in use (Redis, local memory) close without I/O.
    for cache in caches.all(initialized_only=True):
        cache.close()
    if any(conn.connection is not None for conn in connections.all(initialized_only=True)):
        await sync_to_async(close_old_connections)()


def install() -> None:
    """Swap Django's sync request receivers for the async ones above."""
    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_caches)
    signals.request_finished.disconnect(reset_urlconf)
    signals.request_started.connect(start_request, dispatch_uid="common.start_request")
    signals.request_finished.connect(finish_request, dispatch_uid="common.finish_request")

"""The threads that do the API's database work, and the one hop into them."""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

# The threads that run the API's database work (settings.DATABASE_THREADS: few, since
# they share the GIL with the event loop). Reused from request to request, unlike
# Django's default of a new thread for each request.
_threads = ThreadPoolExecutor(
    max_workers=settings.DATABASE_THREADS, thread_name_prefix="taskhub-db"
)


async def in_thread(function, *args, **kwargs):
    """Run sync (database) work in a pool thread, and hand its database connection back
    to the pool before returning, so that the request needs no further hop to clean up."""
    return await sync_to_async(_closing_connections, thread_sensitive=False, executor=_threads)(
        function, args, kwargs
    )


def _closing_connections(function, args, kwargs):
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()
        # Forget this thread's connection objects: the request's context would otherwise
        # carry them to its next hop, which may run in another thread.
        for connection in connections.all(initialized_only=True):
            if connection.connection is None:
                del connections[connection.alias]

"""Operational endpoints: liveness, readiness, and the API's catch-all 404."""

import asyncio
import functools
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from apps.common.exceptions import check_pool_in_background
from apps.common.problems import problem_response

logger = logging.getLogger(__name__)

# Every check runs at once, each with this deadline: /readyz answers within a second
# and names only what is down, a dead database included.
CHECK_TIMEOUT_SECONDS = 0.8
# The sync checks' own threads: a check stuck on a dead server holds one of these, never
# a thread of the API's.
_check_threads = ThreadPoolExecutor(max_workers=6, thread_name_prefix="taskhub-readyz")


async def healthz(request):
    """Liveness: the process is up and serving requests."""
    return JsonResponse({"status": "ok"})


# What a component that answered reports: "ok" for a server, "in-process" for what the
# embedded mode (no REDIS_URL) keeps inside this process instead.
IN_PROCESS = "in-process"
READY_STATES = ("ok", IN_PROCESS)


async def readyz(request):
    """Readiness: the database, the cache, the broker and the channel layer all answer.
    Embedded, the cache and the channel layer live in this process (they answer
    "in-process"), and jobs run here too: there is no broker, and "jobs" says so."""
    if settings.REDIS_URL:
        checks = {
            "database": _in_check_thread(_check_database),
            "cache": _in_check_thread(_check_cache),
            "broker": _in_check_thread(_check_broker),
            "channel_layer": _check_channel_layer(),
        }
    else:
        checks = {
            "database": _in_check_thread(_check_database),
            "cache": _in_check_thread(_check_cache, answer=IN_PROCESS),
            "jobs": _in_process_jobs(),
            "channel_layer": _check_channel_layer(answer=IN_PROCESS),
        }
    results = await asyncio.gather(
        *(asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS) for check in checks.values()),
        return_exceptions=True,
    )
    states = {
        name: _failure(result) if isinstance(result, BaseException) else result
        for name, result in zip(checks, results, strict=True)
    }
    failed = [name for name, state in states.items() if state not in READY_STATES]
    if failed:
        logger.warning("Not ready: %s", states)
        return problem_response(503, f"Not ready: {', '.join(failed)}.", checks=states)
    return JsonResponse({"status": "ready", "checks": states})


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"error: {type(exc).__name__}: {exc}"[:200]


async def _in_check_thread(check, **kwargs) -> str:
    return await asyncio.get_running_loop().run_in_executor(
        _check_threads, functools.partial(check, **kwargs)
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except (OperationalError, InterfaceError):
        check_pool_in_background()  # so that the pool is healthy as soon as PostgreSQL is
        raise
    finally:
        connection.close()  # back to the pool


def _check_cache(answer: str = "ok") -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    value = cache.get(key)
    cache.delete(key)
    return answer if value == "1" else "error: value not read back"


def _check_broker() -> str:
    _broker_client().ping()
    return "ok"


async def _in_process_jobs() -> str:
    """Embedded, Celery runs each job in the process that queues it (always eager): there
    is no broker to check."""
    return IN_PROCESS


@functools.cache
def _broker_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_BROKER_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )


async def _check_channel_layer(answer: str = "ok") -> str:
    layer = get_channel_layer()
    assert layer is not None  # settings.CHANNEL_LAYERS always names a default
    # Both layers take a prefix; the stubs' base class does not.
    channel = await layer.new_channel(prefix="readyz")  # type: ignore[call-arg]
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    return answer if message.get("type") == "readyz.ping" else "error: not the message sent"


@csrf_exempt
async def api_not_found(request):
    """Any path under /api/ that names no endpoint."""
    detail = f"There is no API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail += f" Did you mean {request.path}/ ?"
    return problem_response(404, detail, code="not_found")

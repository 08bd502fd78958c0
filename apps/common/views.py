"""Operational endpoints: liveness, readiness, and the API's catch-all 404."""

import asyncio
import functools
import logging
import uuid

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from apps.common.problems import problem_response

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3


async def healthz(request):
    """Liveness: the process is up and serving requests."""
    return JsonResponse({"status": "ok"})


async def readyz(request):
    """Readiness: the database, the cache, the broker and the channel layer all answer."""
    sync_checks = sync_to_async(_check_database_cache_and_broker)
    results = await asyncio.gather(
        asyncio.wait_for(sync_checks(), CHECK_TIMEOUT_SECONDS * 3),
        asyncio.wait_for(_check_channel_layer(), CHECK_TIMEOUT_SECONDS),
        return_exceptions=True,
    )
    checks: dict[str, str] = {}
    if isinstance(results[0], BaseException):
        checks.update(database="timeout", cache="timeout", broker="timeout")
    else:
        checks.update(results[0])
    checks["channel_layer"] = (
        _failure(results[1]) if isinstance(results[1], BaseException) else "ok"
    )
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        logger.warning("Not ready: %s", checks)
        return problem_response(503, f"Not ready: {', '.join(failed)}.", checks=checks)
    return JsonResponse({"status": "ready", "checks": checks})


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"error: {type(exc).__name__}: {exc}"[:200]


def _check_database_cache_and_broker() -> dict[str, str]:
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = _failure(exc)
    try:
        key = f"readyz:{uuid.uuid4().hex}"
        cache.set(key, "1", timeout=10)
        checks["cache"] = "ok" if cache.get(key) == "1" else "error: value not read back"
        cache.delete(key)
    except Exception as exc:
        checks["cache"] = _failure(exc)
    if settings.REDIS_BROKER_URL:
        try:
            _broker_client().ping()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = _failure(exc)
    else:
        checks["broker"] = "ok"  # embedded: jobs run in-process
    return checks


@functools.cache
def _broker_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_BROKER_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel(prefix="readyz")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("unexpected message read back")


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

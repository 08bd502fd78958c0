"""ASGI entry point: HTTP goes to Django, WebSocket to the realtime routing."""

import gc
import os
from collections.abc import Awaitable, Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# Django must be set up before anything imports models.
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from apps.common.asgi import ASGIHandler, BodySizeLimit  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

# Wrapped below in the embedded mode: any ASGI application.
application: Callable[..., Awaitable[None]] = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(ASGIHandler(), max_bytes=settings.MAX_REQUEST_BODY_BYTES),
        "websocket": websocket_application,
    }
)

if settings.CELERY_TASK_ALWAYS_EAGER:
    # Embedded mode: no separate beat or worker, so the schedule runs in this process.
    from apps.common.inprocess_beat import InProcessBeat
    from project.celery import app as celery_app

    application = InProcessBeat(application, celery_app)

# What is loaded by now (Django, the apps, the URLconf and its views) lives as long as the
# process. Moved out of the collector's generations, it is no longer traversed by every
# full collection, which had been most of the closed-loop tail of a list page: at 16
# connections, p99 176-208 ms without and 83-147 ms with (wrk, side by side with the
# baseline; scripts/bench/results/2026-12-02/rest_gc_freeze.txt).
get_resolver().url_patterns  # noqa: B018 (imports the views now, so that they are frozen too)
gc.collect()
gc.freeze()

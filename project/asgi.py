"""ASGI entry point: HTTP goes to Django, WebSocket to the realtime routing."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# Django must be set up before anything imports models.
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.common.asgi import ASGIHandler, BodySizeLimit  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
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

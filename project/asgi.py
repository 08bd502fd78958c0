"""ASGI entry point: HTTP goes to Django, WebSocket to the realtime routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.common.asgi import BodySizeLimit  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(django_asgi_app, max_bytes=settings.MAX_REQUEST_BODY_BYTES),
        "websocket": websocket_application,
    }
)

if settings.CELERY_TASK_ALWAYS_EAGER:
    # Embedded mode: no separate beat or worker, so the schedule runs in this process.
    from apps.common.inprocess_beat import InProcessBeat
    from project.celery import app as celery_app

    application = InProcessBeat(application, celery_app)

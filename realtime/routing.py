"""WebSocket routing: origin check, JWT authentication, then the consumers."""

from channels.routing import URLRouter
from django.urls import path, re_path

from realtime.consumers import NoSuchStreamConsumer, TaskStreamConsumer
from realtime.middleware import BrowserOriginValidator, JWTAuthMiddleware

# Channels routes ASGI applications through Django's path(), whose stubs take views only;
# URLRouter's stubs want the patterns that Channels' own path wrappers would have typed.
websocket_urlpatterns = [
    path("ws/tasks/", TaskStreamConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", NoSuchStreamConsumer.as_asgi()),  # type: ignore[arg-type]
]

websocket_application = BrowserOriginValidator(
    JWTAuthMiddleware(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
)

"""WebSocket routing: origin check, JWT authentication, then the consumers."""

from channels.routing import URLRouter
from django.urls import path, re_path

from realtime.consumers import NoSuchStreamConsumer, TaskStreamConsumer
from realtime.middleware import BrowserOriginValidator, JWTAuthMiddleware

websocket_urlpatterns = [
    path("ws/tasks/", TaskStreamConsumer.as_asgi()),
    re_path(r"", NoSuchStreamConsumer.as_asgi()),
]

websocket_application = BrowserOriginValidator(JWTAuthMiddleware(URLRouter(websocket_urlpatterns)))

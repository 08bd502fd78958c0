"""WebSocket routing. The live task stream (`/ws/tasks/`) arrives with the live-updates
work; until then a WebSocket handshake is refused at once rather than left hanging."""

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path


class RefuseConsumer(AsyncWebsocketConsumer):
    """Closes every handshake: no WebSocket endpoint is served yet."""

    async def connect(self):
        await self.close()


websocket_application = AllowedHostsOriginValidator(
    URLRouter([re_path(r"", RefuseConsumer.as_asgi())])
)

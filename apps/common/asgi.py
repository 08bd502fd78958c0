"""ASGI wrappers that protect Django before it reads a request."""

import json

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body


class BodySizeLimit:
    """Refuse HTTP request bodies larger than `max_bytes` with 413 problem+json.

    Django's ASGI handler spools a whole body before any view or middleware runs, so the
    check has to happen here: by `Content-Length` up front, and by counting streamed
    chunks for bodies sent without one.
    """

    def __init__(self, app, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await self._refuse(
                        send, 400, "Content-Length is not a number.", code="bad_content_length"
                    )
                if declared > self.max_bytes:
                    return await self._refuse(send, 413, self._too_large())
        received = 0
        response_started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._refuse(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."

    @staticmethod
    async def _refuse(send, status: int, detail: str, code: str = "payload_too_large"):
        body = json.dumps(problem_body(status, detail, code=code)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass

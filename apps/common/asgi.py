"""ASGI wrappers that protect Django before it reads a request."""

import json

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body


class BodySizeLimit:
    """Refuse HTTP request bodies larger than `max_bytes` with 413 problem+json.

    Django's ASGI handler spools a whole body before any view or middleware runs, so the
    check has to happen here: by `Content-Length` up front, or, for a body sent without
    one (chunked), by reading it here up to the limit. Such a body is then handed to
    Django with its `Content-Length`, which Django REST framework needs to read it at all.
    """

    def __init__(self, app, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared is not None and declared < 0:
            return await self._refuse(
                send, 400, "Content-Length is not a number.", code="bad_content_length"
            )
        if declared is not None and declared > self.max_bytes:
            return await self._refuse(send, 413, self._too_large())
        if declared is not None:
            return await self.app(scope, receive, send)
        return await self._with_buffered_body(scope, receive, send)

    async def _with_buffered_body(self, scope, receive, send):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(send, 413, self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = [*scope.get("headers", []), (b"content-length", str(len(body)).encode())]
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app({**scope, "headers": headers}, replay, send)

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

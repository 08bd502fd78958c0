"""Django's ASGI side: wrappers that protect Django before it reads a request, and the
handler that serves it."""

import asyncio
import contextlib
import json

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import get_script_prefix
from django.http import HttpRequest
from django.urls import set_script_prefix

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


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler, minus the thread hop it makes after every response.

    Django closes each response with `sync_to_async(response.close)()`, a thread hop per
    request even when nothing in the response needs a thread. Here a response with no
    resources to close but the request (every JSON response) is finished on the event
    loop; the
    `request_finished` receivers are async (`apps.common.requests`), so sending the
    signal costs no hop either. `handle` is Django 5.2's, with that one change.
    """

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None  # create_request returns one or the other
            body_file.close()
            await self.send_response(error_response, send)
            await close_response(error_response)
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            await close_response(response)
        body_file.close()


async def close_response(response) -> None:
    """`response.close()`, on the event loop unless the response holds resources (a file,
    a streaming iterator) whose closing may block. Closing the request itself (its body,
    spooled in memory or a temporary file) does not."""
    closers = response._resource_closers
    if any(not isinstance(getattr(closer, "__self__", None), HttpRequest) for closer in closers):
        await sync_to_async(response.close)()
        return
    for closer in closers:
        with contextlib.suppress(Exception):
            closer()
    closers.clear()
    response.closed = True
    await signals.request_finished.asend(sender=response._handler_class)

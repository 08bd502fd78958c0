"""Keeps every error under /api/ (and the health endpoints) in problem+json."""

import contextlib
import json
from http import HTTPStatus

from asgiref.sync import iscoroutinefunction
from django.middleware.security import SecurityMiddleware
from django.utils.decorators import sync_and_async_middleware

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_response, status_phrase

_MACHINE_PATHS = ("/api/", "/healthz", "/readyz")
# These pages are HTML on purpose.
_HTML_PAGES = ("/api/docs/",)


def _needs_problem(request, response) -> bool:
    if response.status_code < HTTPStatus.BAD_REQUEST:
        return False
    path = request.path
    if not path.startswith(_MACHINE_PATHS) or path.startswith(_HTML_PAGES):
        return False
    return not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)


def _as_problem(response):
    """Rewrite an error response that escaped the API's handlers (Django's own 404/500
    pages, a 400 for a bad Host header, ...) as problem+json, never as HTML or a traceback."""
    status = response.status_code
    detail = status_phrase(status) + "."
    is_json = response.get("Content-Type", "").startswith("application/json")
    if status < HTTPStatus.INTERNAL_SERVER_ERROR and is_json:
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(response.content).get("detail", detail))
    problem = problem_response(status, detail)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            problem[header] = response[header]
    return problem


@sync_and_async_middleware
def problem_json_middleware(get_response):
    """Outermost middleware: the last chance to turn an error page into problem+json."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            return _as_problem(response) if _needs_problem(request, response) else response

    else:

        def middleware(request):
            response = get_response(request)
            return _as_problem(response) if _needs_problem(request, response) else response

    return middleware


class AsyncSecurityMiddleware(SecurityMiddleware):
    """Django's SecurityMiddleware (SSL redirect, HSTS, nosniff, referrer and opener
    policies) plus `X-Frame-Options: DENY`, run natively in async code.

    Django's `MiddlewareMixin` runs `process_request`/`process_response` through
    `sync_to_async` under ASGI, one thread hop each per request; these two do no I/O, so
    they are called directly.
    """

    async def __acall__(self, request):
        request.get_host()  # a Host outside ALLOWED_HOSTS is a 400 before any view runs
        response = self.process_request(request)
        if response is None:
            # Async-only (async_capable, not sync_capable): Django hands it an async chain.
            response = await self.get_response(request)  # type: ignore[misc]
        return self.process_response(request, response)

    def process_response(self, request, response):
        response = super().process_response(request, response)
        if "X-Frame-Options" not in response:
            response["X-Frame-Options"] = "DENY"
        return response

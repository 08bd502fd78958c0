"""Keeps every error under /api/ (and the health endpoints) in problem+json."""

import contextlib
import json

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_response, status_phrase

_MACHINE_PATHS = ("/api/", "/healthz", "/readyz")
# These pages are HTML on purpose.
_HTML_PAGES = ("/api/docs/",)


def _needs_problem(request, response) -> bool:
    if response.status_code < 400:
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
    if status < 500 and response.get("Content-Type", "").startswith("application/json"):
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

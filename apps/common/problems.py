"""RFC 9457 problem details: the one shape of every error this service returns."""

from http import HTTPStatus

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: str, *, title: str | None = None, **extra) -> dict:
    """Build a problem document. `type` is `about:blank` (RFC 9457: the status says it all)
    and `title` the status phrase; extensions such as `code` or `errors` go in `extra`."""
    body = {
        "type": "about:blank",
        "title": title or status_phrase(status),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_response(status: int, detail: str, *, headers=None, **extra) -> JsonResponse:
    """A plain Django response carrying a problem document (for non-DRF code paths)."""
    return JsonResponse(
        problem_body(status, detail, **extra),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )

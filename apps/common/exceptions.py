"""The REST framework exception handler: every error becomes RFC 9457 problem+json,
the project's own errors (`apps.common.errors`) included."""

import logging
import threading

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from apps.common import errors as domain
from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_body
from apps.common.ratelimit import retry_after

logger = logging.getLogger(__name__)


class Problem(exceptions.APIException):
    """An API error with extension members for the problem document (e.g. `current`)."""

    def __init__(self, detail: str, *, status_code: int, code: str, **extensions):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.extensions = extensions


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"
    wait = 5  # seconds, sent as Retry-After


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


_pool_check = threading.Lock()


def check_pool_in_background() -> None:
    """Have the database pool test its idle connections and replace the dead ones, in a
    thread of its own, one check at a time: after PostgreSQL went away, every pooled
    connection is dead, and each would fail one request before the pool dropped it."""
    if _pool_check.acquire(blocking=False):
        threading.Thread(target=_check_pool, name="taskhub-pool-check", daemon=True).start()


def _check_pool() -> None:
    try:
        # PostgreSQL's connection has a pool; the stubs type the backends' common base.
        pool = connections["default"].pool  # type: ignore[attr-defined]
        if pool is not None and not pool.closed:
            pool.check()
    except Exception as exc:  # the next failing request tries again
        logger.warning("Database pool check failed: %s", exc)
    finally:
        _pool_check.release()


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into `{field: [message, ...]}`; nested fields are
    joined with dots, errors that belong to no field go under `non_field_errors`."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            name = f"{prefix}.{index}" if prefix else str(index)
            for field, messages in flatten_errors(item, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def _first_code(codes) -> str:
    while isinstance(codes, (list, dict)):
        if not codes:
            return "error"
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return str(codes)


# The status of each of the project's own errors; a subclass takes its parent's.
DOMAIN_STATUSES: dict[type[domain.DomainError], int] = {
    domain.NotFound: status.HTTP_404_NOT_FOUND,
    domain.NotAllowed: status.HTTP_403_FORBIDDEN,
    domain.Archived: status.HTTP_409_CONFLICT,
    domain.Conflict: status.HTTP_409_CONFLICT,
    domain.StaleVersion: status.HTTP_412_PRECONDITION_FAILED,
    domain.IdempotencyKeyInUse: status.HTTP_409_CONFLICT,
    domain.IdempotencyKeyReused: status.HTTP_422_UNPROCESSABLE_ENTITY,
    domain.InvalidInput: status.HTTP_400_BAD_REQUEST,
    domain.CredentialsRejected: status.HTTP_401_UNAUTHORIZED,
}


def api_exception(exc: domain.DomainError, context) -> exceptions.APIException:
    """The API's form of one of the project's own errors."""
    if isinstance(exc, domain.InvalidInput):
        return exceptions.ValidationError(exc.errors)
    if isinstance(exc, domain.CredentialsRejected):
        # As DRF's own handling of AuthenticationFailed: 401 with the view's challenge,
        # or 403 on a view that has none.
        failed = exceptions.AuthenticationFailed(exc.message, code=exc.code)
        view, request = context.get("view"), context.get("request")
        challenge = view.get_authenticate_header(request) if view and request else None
        if challenge:
            # DRF's own handler sets and reads this attribute; its stubs do not declare it.
            failed.auth_header = challenge  # type: ignore[attr-defined]
        else:
            failed.status_code = status.HTTP_403_FORBIDDEN
        return failed
    status_code = next(code for kind, code in DOMAIN_STATUSES.items() if isinstance(exc, kind))
    extensions = {"current": exc.current} if isinstance(exc, domain.StaleVersion) else {}
    return Problem(exc.message, status_code=status_code, code=exc.code, **extensions)


def problem_exception_handler(exc, context):
    """Render `exc` as problem+json; unexpected exceptions are logged and become a 500
    without any detail of the failure leaking to the client."""
    exc = _as_api_exception(exc, context)
    if not isinstance(exc, exceptions.APIException):
        view = context.get("view")
        logger.exception("Unhandled error in %s", type(view).__name__ if view else "view")
        body = problem_body(500, "The server failed to handle this request.", code="server_error")
        return Response(body, status=500, content_type=PROBLEM_CONTENT_TYPE)

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = retry_after(wait)

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        detail = _summarise(errors)
        body = problem_body(exc.status_code, detail, code="invalid", errors=errors)
    else:
        message: object = exc.detail
        if isinstance(message, dict):  # simplejwt nests its message
            message = message.get("detail", "")
        elif isinstance(message, list):
            message = " ".join(str(item) for item in message)
        extensions = dict(getattr(exc, "extensions", {}))
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            # Every 400 has `errors`, as the schema says: a body that could not be parsed
            # at all is wrong as a whole.
            extensions.setdefault("errors", {"non_field_errors": [str(message)]})
        body = problem_body(
            exc.status_code, str(message), code=_first_code(exc.get_codes()), **extensions
        )
    return Response(
        body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE
    )


def _as_api_exception(exc, context):
    """The DRF exception for a domain error or one of Django's own; anything else as is."""
    if isinstance(exc, domain.DomainError):
        exc = api_exception(exc, context)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or "Bad request.")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # PostgreSQL is down or restarting, or the connection broke: nothing of the
        # request was committed (a transaction that fails rolls back), so the client may
        # send it again.
        logger.warning("Database unavailable: %s: %s", type(exc).__name__, exc)
        check_pool_in_background()
        exc = DatabaseUnavailable()
    return exc


def _summarise(errors: dict[str, list[str]]) -> str:
    if list(errors) == ["non_field_errors"]:
        return " ".join(errors["non_field_errors"])
    fields = ", ".join(name for name in errors if name != "non_field_errors")
    return f"Invalid input in: {fields}." if fields else "Invalid input."

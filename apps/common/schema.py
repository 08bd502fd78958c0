"""OpenAPI helpers so every documented error carries the problem+json shape."""

from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse

from apps.common.problems import PROBLEM_CONTENT_TYPE
from apps.common.serializers import ProblemSerializer, ValidationProblemSerializer

_DESCRIPTIONS = {
    400: "Bad request.",
    401: "Missing, invalid or expired token.",
    403: "Visible, but not allowed for the caller.",
    404: "Not found, or not visible to the caller.",
    409: "Conflicts with the current state.",
    412: "If-Match names a stale version; `current` holds the task as it is now.",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    422: "The Idempotency-Key was used with a different body.",
    429: "Too many requests; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict:
    """Schema entries for these error statuses, as `application/problem+json`; a 400
    carries the field errors of a validation problem."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ValidationProblemSerializer if status == HTTPStatus.BAD_REQUEST else ProblemSerializer,
            description=_DESCRIPTIONS.get(status, ""),
        )
        for status in statuses
    }


def forbid_unknown_request_fields(result, generator, request, public):
    """drf-spectacular postprocessing hook: the request bodies of `StrictSerializer`s,
    which answer 400 to a field they do not know, say so (`additionalProperties: false`),
    and request strings say they hold no NUL. With COMPONENT_SPLIT_REQUEST a request body
    is a component of its own, `...Request`."""
    from apps.common.serializers import StrictSerializer

    schemas = result.get("components", {}).get("schemas", {})
    for component in generator.registry._components.values():
        serializer = component.object
        cls = serializer if isinstance(serializer, type) else type(serializer)
        if (
            component.type == "schemas"
            and component.name.endswith("Request")
            and issubclass(cls, StrictSerializer)
            and component.name in schemas
        ):
            schemas[component.name]["additionalProperties"] = False
    # DRF's CharField refuses NUL in any string (ProhibitNullCharactersValidator).
    for name, schema in schemas.items():
        if not name.endswith("Request"):
            continue
        for field in schema.get("properties", {}).values():
            if field.get("type") == "string" and not {"enum", "format", "pattern"} & set(field):
                field["pattern"] = "^[^\\u0000]*$"
    return result

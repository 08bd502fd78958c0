"""Query parameters, parsed strictly: an unknown or repeated parameter is a 400, and every
problem with a request's parameters is reported at once."""

from django.http import QueryDict
from rest_framework.exceptions import ValidationError


class ParamErrors:
    """Collects one message list per parameter and raises them together."""

    def __init__(self):
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def single_values(
    params: QueryDict,
    allowed: frozenset[str],
    errors: ParamErrors,
    *,
    repeatable: frozenset[str] = frozenset(),
) -> dict:
    """Each known parameter once (a `repeatable` one's values joined with commas);
    unknown or repeated ones, and NUL characters, which no column may hold, are errors."""
    values = {}
    for name in params:
        given = params.getlist(name)
        if name not in allowed:
            errors.add(name, f"Unknown query parameter. Known: {', '.join(sorted(allowed))}.")
        elif any("\x00" in value for value in given):
            errors.add(name, "May not contain NUL characters.")
        elif len(given) > 1 and name not in repeatable:
            errors.add(name, "Give this parameter once.")
        else:
            values[name] = ",".join(given)
    return values

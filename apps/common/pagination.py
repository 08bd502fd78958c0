"""Keyset (cursor) pagination: stable pages however many rows are inserted meanwhile."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError


@dataclass(frozen=True)
class OrderKey:
    """One ordering column (a field or an annotation); the last key must be unique."""

    name: str
    descending: bool


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None


def order_by_keys(queryset: QuerySet, keys: list[OrderKey], *, backwards: bool = False):
    """`queryset` in the order of `keys` (reversed when going backwards)."""
    return queryset.order_by(
        *[("-" if key.descending != backwards else "") + key.name for key in keys]
    )


def paginate(
    queryset: QuerySet | None,
    *,
    keys: list[OrderKey],
    limit: int,
    cursor: str | None,
    scope: str,
    first_rows: list | None = None,
) -> Page:
    """One page of `queryset` ordered by `keys`. `cursor` (from a previous page) says where
    to start and which way to go; `scope` names the ordering so that a cursor made for one
    ordering is refused under another. Without a cursor, `first_rows` may hold the first
    `limit + 1` rows in that order, read some cheaper way; the queryset is then unused."""
    position, backwards = _decode(cursor, scope=scope, size=len(keys)) if cursor else (None, False)
    rows = first_rows if position is None else None
    if rows is None:
        assert queryset is not None, "paginate needs a queryset unless first_rows stand in"
        rows = order_by_keys(queryset, keys, backwards=backwards)
        try:
            if position is not None:
                rows = rows.filter(_after(keys, position, backwards))
            rows = list(rows[: limit + 1])
        except (DjangoValidationError, ValueError, TypeError, OverflowError) as exc:
            # A cursor value that the column cannot hold: tampered with, or from elsewhere.
            raise ValidationError({"cursor": ["Invalid cursor."]}) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    if not rows:
        return Page(rows=[], next_cursor=None, previous_cursor=None)
    has_next = more if not backwards else True
    has_previous = more if backwards else position is not None
    return Page(
        rows=rows,
        next_cursor=_encode(rows[-1], keys, scope, backwards=False) if has_next else None,
        previous_cursor=_encode(rows[0], keys, scope, backwards=True) if has_previous else None,
    )


def _after(keys: list[OrderKey], position: list, backwards: bool) -> Q:
    """Rows strictly after `position` in the (possibly reversed) order of `keys`."""
    condition = Q()
    for index, key in enumerate(keys):
        lookup = "lt" if key.descending != backwards else "gt"
        clause = Q(**{f"{key.name}__{lookup}": position[index]})
        for earlier, value in zip(keys[:index], position, strict=False):
            clause &= Q(**{earlier.name: value})
        condition |= clause
    return condition


def _encode(row, keys: list[OrderKey], scope: str, *, backwards: bool) -> str:
    values = [_plain(_value(row, key.name)) for key in keys]
    raw = json.dumps({"s": scope, "p": values, "b": backwards}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _value(row, name: str):
    """A column of a row: a model instance or a `values()` dict."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _decode(cursor: str, *, scope: str, size: int) -> tuple[list, bool]:
    invalid = ValidationError({"cursor": ["Invalid cursor."]})
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise invalid from exc
    if not isinstance(data, dict) or data.get("s") != scope:
        raise ValidationError({"cursor": ["This cursor belongs to another ordering."]})
    values, backwards = data.get("p"), data.get("b")
    if (
        not isinstance(values, list)
        or len(values) != size
        or not isinstance(backwards, bool)
        or not all(
            isinstance(value, (str, int)) and not isinstance(value, bool) for value in values
        )
    ):
        raise invalid
    return values, backwards

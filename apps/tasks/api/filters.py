"""Query parameters of the list endpoints, parsed strictly: anything unknown is a 400."""

import uuid
from datetime import UTC, datetime, time
from typing import Any

from django.http import QueryDict
from django.utils.dateparse import parse_date, parse_datetime

from apps.common.params import ParamErrors, single_values
from apps.tasks.models import Priority, Status
from apps.tasks.selectors import ORDERINGS, TaskFilters
from apps.users.models import User

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_SEARCH_WORDS = 10
MAX_WORD_LENGTH = 100
# Far longer than any cursor that paginate() makes; anything longer is not one.
MAX_CURSOR_LENGTH = 1000

TASK_LIST_PARAMS = frozenset(
    {
        "status", "priority", "assignee", "created_by", "due_before", "due_after",
        "overdue", "archived", "project", "search", "ordering", "limit", "cursor",
    }
)  # fmt: skip


def parse_limit(raw: str | None, errors: ParamErrors) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        errors.add("limit", f"Must be a whole number from 1 to {MAX_LIMIT}.")
        return DEFAULT_LIMIT
    return int(raw)


def parse_cursor(raw: str | None, errors: ParamErrors) -> str | None:
    if raw is not None and (not raw or len(raw) > MAX_CURSOR_LENGTH):
        errors.add("cursor", "Invalid cursor.")
        return None
    return raw


def parse_task_list_params(params: QueryDict, *, user: User) -> tuple[TaskFilters, int, str | None]:
    """Filters, page size and cursor of `GET tasks/`."""
    errors = ParamErrors()
    values = single_values(
        params, TASK_LIST_PARAMS, errors, repeatable=frozenset({"status", "priority"})
    )
    filters: dict[str, Any] = {}
    if "status" in values:
        filters["statuses"] = _choices(values["status"], Status.values, "status", errors)
    if "priority" in values:
        labels = _choices(values["priority"], Priority.labels, "priority", errors)
        filters["priorities"] = tuple(Priority.from_label(label) for label in labels)
    for name in ("assignee", "created_by"):
        if name in values:
            filters[name] = _user_ref(values[name], user, name, errors)
    for name in ("due_before", "due_after"):
        if name in values:
            filters[name] = _moment(values[name], name, errors)
    if "overdue" in values:
        filters["overdue"] = _boolean(values["overdue"], "overdue", errors)
    if "archived" in values:
        filters["archived"] = _archived(values["archived"], errors)
    if "project" in values:
        filters["project"] = _project(values["project"], errors)
    if "search" in values:
        filters["search_words"] = _words(values["search"], errors)
    if "ordering" in values:
        filters["ordering"] = _ordering(values["ordering"], errors)
    limit = parse_limit(values.get("limit"), errors)
    cursor = parse_cursor(values.get("cursor"), errors)
    errors.raise_if_any()
    return TaskFilters(**filters), limit, cursor


def _archived(raw: str, errors: ParamErrors) -> str | None:
    if raw not in ("false", "true", "all"):
        errors.add("archived", "Must be one of: false, true, all.")
        return None
    return raw


def _project(raw: str, errors: ParamErrors) -> str | None:
    if raw == "none":
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        errors.add("project", "Must be a project's id (a UUID) or 'none' for personal tasks.")
        return None


def _ordering(raw: str, errors: ParamErrors) -> str | None:
    if raw.lstrip("-") not in ORDERINGS or raw.count("-") > 1:
        allowed = ", ".join(ORDERINGS)
        errors.add("ordering", f"Must be one of {allowed}, each optionally with '-'.")
        return None
    return raw


def _choices(raw: str, allowed, name: str, errors: ParamErrors) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [value for value in chosen if value not in allowed]
    if unknown or not chosen:
        errors.add(name, f"Unknown value(s) {', '.join(unknown) or '(empty)'}; "
                   f"allowed: {', '.join(allowed)} (comma-separated).")  # fmt: skip
    return tuple(dict.fromkeys(value for value in chosen if value in allowed))


def _user_ref(raw: str, user: User, name: str, errors: ParamErrors) -> int | None:
    if raw == "me":
        return user.pk
    if raw.isdigit() and 1 <= int(raw) < 2**63:
        return int(raw)
    errors.add(name, "Must be 'me' or a user id.")
    return None


def _moment(raw: str, name: str, errors: ParamErrors) -> datetime | None:
    # A '+' in an unencoded offset arrives as a space.
    text = raw.replace(" ", "+")
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        errors.add(name, "Must be an RFC 3339 date-time (e.g. 2026-11-26T10:00:00Z) or a date.")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _boolean(raw: str, name: str, errors: ParamErrors) -> bool | None:
    if raw in ("true", "false"):
        return raw == "true"
    errors.add(name, "Must be true or false.")
    return None


def _words(raw: str, errors: ParamErrors) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(raw.split()))
    if len(words) > MAX_SEARCH_WORDS or any(len(word) > MAX_WORD_LENGTH for word in words):
        errors.add(
            "search",
            f"At most {MAX_SEARCH_WORDS} words of at most {MAX_WORD_LENGTH} characters.",
        )
        return ()
    return words

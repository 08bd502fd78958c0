"""Every read of tasks and events goes through here: querysets and rules of visibility."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from django.db import connection
from django.db.models import DateTimeField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.common.compiled import CompiledRead
from apps.common.pagination import OrderKey, order_by_keys
from apps.tasks.models import EventStream, Status, StreamEntry, Task, TaskEvent
from apps.tasks.representation import TASK_COLUMNS, event_representation
from apps.users.models import Role, User

# Sentinels that put tasks without a due date last whichever way `due_at` is ordered.
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
_FAR_PAST = datetime(1, 1, 2, tzinfo=UTC)

ORDERINGS = ("due_at", "priority", "created_at", "updated_at")


def can_manage(user: User, task: Task) -> bool:
    """The creator and admins may change everything about a task."""
    return user.is_admin or task.created_by_id == user.pk


class Caller(Protocol):
    """Who asks, as the visibility rules read them: a User, or a `_Caller` that a
    compiled read builds from its arguments."""

    @property
    def pk(self) -> Any: ...

    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True)
class _Caller:
    pk: int
    is_admin: bool


def visible_tasks(user: Caller) -> QuerySet[Task]:
    """Tasks the user may see: created by or assigned to them; admins see all."""
    tasks = Task.objects.all()
    if not user.is_admin:
        tasks = tasks.filter(Q(created_by_id=user.pk) | Q(assignee_id=user.pk))
    return tasks


def _visible_task_query(*, shape: bool, user_id: int, task_id) -> QuerySet:
    # Not `.first()`: one row at most, so no ORDER BY is needed.
    caller = _Caller(pk=user_id, is_admin=shape)
    return visible_tasks(caller).filter(pk=task_id).values(*TASK_COLUMNS)


# The detail GET's query, compiled once per shape (admin or not).
_visible_task_read = CompiledRead(
    _visible_task_query,
    stand_ins={"user_id": (1, 2), "task_id": (UUID(int=1), UUID(int=2))},
)


def get_visible_task_row(*, user: User, task_id) -> dict | None:
    """The visible task's columns (`TASK_COLUMNS`), or None."""
    rows = _visible_task_read.rows(user.is_admin, user_id=user.pk, task_id=task_id)
    return rows[0] if rows else None


# Every column of a task, in the model's order, and its creator's and assignee's names:
# what a change needs of the row it locks.
_TASK_FIELDS = tuple(field.attname for field in Task._meta.concrete_fields)


def _locked_task_query(*, shape: bool, user_id: int, task_id) -> QuerySet:
    caller = _Caller(pk=user_id, is_admin=shape)
    return (
        visible_tasks(caller)
        .select_for_update(of=("self",))
        .filter(pk=task_id)
        .values(*_TASK_FIELDS, "created_by__username", "assignee__username")
    )


# The lock of every change, compiled once per shape (admin or not): building the
# queryset took a quarter of a PATCH's CPU (py-spy), more than PostgreSQL spends on it.
_locked_task_read = CompiledRead(
    _locked_task_query,
    stand_ins={"user_id": (1, 2), "task_id": (UUID(int=1), UUID(int=2))},
)


def lock_visible_task(*, user: User, task_id) -> Task | None:
    """The task, locked until the transaction ends (FOR UPDATE, the task row only), if
    the user may see it; its `created_by` and `assignee` hold their ids and usernames."""
    rows = _locked_task_read.rows(user.is_admin, user_id=user.pk, task_id=task_id)
    if not rows:
        return None
    (row,) = rows
    task = Task.from_db(connection.alias, _TASK_FIELDS, [row[name] for name in _TASK_FIELDS])
    task.created_by = User.from_db(
        connection.alias, ("id", "username"), (row["created_by_id"], row["created_by__username"])
    )
    if row["assignee_id"] is not None:
        task.assignee = User.from_db(
            connection.alias, ("id", "username"), (row["assignee_id"], row["assignee__username"])
        )
    return task


# What the recipients and the emails of an event need to know of a person, in the
# model's order.
PERSON_FIELDS = tuple(
    field.attname
    for field in User._meta.concrete_fields
    if field.attname in {"id", "username", "role", "is_active", "email", "email_notifications"}
)
# Up to this many people by id (creator, assignee, former assignee...) in the compiled
# form of `people_concerned`; more take the ORM's way.
_COMPILED_PEOPLE = 4


def _people_query(*, shape: int, **ids) -> QuerySet:
    wanted = [ids[f"id{index}"] for index in range(shape)]
    people = User.objects.filter(Q(pk__in=wanted) | Q(role=Role.ADMIN, is_active=True))
    return people.values(*PERSON_FIELDS)


_people_read = CompiledRead(
    _people_query,
    stand_ins={f"id{index}": (1001 + index, 2001 + index) for index in range(_COMPILED_PEOPLE)},
)


def people_concerned(ids: set[int]) -> dict[int, User]:
    """In one query, the people with these ids and every active admin, with
    `PERSON_FIELDS` loaded."""
    # Any: the names are the compiled read's own arguments, never `using`.
    named: dict[str, Any] = {f"id{index}": pk for index, pk in enumerate(sorted(ids))}
    rows: Iterable[dict]
    if len(named) <= _COMPILED_PEOPLE:
        rows = _people_read.rows(len(named), **named)
    else:
        rows = _people_query(shape=len(named), **named)
    people = (
        User.from_db(connection.alias, PERSON_FIELDS, [row[name] for name in PERSON_FIELDS])
        for row in rows
    )
    return {person.pk: person for person in people}


def is_task_visible(*, user: User, task_id) -> bool:
    return visible_tasks(user).filter(pk=task_id).exists()


@dataclass(frozen=True)
class TaskFilters:
    """A parsed, valid set of list filters (see `apps.tasks.api.filters`)."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    assignee: int | None = None
    created_by: int | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool | None = None
    archived: str = "false"
    search_words: tuple[str, ...] = field(default_factory=tuple)
    ordering: str = "-created_at"


def task_list(*, user: Caller, filters: TaskFilters) -> tuple[QuerySet, list[OrderKey]]:
    """The visible tasks matching `filters` as rows of their columns (`TASK_COLUMNS` and
    the order keys), and the keys that order them (unique, ending with the id, so that
    cursor pagination is exact)."""
    tasks = visible_tasks(user)
    if filters.statuses:
        tasks = tasks.filter(status__in=filters.statuses)
    if filters.priorities:
        tasks = tasks.filter(priority__in=filters.priorities)
    if filters.assignee is not None:
        tasks = tasks.filter(assignee_id=filters.assignee)
    if filters.created_by is not None:
        tasks = tasks.filter(created_by_id=filters.created_by)
    if filters.due_before is not None:
        tasks = tasks.filter(due_at__lt=filters.due_before)
    if filters.due_after is not None:
        tasks = tasks.filter(due_at__gt=filters.due_after)
    if filters.overdue is True:
        tasks = tasks.filter(due_at__lt=timezone.now()).exclude(status=Status.DONE)
    elif filters.overdue is False:
        tasks = tasks.filter(
            Q(due_at__isnull=True) | Q(due_at__gte=timezone.now()) | Q(status=Status.DONE)
        )
    if filters.archived == "false":
        tasks = tasks.filter(archived_at__isnull=True)
    elif filters.archived == "true":
        tasks = tasks.filter(archived_at__isnull=False)
    for word in filters.search_words:
        tasks = tasks.filter(Q(title__icontains=word) | Q(description__icontains=word))

    keys = task_list_keys(filters)
    if keys[0].name == "due_sort":
        tasks = tasks.annotate(
            due_sort=Coalesce(
                "due_at",
                Value(_FAR_PAST if keys[0].descending else _FAR_FUTURE),
                output_field=DateTimeField(),
            )
        )
    return tasks.values(*TASK_COLUMNS, *{keys[0].name} - set(TASK_COLUMNS)), keys


def task_list_keys(filters: TaskFilters) -> list[OrderKey]:
    """The keys that order `task_list` (unique, ending with the id). Ordering by due date
    orders by `due_sort`, which puts tasks without one last either way."""
    descending = filters.ordering.startswith("-")
    name = filters.ordering.lstrip("-")
    if name == "due_at":
        name = "due_sort"
    return [OrderKey(name, descending), OrderKey("id", descending)]


def _first_task_page_query(*, shape: tuple, user_id: int) -> QuerySet:
    is_admin, filters, limit = shape
    tasks, keys = task_list(user=_Caller(pk=user_id, is_admin=is_admin), filters=filters)
    return order_by_keys(tasks, keys)[: limit + 1]


# First pages of the list, compiled once per (admin or not, filters, limit).
_first_task_pages = CompiledRead(
    _first_task_page_query, stand_ins={"user_id": (1, 2)}, max_shapes=256
)


def first_task_page_rows(*, user: User, filters: TaskFilters, limit: int) -> list[dict] | None:
    """The first `limit + 1` rows of `task_list` in its order, through a compiled query;
    None for filters relative to the current time (`overdue`), which must not be kept."""
    if filters.overdue is not None:
        return None
    return _first_task_pages.rows((user.is_admin, filters, limit), user_id=user.pk)


def task_history(*, user: User, task_id) -> QuerySet[TaskEvent]:
    """The task's events, oldest first, each with the caller's `seq` for it (None for
    events from before the caller could see the task)."""
    caller_seq = StreamEntry.objects.filter(event=OuterRef("pk"), user=user).values("seq")[:1]
    return (
        TaskEvent.objects.filter(task_id=task_id)
        .annotate(caller_seq=Subquery(caller_seq))
        .order_by("id")
    )


def stream_after(*, user: User | int, after: int, limit: int) -> list[StreamEntry]:
    """Up to `limit` entries of the user's stream with `seq` greater than `after`."""
    return list(
        StreamEntry.objects.filter(user=user, seq__gt=after)
        .select_related("event")
        .order_by("seq")[:limit]
    )


def stream_last_seq(*, user: User | int) -> int:
    """The last `seq` handed out in the user's stream (0 for none yet)."""
    stream = EventStream.objects.filter(user=user).values_list("last_seq", flat=True).first()
    return stream or 0


def stream_is_pruned_after(*, user: User | int, after: int) -> bool:
    """Whether the log can no longer replay everything after `after`: entries just past
    it were pruned, or `after` is beyond anything this stream handed out."""
    last_seq = stream_last_seq(user=user)
    if after >= last_seq:
        return after > last_seq
    oldest = (
        StreamEntry.objects.filter(user=user).order_by("seq").values_list("seq", flat=True).first()
    )
    return oldest is None or oldest > after + 1


def stream_events_after(*, user: User | int, after: int, limit: int) -> list[dict]:
    """Up to `limit` events of the user's stream after `after`, rendered, oldest first."""
    return [
        event_representation(entry.event, seq=entry.seq)
        for entry in stream_after(user=user, after=after, limit=limit)
    ]

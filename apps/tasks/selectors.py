"""Every read of tasks, projects, comments and events goes through here: querysets, and
the one statement of the rules of visibility and rights.

Who sees a task: its creator, its assignee, every member of its project (any role) and
admins. Who changes every field of it: for a personal task its creator; for a project
task the project's owners and members; admins always. An assignee without those rights
changes `ASSIGNEE_FIELDS` only. Who sees a project: its members and admins. The same
rules pick the recipients of each event (`event_audience`).
"""

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from django.db import connection
from django.db.models import Count, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from apps.common.compiled import CompiledRead
from apps.common.pagination import OrderKey, order_by_keys
from apps.tasks.models import (
    EDITING_ROLES,
    Comment,
    EventStream,
    Membership,
    Project,
    ProjectRole,
    Status,
    StreamEntry,
    Task,
    TaskEvent,
)
from apps.tasks.representation import TASK_COLUMNS, event_representation
from apps.users.models import Role, User

# Sentinels that put tasks without a due date last whichever way `due_at` is ordered.
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
_FAR_PAST = datetime(1, 1, 2, tzinfo=UTC)

ORDERINGS = ("due_at", "priority", "created_at", "updated_at")


ASSIGNEE_FIELDS = frozenset({"status", "description", "metadata"})


@dataclass(frozen=True)
class TaskAccess:
    """What the caller may do to a task they can see: `role` is theirs in its project
    (None outside it, or for a personal task); `project_archived`, whether its project
    is archived (its tasks then only read)."""

    manage: bool
    role: str | None = None
    project_archived: bool = False


def task_access(user: User, task: Task, *, role: str | None, project_archived=False) -> TaskAccess:
    """The caller's rights on a task they can see, given their `role` in its project."""
    if task.project_id is None:
        manage = user.is_admin or task.created_by_id == user.pk
    else:
        manage = user.is_admin or role in EDITING_ROLES
    return TaskAccess(manage=manage, role=role, project_archived=project_archived)


def can_manage_in_project(user: User, role: str | None) -> bool:
    """Whether someone with `role` in a project may create and change its tasks."""
    return user.is_admin or role in EDITING_ROLES


def can_comment(user: User, access: TaskAccess) -> bool:
    """Whoever sees a task comments on it, except a project's viewers (an assignee or a
    creator who is a viewer is still a viewer)."""
    return user.is_admin or access.role != ProjectRole.VIEWER


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


def project_ids_of(user_id: int) -> list[UUID]:
    """The projects the user is a member of (any role), by id."""
    return list(
        Membership.objects.filter(user_id=user_id)
        .order_by("project_id")
        .values_list("project_id", flat=True)
    )


def visible_tasks(user: Caller, *, project_ids: list[UUID] | None = None) -> QuerySet[Task]:
    """Tasks the user may see: created by or assigned to them, or in one of their
    projects; admins see all. Their projects are a subquery, which suits a lookup by
    key; a list passes them as `project_ids` (one array, read beforehand), so that
    PostgreSQL can combine three index scans."""
    tasks = Task.objects.all()
    if user.is_admin:
        return tasks
    theirs = Q(created_by_id=user.pk) | Q(assignee_id=user.pk)
    if project_ids is None:
        mine = Membership.objects.filter(user_id=user.pk).values("project_id")
        return tasks.filter(theirs | Q(project_id__in=mine))
    return tasks.filter(theirs | Q(project_id__any=project_ids))


_PROJECT_STAND_INS = ([UUID(int=1)], [UUID(int=2)])


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
    role = Membership.objects.filter(project_id=OuterRef("project_id"), user_id=user_id)
    return (
        visible_tasks(caller)
        .select_for_update(of=("self",))
        .filter(pk=task_id)
        .annotate(
            caller_role=Subquery(role.values("role")[:1]),
            project_archived_at=Subquery(
                Project.objects.filter(pk=OuterRef("project_id")).values("archived_at")[:1]
            ),
        )
        .values(
            *_TASK_FIELDS,
            "created_by__username",
            "assignee__username",
            "caller_role",
            "project_archived_at",
        )
    )


# The lock of every change, compiled once per shape (admin or not): building the
# queryset took a quarter of a PATCH's CPU (py-spy), more than PostgreSQL spends on it.
_locked_task_read = CompiledRead(
    _locked_task_query,
    stand_ins={"user_id": (1, 2), "task_id": (UUID(int=1), UUID(int=2))},
)


def lock_visible_task(*, user: User, task_id) -> tuple[Task, TaskAccess] | None:
    """The task, locked until the transaction ends (FOR UPDATE, the task row only), if
    the user may see it, and what the user may do to it; its `created_by` and `assignee`
    hold their ids and usernames.

    For a project's task, what the user may do is read again under the project's share
    lock (`lock_project`): a membership change that was committing when the task was
    read (a demotion, a removal) is waited for and seen, so no change is made on rights
    lost before it commits. The task row is ours by then: it cannot have moved."""
    rows = _locked_task_read.rows(user.is_admin, user_id=user.pk, task_id=task_id)
    if not rows:
        return None
    project_id = rows[0]["project_id"]
    if project_id is not None and connection.features.has_select_for_update:
        lock_project(project_id)
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
    access = task_access(
        user,
        task,
        role=row["caller_role"],
        project_archived=row["project_archived_at"] is not None,
    )
    return task, access


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


def visible_task_access(*, user: User, task_id) -> tuple[Task, TaskAccess] | None:
    """The task (with its creator and assignee) and the user's rights on it, if they
    can see it; nothing locked."""
    task = visible_tasks(user).select_related("created_by", "assignee").filter(pk=task_id).first()
    if task is None:
        return None
    project = None
    role = None
    if task.project_id is not None:
        project = Project.objects.filter(pk=task.project_id).values("archived_at").first()
        role = project_role(user_id=user.pk, project_id=task.project_id)
    archived = project is not None and project["archived_at"] is not None
    return task, task_access(user, task, role=role, project_archived=archived)


def project_role(*, user_id: int, project_id) -> str | None:
    """The user's role in the project, or None if they are not a member."""
    return (
        Membership.objects.filter(project_id=project_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )


def visible_projects(user: User) -> QuerySet[Project]:
    """Projects the user may see (those they are a member of; admins see all), each
    with `my_role` (None for an admin outside it) and `member_count`, and its creator
    loaded."""
    role = Membership.objects.filter(project_id=OuterRef("pk"), user_id=user.pk).values("role")
    count = (
        Membership.objects.filter(project_id=OuterRef("pk"))
        .order_by()
        .values("project_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    projects = Project.objects.select_related("created_by").annotate(
        my_role=Subquery(role[:1]),
        member_count=Coalesce(Subquery(count), 0),
    )
    if not user.is_admin:
        projects = projects.filter(
            pk__in=Membership.objects.filter(user_id=user.pk).values("project_id")
        )
    return projects


def can_manage_project(user: User, role: str | None) -> bool:
    """Whether someone with `role` in a project may rename, archive, restore and delete
    it and manage its members: its owners and admins."""
    return user.is_admin or role == ProjectRole.OWNER


def visible_project(*, user: User, project_id) -> Project | None:
    """The project as `visible_projects` gives it, if the user may see it."""
    return visible_projects(user).filter(pk=project_id).first()


# The order of the project list: by name whatever its case, then by id (names repeat
# across creators), so that cursor pagination is exact.
PROJECT_LIST_KEYS = [OrderKey("name_key", descending=False), OrderKey("id", descending=False)]


def project_list(*, user: User, archived: str = "false") -> QuerySet[Project]:
    """The projects the user may see, as `visible_projects` gives them, with the key
    that orders them (`PROJECT_LIST_KEYS`): live ones (`archived` "false"), archived
    ones ("true") or both ("all")."""
    projects = visible_projects(user).annotate(name_key=Lower("name"))
    if archived == "false":
        projects = projects.filter(archived_at__isnull=True)
    elif archived == "true":
        projects = projects.filter(archived_at__isnull=False)
    return projects


# The order of a project's members: by username (unique), then by id.
MEMBER_LIST_KEYS = [OrderKey("username", descending=False), OrderKey("user_id", descending=False)]


def project_members(*, project_id) -> QuerySet[Membership]:
    """The project's memberships with their users, each with its `username` to order
    them by (`MEMBER_LIST_KEYS`)."""
    return (
        Membership.objects.filter(project_id=project_id)
        .select_related("user")
        .annotate(username=F("user__username"))
    )


def project_owner_count(*, project_id) -> int:
    """How many owners the project has."""
    return Membership.objects.filter(project_id=project_id, role=ProjectRole.OWNER).count()


def lock_project(project_id) -> dict | None:
    """Lock the project's row FOR SHARE until the transaction ends, and say whether it
    is archived (`{"archived": bool}`; None if there is no such project). Every change
    to the project or its memberships locks the row exclusively: a task change that
    checked the project, or an assignee's membership, under this lock knows the answer
    stays true until it commits (a deletion or a removal waits for it, or it waits for
    them and reads what they left)."""
    # SQLite (the embedded mode) has no row locks: it runs one writer at a time anyway.
    lock = " FOR SHARE" if connection.features.has_select_for_update else ""
    key = Project._meta.pk.get_db_prep_value(project_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT archived_at FROM {Project._meta.db_table} WHERE id = %s{lock}", [key]
        )
        row = cursor.fetchone()
    return None if row is None else {"archived": row[0] is not None}


def lock_project_audience(project_id) -> list[int] | None:
    """The project's members, by id, with the project row locked FOR SHARE until the
    transaction ends: a membership change (which locks it FOR UPDATE) waits for the
    changes being recorded, and they for it, so an event reaches exactly the members of
    the moment it commits. None if there is no such project.

    Two statements, not one with a join: a statement that waited for the lock still
    reads the other tables as they were when it began (READ COMMITTED re-reads only the
    locked row), so it would name a member whose removal it had just waited for."""
    if lock_project(project_id) is None:
        return None
    key = Project._meta.pk.get_db_prep_value(project_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id FROM {Membership._meta.db_table} WHERE project_id = %s", [key]
        )
        return [user_id for (user_id,) in cursor.fetchall()]


def event_audience(
    *,
    task: Task | None,
    project_id,
    people: dict[int, User],
    extra: AbstractSet[int | None] = frozenset(),
) -> set[int]:
    """Who an event goes to: everyone who can see its task (its creator, its assignee,
    its project's members) or, for a project's own events, the project's members; every
    active admin (among `people`); and `extra`, who just lost sight of it."""
    ids: set[int | None] = set(extra)
    if task is not None:
        ids |= {task.created_by_id, task.assignee_id}
    ids |= {pk for pk, person in people.items() if person.is_admin and person.is_active}
    if project_id is not None:
        ids |= set(lock_project_audience(project_id) or ())
    return {pk for pk in ids if pk is not None}


def commenter_ids(*, task_id) -> set[int]:
    """Everyone who has commented on the task."""
    return set(Comment.objects.filter(task_id=task_id).values_list("author_id", flat=True))


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
    # A project's id, or "none" for personal tasks only.
    project: str | None = None
    search_words: tuple[str, ...] = field(default_factory=tuple)
    ordering: str = "-created_at"


def task_list(
    *, user: Caller, filters: TaskFilters, project_ids: list[UUID] | None = None
) -> tuple[QuerySet, list[OrderKey]]:
    """The visible tasks matching `filters` as rows of their columns (`TASK_COLUMNS` and
    the order keys), and the keys that order them (unique, ending with the id, so that
    cursor pagination is exact). `project_ids` are the user's projects (read when not
    given)."""
    tasks = _in_project(_listed_tasks(user, project_ids), filters.project)
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


def _listed_tasks(user: Caller, project_ids: list[UUID] | None) -> QuerySet[Task]:
    """`visible_tasks` in the form for a list: the user's projects as an array."""
    if project_ids is None and not user.is_admin:
        project_ids = project_ids_of(user.pk)
    return visible_tasks(user, project_ids=project_ids)


def _in_project(tasks: QuerySet[Task], project: str | None) -> QuerySet[Task]:
    if project == "none":
        return tasks.filter(project__isnull=True)
    if project is not None:
        return tasks.filter(project_id=project)
    return tasks


def task_list_keys(filters: TaskFilters) -> list[OrderKey]:
    """The keys that order `task_list` (unique, ending with the id). Ordering by due date
    orders by `due_sort`, which puts tasks without one last either way."""
    descending = filters.ordering.startswith("-")
    name = filters.ordering.lstrip("-")
    if name == "due_at":
        name = "due_sort"
    return [OrderKey(name, descending), OrderKey("id", descending)]


def _first_task_page_query(*, shape: tuple, user_id: int, project_ids) -> QuerySet:
    is_admin, filters, limit = shape
    caller = _Caller(pk=user_id, is_admin=is_admin)
    tasks, keys = task_list(user=caller, filters=filters, project_ids=project_ids)
    return order_by_keys(tasks, keys)[: limit + 1]


# First pages of the list, compiled once per (admin or not, filters, limit).
_first_task_pages = CompiledRead(
    _first_task_page_query,
    stand_ins={"user_id": (1, 2), "project_ids": _PROJECT_STAND_INS},
    max_shapes=256,
)


def first_task_page_rows(*, user: User, filters: TaskFilters, limit: int) -> list[dict] | None:
    """The first `limit + 1` rows of `task_list` in its order, through a compiled query;
    None for filters relative to the current time (`overdue`), which must not be kept."""
    if filters.overdue is not None:
        return None
    project_ids = [] if user.is_admin else project_ids_of(user.pk)
    return _first_task_pages.rows(
        (user.is_admin, filters, limit), user_id=user.pk, project_ids=project_ids
    )


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


# --- Comments ---------------------------------------------------------------------------

# Oldest first; the id breaks ties, so that cursor pagination is exact.
COMMENT_ORDER = (OrderKey("created_at", False), OrderKey("id", False))


def task_comments(*, task_id) -> QuerySet[Comment]:
    """The task's comments with their authors (order them by `COMMENT_ORDER`)."""
    return Comment.objects.filter(task_id=task_id).select_related("author")


def task_comment(*, task_id, comment_id) -> Comment | None:
    """One comment of the task, with its author, or None (no such comment, or one of
    another task)."""
    return task_comments(task_id=task_id).filter(pk=comment_id).first()


def commenters_who_see(task: Task) -> set[int]:
    """Everyone who has commented on the task and can still see it (its creator, its
    assignee, a member of its project, an active admin): who is told of a new comment
    besides its creator and assignee. Someone who has left the project is not."""
    sees = Q(author_id__in=(task.created_by_id, task.assignee_id)) | Q(
        author__role=Role.ADMIN, author__is_active=True
    )
    if task.project_id is not None:
        sees |= Q(
            author_id__in=Membership.objects.filter(project_id=task.project_id).values("user_id")
        )
    commenters = Comment.objects.filter(task_id=task.pk).filter(sees)
    return set(commenters.values_list("author_id", flat=True).distinct())

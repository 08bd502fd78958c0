"""Every change to a task goes through here.

Each public function is one transaction: it locks what it changes, applies the rules of
who may do what, bumps `version`, and records the event (`apps.tasks.events`) in the same
transaction. Refusals are the project's own errors (`apps.common.errors`).
"""

import functools
import logging
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from apps.common.errors import (
    Archived,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidInput,
    NotAllowed,
    NotFound,
    StaleVersion,
)
from apps.tasks import selectors
from apps.tasks.events import record_event
from apps.tasks.models import (
    EDITING_ROLES,
    IDEMPOTENCY_KEY_CONSTRAINT,
    EventType,
    IdempotencyRecord,
    Task,
)
from apps.tasks.representation import EDITABLE_FIELDS, task_representation
from apps.tasks.selectors import ASSIGNEE_FIELDS, TaskAccess
from apps.users.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreateResult:
    body: dict
    replayed: bool


def task_create(
    *,
    actor: User,
    data: dict,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> CreateResult:
    """Create a task from validated `data` and return its representation; with an
    Idempotency-Key, a repeat of the same request within 24 hours replays the first
    response and creates nothing. The key with another body raises IdempotencyKeyReused;
    one whose first request is still running, IdempotencyKeyInUse."""
    if idempotency_key is None:
        with transaction.atomic():
            return CreateResult(body=_create_and_record(actor=actor, data=data), replayed=False)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _create_idempotent(
                    actor=actor, data=data, key=idempotency_key, request_hash=request_hash
                )
        except IntegrityError as exc:
            # A concurrent request with the same key committed first: go round again
            # and replay what it stored.
            if _violated_constraint(exc) != IDEMPOTENCY_KEY_CONSTRAINT:
                raise
    raise IdempotencyKeyInUse(
        "A concurrent request with this Idempotency-Key is still in progress."
    )


def _violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint that `exc` reports as violated, as the database
    driver gives it (psycopg's `diag.constraint_name`), or None. SQLite (the embedded
    mode) names only a unique index built on expressions, in its message."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name is None:
        named = _SQLITE_UNIQUE_INDEX.search(str(exc))
        name = named.group(1) if named else None
    return name


_SQLITE_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '([^']+)'")


def _create_idempotent(*, actor, data, key, request_hash) -> CreateResult:
    now = timezone.now()
    record = IdempotencyRecord.objects.select_for_update().filter(user=actor, key=key).first()
    if record is not None and record.created_at > now - settings.IDEMPOTENCY_KEY_TTL:
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body."
            )
        return CreateResult(body=record.response_body, replayed=True)
    if record is not None:
        record.delete()
    # Claim the key before doing the work: a concurrent request with the same key waits
    # here on the unique index instead of creating a second task.
    record = IdempotencyRecord.objects.create(
        user=actor,
        key=key,
        request_hash=request_hash,
        response_body={},
        created_at=now,
    )
    body = _create_and_record(actor=actor, data=data)
    record.task_id = body["id"]
    record.response_body = body
    record.save(update_fields=["task_id", "response_body"])
    return CreateResult(body=body, replayed=False)


def _create_and_record(*, actor: User, data: dict) -> dict:
    """Insert the task and record its `task.created` event; return its representation."""
    task = Task(created_by=actor, **data)
    if task.project_id is not None:
        _check_project_for_tasks(actor=actor, project_id=task.project_id)
        _check_assignee_in_project(task)
    _insert(task)
    task.created_by = actor
    body = task_representation(task)
    record_event(EventType.CREATED, task=task, actor=actor, snapshot=body)
    return body


@transaction.atomic
def task_update(
    *, task_id, actor: User, data: dict, if_match: frozenset[int] | None = None
) -> Task:
    """Apply validated `data` to the task. A change that changes nothing is not a change:
    no new version and no event. Moving the task into, out of or between projects needs
    the right to change every field on both sides. Returns the task as it is now."""
    task, access = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match)
    before = task_representation(task)
    old_assignee_id = task.assignee_id
    old_project_id = task.project_id
    for field, value in data.items():
        setattr(task, field, value)
    after = task_representation(task)
    changes = {
        field: [before[field], after[field]]
        for field in EDITABLE_FIELDS
        if before[field] != after[field]
    }
    if not changes:
        return task
    _check_change_allowed(
        access=access, was_assignee=old_assignee_id == actor.pk, changed=changes.keys()
    )
    if task.archived_at is not None:
        raise Archived("The task is archived; restore it before changing it.")
    if "project" in changes:
        _check_move(actor=actor, task=task, old_project_id=old_project_id)
    if "project" in changes or "assignee" in changes:
        _check_assignee_in_project(task)
    task.version += 1
    _save_changes(task, [*data, "version"])
    # Who could see the task and no longer does gets this last event: a former assignee,
    # the members of the project it left.
    extra: set[int | None] = {old_assignee_id}
    if "project" in changes and old_project_id is not None:
        extra |= set(selectors.lock_project_audience(old_project_id) or ())
    record_event(
        EventType.UPDATED,
        task=task,
        actor=actor,
        changes=changes,
        extra_recipients=extra - {None},
    )
    return task


def _check_change_allowed(
    *, access: TaskAccess, was_assignee: bool, changed: AbstractSet[str]
) -> None:
    """NotAllowed unless the actor may make this change: anything with the right to
    change every field; as the assignee without it, ASSIGNEE_FIELDS; anyone else who
    sees the task (a viewer, a creator who left the project), nothing. Archived when the
    task's project is."""
    if not access.manage:
        if not was_assignee:
            raise NotAllowed("You may only read this task.")
        if not changed <= ASSIGNEE_FIELDS:
            forbidden = ", ".join(sorted(changed - ASSIGNEE_FIELDS))
            raise NotAllowed(
                f"As the assignee you may change only status, description and metadata, "
                f"not {forbidden}."
            )
    _refuse_in_archived_project(access)


def _check_move(*, actor: User, task: Task, old_project_id) -> None:
    """A move needs the right to change every field of the task where it was (checked
    before, with the other fields) and where it goes: in a project, to be an owner or
    member of it; out of every project, to be its creator or an admin."""
    if task.project_id is None:
        if not (actor.is_admin or task.created_by_id == actor.pk):
            raise NotAllowed("Only the task's creator or an admin may make it personal.")
        return
    _check_project_for_tasks(actor=actor, project_id=task.project_id)


def _check_project_for_tasks(*, actor: User, project_id) -> None:
    """The actor may put tasks in this project: it exists, they can see it (else the
    `project` field is invalid: 400), they are an owner or member (else 403), and it is
    not archived (else 409). The project stays so until the change commits: it is
    locked FOR SHARE, so a deletion or an archival waits (or was waited for)."""
    row = selectors.lock_project(project_id)
    role = selectors.project_role(user_id=actor.pk, project_id=project_id)
    if row is None or (role is None and not actor.is_admin):
        raise InvalidInput({"project": [f"No project with id {project_id} of yours."]})
    if not selectors.can_manage_in_project(actor, role):
        raise NotAllowed("As a viewer of this project you may not add or change its tasks.")
    if row["archived"]:
        raise Archived(
            "The project is archived; restore it before adding tasks to it.",
            code="project_archived",
        )


def _check_assignee_in_project(task: Task) -> None:
    """A project task's assignee must be one of its owners or members (400 otherwise),
    and stays one until the change commits: the project is locked FOR SHARE first, so a
    removal or a demotion waits (or was waited for)."""
    if task.project_id is None or task.assignee_id is None:
        return
    selectors.lock_project(task.project_id)
    role = selectors.project_role(user_id=task.assignee_id, project_id=task.project_id)
    if role not in EDITING_ROLES:
        raise InvalidInput(
            {"assignee": ["Must be an owner or member of the task's project (not a viewer)."]}
        )


@transaction.atomic
def task_archive(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> Task:
    """Archive the task; archiving an archived task changes nothing."""
    return _set_archived(task_id=task_id, actor=actor, if_match=if_match, archived=True)


@transaction.atomic
def task_restore(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> Task:
    """Bring an archived task back; restoring a live task changes nothing."""
    return _set_archived(task_id=task_id, actor=actor, if_match=if_match, archived=False)


def _set_archived(*, task_id, actor: User, if_match, archived: bool) -> Task:
    task, access = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match, manage=True)
    if (task.archived_at is not None) == archived:
        return task
    _refuse_in_archived_project(access)
    task.archived_at = timezone.now() if archived else None
    task.version += 1
    _save_changes(task, ["archived_at", "version"])
    record_event(EventType.ARCHIVED if archived else EventType.RESTORED, task=task, actor=actor)
    return task


@transaction.atomic
def task_delete(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> None:
    """Delete the task for good; its history stays in the event log."""
    task, access = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match, manage=True)
    _refuse_in_archived_project(access)
    record_event(EventType.DELETED, task=task, actor=actor, snapshot={"id": str(task.pk)})
    task.delete()


def _refuse_in_archived_project(access: TaskAccess) -> None:
    if access.project_archived:
        raise Archived(
            "The task's project is archived; restore the project before changing its tasks.",
            code="project_archived",
        )


def _lock_visible_task(
    *, task_id, actor: User, if_match: frozenset[int] | None = None, manage: bool = False
) -> tuple[Task, TaskAccess]:
    """Lock the task for this transaction and say what the actor may do to it. NotFound
    if the actor cannot see it; NotAllowed when `manage` and the actor may not change
    every field; StaleVersion when `if_match` (the versions an If-Match header accepts;
    None for no condition) does not hold the current version."""
    locked = selectors.lock_visible_task(user=actor, task_id=task_id)
    if locked is None:
        raise NotFound("No task with this id.")
    task, access = locked
    if manage and not access.manage:
        raise NotAllowed(
            "Only the task's creator, its project's owners and members, or an admin may do this."
        )
    if if_match is not None and task.version not in if_match:
        raise StaleVersion(
            "The task has changed since the version named in If-Match.",
            current=task_representation(task),
        )
    return task, access


def _insert(task: Task) -> None:
    """INSERT the new task as `save(force_insert=True)` would (the timestamps set, the
    values prepared by their fields), from SQL built once: the ORM's insert compiler was
    a seventh of a POST's CPU (py-spy)."""
    values = [
        field.get_db_prep_save(field.pre_save(task, True), connection)
        for field in Task._meta.concrete_fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), values)
    task._state.adding = False
    task._state.db = connection.alias


@functools.cache
def _insert_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in Task._meta.concrete_fields)
    placeholders = ", ".join(["%s"] * len(Task._meta.concrete_fields))
    return f"INSERT INTO {quote(Task._meta.db_table)} ({columns}) VALUES ({placeholders})"


def _save_changes(task: Task, names: list[str]) -> None:
    """Write these fields of the locked task, and `updated_at` (now), as
    `save(update_fields=...)` would, with one prepared UPDATE instead of the ORM's
    query building."""
    task.updated_at = timezone.now()
    # Columns of the model itself, never a relation's reverse side or a generic key.
    fields = [cast("Field", Task._meta.get_field(name)) for name in (*names, "updated_at")]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(getattr(task, field.attname), connection) for field in fields]
    pk = Task._meta.pk
    sql = f"UPDATE {quote(Task._meta.db_table)} SET {assignments} WHERE {quote(pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, pk.get_db_prep_value(task.pk, connection)])

"""Every change to a task goes through here.

Each public function is one transaction: it locks what it changes, applies the rules of
who may do what, bumps `version`, and records the event (the event row, each recipient's
stream entry, and the hand-off to delivery after commit) in the same transaction.
"""

import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied

from apps.common.exceptions import Problem
from apps.tasks.models import (
    EventStream,
    EventType,
    IdempotencyRecord,
    Status,
    StreamEntry,
    Task,
    TaskEvent,
)
from apps.tasks.notifications import plan_event_emails
from apps.tasks.representation import EDITABLE_FIELDS, task_representation
from apps.tasks.selectors import can_manage, lock_visible_task, people_concerned
from apps.users.models import User
from realtime.publisher import publish_in_process

logger = logging.getLogger(__name__)

# What an assignee who is not the creator (nor an admin) may change.
ASSIGNEE_FIELDS = frozenset({"status", "description", "metadata"})


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
    response and creates nothing, and the key with another body is a 422."""
    if idempotency_key is None:
        with transaction.atomic():
            return CreateResult(body=_create_task(actor=actor, data=data), replayed=False)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _create_idempotent(
                    actor=actor, data=data, key=idempotency_key, request_hash=request_hash
                )
        except IntegrityError as exc:
            # A concurrent request with the same key committed first: go round again
            # and replay what it stored.
            if "idempotency" not in str(exc).lower():
                raise
    raise Problem(
        "A concurrent request with this Idempotency-Key is still in progress.",
        status_code=409,
        code="idempotency_key_in_use",
    )


def _create_idempotent(*, actor, data, key, request_hash) -> CreateResult:
    now = timezone.now()
    record = IdempotencyRecord.objects.select_for_update().filter(user=actor, key=key).first()
    if record is not None and record.created_at > now - settings.IDEMPOTENCY_KEY_TTL:
        if record.request_hash != request_hash:
            raise Problem(
                "This Idempotency-Key was already used with a different request body.",
                status_code=422,
                code="idempotency_key_reused",
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
        task_id="00000000-0000-0000-0000-000000000000",
        response_body={},
        created_at=now,
    )
    body = _create_task(actor=actor, data=data)
    record.task_id = body["id"]
    record.response_body = body
    record.save(update_fields=["task_id", "response_body"])
    return CreateResult(body=body, replayed=False)


def _create_task(*, actor: User, data: dict) -> dict:
    task = Task(created_by=actor, **data)
    _insert(task)
    task.created_by = actor
    body = task_representation(task)
    _record_event(EventType.CREATED, task=task, actor=actor, snapshot=body)
    return body


@transaction.atomic
def task_update(
    *, task_id, actor: User, data: dict, if_match: frozenset[int] | None = None
) -> Task:
    """Apply validated `data` to the task. A change that changes nothing is not a change:
    no new version and no event. Returns the task as it is now."""
    task = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match)
    before = task_representation(task)
    old_assignee_id = task.assignee_id
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
    if not can_manage(actor, task) and not set(changes) <= ASSIGNEE_FIELDS:
        forbidden = ", ".join(sorted(set(changes) - ASSIGNEE_FIELDS))
        raise PermissionDenied(
            f"As the assignee you may change only status, description and metadata, "
            f"not {forbidden}."
        )
    if task.archived_at is not None:
        raise Problem(
            "The task is archived; restore it before changing it.",
            status_code=409,
            code="task_archived",
        )
    task.version += 1
    _save_changes(task, [*data, "version"])
    _record_event(
        EventType.UPDATED,
        task=task,
        actor=actor,
        changes=changes,
        extra_recipients={old_assignee_id} - {None},
    )
    return task


@transaction.atomic
def task_archive(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> Task:
    """Archive the task; archiving an archived task changes nothing."""
    return _set_archived(task_id=task_id, actor=actor, if_match=if_match, archived=True)


@transaction.atomic
def task_restore(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> Task:
    """Bring an archived task back; restoring a live task changes nothing."""
    return _set_archived(task_id=task_id, actor=actor, if_match=if_match, archived=False)


def _set_archived(*, task_id, actor: User, if_match, archived: bool) -> Task:
    task = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match, manage=True)
    if (task.archived_at is not None) == archived:
        return task
    task.archived_at = timezone.now() if archived else None
    task.version += 1
    _save_changes(task, ["archived_at", "version"])
    _record_event(EventType.ARCHIVED if archived else EventType.RESTORED, task=task, actor=actor)
    return task


@transaction.atomic
def task_delete(*, task_id, actor: User, if_match: frozenset[int] | None = None) -> None:
    """Delete the task for good; its history stays in the event log."""
    task = _lock_visible_task(task_id=task_id, actor=actor, if_match=if_match, manage=True)
    _record_event(EventType.DELETED, task=task, actor=actor, snapshot={"id": str(task.pk)})
    task.delete()


def remind_due_tasks(*, now: datetime, lead: timedelta, batch_size: int = 100) -> int:
    """One batch of due-soon reminders: each open task due within `lead` from `now` that
    was not yet reminded for its current due date gets one `task.due_soon` event. Tasks
    another run has locked are skipped, so two runs at once remind nobody twice."""
    with transaction.atomic():
        tasks = list(
            Task.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("created_by", "assignee")
            .filter(archived_at__isnull=True, due_at__gt=now, due_at__lte=now + lead)
            .exclude(status=Status.DONE)
            .exclude(reminded_for_due_at=F("due_at"))
            .order_by("due_at", "id")[:batch_size]
        )
        for task in tasks:
            task.reminded_for_due_at = task.due_at
            task.save(update_fields=["reminded_for_due_at"])
            _record_event(EventType.DUE_SOON, task=task, actor=None)
    return len(tasks)


def purge_archived_tasks(*, archived_before: datetime, batch_size: int = 100) -> int:
    """Delete one batch of tasks archived before `archived_before`, each with its
    `task.deleted` event; tasks locked by another run are left to it."""
    with transaction.atomic():
        tasks = list(
            Task.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("created_by")
            .filter(archived_at__lt=archived_before)
            .order_by("archived_at", "id")[:batch_size]
        )
        for task in tasks:
            _record_event(EventType.DELETED, task=task, actor=None, snapshot={"id": str(task.pk)})
            task.delete()
    return len(tasks)


def prune_event_log(*, created_before: datetime, batch_size: int = 1000) -> int:
    """Delete one batch of events older than `created_before` (with their stream entries
    and email records). A socket resuming from before what is left gets resync_required."""
    return _delete_oldest(TaskEvent, created_before=created_before, batch_size=batch_size)


def prune_idempotency_records(*, created_before: datetime, batch_size: int = 1000) -> int:
    """Delete one batch of Idempotency-Key records older than `created_before`."""
    return _delete_oldest(IdempotencyRecord, created_before=created_before, batch_size=batch_size)


def _delete_oldest(model, *, created_before: datetime, batch_size: int) -> int:
    ids = list(
        model.objects.filter(created_at__lt=created_before)
        .order_by("id")
        .values_list("id", flat=True)[:batch_size]
    )
    _, per_model = model.objects.filter(id__in=ids).delete()
    return per_model.get(model._meta.label, 0)


def _lock_visible_task(
    *, task_id, actor: User, if_match: frozenset[int] | None = None, manage: bool = False
) -> Task:
    """Lock the task for this transaction, or 404 if the actor cannot see it; 403 when
    `manage` and the actor is only the assignee; 412 when `if_match` (the versions an
    If-Match header accepts; None for no condition) does not hold the current version."""
    task = lock_visible_task(user=actor, task_id=task_id)
    if task is None:
        raise NotFound("No task with this id.")
    if manage and not can_manage(actor, task):
        raise PermissionDenied("Only the task's creator or an admin may do this.")
    if if_match is not None and task.version not in if_match:
        raise Problem(
            "The task has changed since the version named in If-Match.",
            status_code=412,
            code="stale_version",
            current=task_representation(task),
        )
    return task


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
    fields = [Task._meta.get_field(name) for name in (*names, "updated_at")]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(getattr(task, field.attname), connection) for field in fields]
    pk = Task._meta.pk
    sql = f"UPDATE {quote(Task._meta.db_table)} SET {assignments} WHERE {quote(pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, pk.get_db_prep_value(task.pk, connection)])


def _people_concerned(task: Task, extra: set[int]) -> dict[int, User]:
    """In one query: the task's creator and assignee, the `extra` people, and every
    active admin."""
    return people_concerned({task.created_by_id, task.assignee_id, *extra} - {None})


def _recipients_of(task: Task, people: dict[int, User], extra: set[int]) -> set[int]:
    """Who can see the task now (its creator, its assignee and every active admin), and
    the `extra` people who just lost sight of it."""
    admins = {pk for pk, person in people.items() if person.is_admin and person.is_active}
    return {task.created_by_id, task.assignee_id, *admins, *extra} - {None}


def _record_event(
    event_type: str,
    *,
    task: Task,
    actor: User | None,
    changes: dict | None = None,
    snapshot: dict | None = None,
    extra_recipients: set[int] = frozenset(),
) -> TaskEvent:
    """Write the event and give it the next `seq` in each recipient's stream. Called last
    in the transaction, so the stream locks are held only until the commit. Events of the
    system's own jobs (reminders, purges) have no actor."""
    people = _people_concerned(task, extra_recipients)
    recipients = _recipients_of(task, people, extra_recipients)
    event = TaskEvent(
        type=event_type,
        task_id=task.pk,
        actor=actor,
        actor_snapshot={"id": actor.pk, "username": actor.username} if actor else None,
        task_snapshot=snapshot if snapshot is not None else task_representation(task),
        changes=changes,
        created_at=timezone.now(),
    )
    if connection.vendor == "postgresql" and recipients:
        _insert_event_with_entries(event, sorted(recipients))
    else:
        event.save(force_insert=True)
        seqs = _next_seqs(sorted(recipients))
        StreamEntry.objects.bulk_create(
            StreamEntry(user_id=user_id, seq=seq, event=event) for user_id, seq in seqs.items()
        )
    # The emails are decided with the change, so that no lost job can lose one: a
    # delivery whose send job never ran is queued again by queue_due_emails.
    delivery_ids = plan_event_emails(event, people=people)
    if delivery_ids:
        transaction.on_commit(lambda: _hand_off_emails(delivery_ids))
    # Live publication needs nothing here: the event row is the outbox, and the relay
    # is woken by the commit itself (a trigger NOTIFYs it). Without a relay process (the
    # embedded mode) this process publishes after the commit.
    if settings.LIVE_RELAY_IN_PROCESS:
        transaction.on_commit(publish_in_process, robust=True)  # logged, never a 500
    return event


# After a commit, the change's emails go to the broker from this one thread, so that the
# request answers without waiting for Redis and Celery's message building (1-3 ms of a
# PATCH, emails on: scripts/bench/live_e2e.py). The deliveries are committed already: a
# hand-off that never happens (the process dies first) only leaves them to
# queue_due_emails, as a broker outage does.
_email_hand_off = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskhub-emails")


def _hand_off_emails(delivery_ids: list[int]) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _queue_emails(delivery_ids)  # embedded mode: the job itself runs here, now
    else:
        _email_hand_off.submit(_queue_emails, delivery_ids)


def wait_for_email_hand_offs(timeout: float = 10) -> None:
    """Return once every hand-off submitted so far is done (they run in order)."""
    _email_hand_off.submit(lambda: None).result(timeout)


def _queue_emails(delivery_ids: list[int]) -> None:
    """After commit: queue one send job for the change's emails (one message to the
    broker per change). A broker that is away fails nothing: the deliveries stay pending
    and queue_due_emails queues them later."""
    from apps.tasks.jobs import send_email_deliveries  # the jobs build on these services

    try:
        send_email_deliveries.delay(delivery_ids)
    except Exception as exc:  # kombu raises its own errors and plain OSErrors
        logger.warning(
            "emails %s delayed: the broker is unavailable (%s); they will be queued again",
            delivery_ids,
            exc,
            extra={"deliveries": delivery_ids},
        )


_EVENT_COLUMNS = (
    "type",
    "task_id",
    "actor_id",
    "actor_snapshot",
    "task_snapshot",
    "changes",
    "created_at",
)


def _insert_event_with_entries(event: TaskEvent, user_ids: list[int]) -> None:
    """On PostgreSQL, the event row, the next `seq` of each recipient's stream and their
    stream entries in one statement (one round trip instead of three), with the same
    locking as `_next_seqs`: the stream rows are upserted in id order."""
    event_table = TaskEvent._meta.db_table
    stream_table = EventStream._meta.db_table
    entry_table = StreamEntry._meta.db_table
    fields = [TaskEvent._meta.get_field(name) for name in _EVENT_COLUMNS]
    values = [field.get_db_prep_save(getattr(event, field.attname), connection) for field in fields]
    streams = ", ".join(["(%s, 1)"] * len(user_ids))
    sql = f"""
        WITH event AS (
            INSERT INTO {event_table} ({", ".join(_EVENT_COLUMNS)})
            VALUES ({", ".join(["%s"] * len(_EVENT_COLUMNS))}) RETURNING id
        ), stream AS (
            INSERT INTO {stream_table} (user_id, last_seq) VALUES {streams}
            ON CONFLICT (user_id) DO UPDATE SET last_seq = {stream_table}.last_seq + 1
            RETURNING user_id, last_seq
        ), entry AS (
            INSERT INTO {entry_table} (user_id, seq, event_id)
            SELECT stream.user_id, stream.last_seq, event.id FROM stream CROSS JOIN event
        )
        SELECT id FROM event
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *user_ids])
        (event.pk,) = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias


def _next_seqs(user_ids: list[int]) -> dict[int, int]:
    """Take the next `seq` of each user's stream in one statement. The upsert locks each
    stream row until commit, in id order, so concurrent writers cannot deadlock here."""
    if not user_ids:
        return {}
    table = EventStream._meta.db_table
    values = ", ".join(["(%s, 1)"] * len(user_ids))
    sql = (
        f"INSERT INTO {table} (user_id, last_seq) VALUES {values} "
        f"ON CONFLICT (user_id) DO UPDATE SET last_seq = {table}.last_seq + 1 "
        f"RETURNING user_id, last_seq"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, user_ids)
        return dict(cursor.fetchall())

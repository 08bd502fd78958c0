"""Recording what happened (to a task, a project, a membership or a comment): the one
home of the event pipeline.

`record_event` writes the event row, gives it the next `seq` in each recipient's stream,
decides its emails and arranges their hand-off after the commit, all in the caller's
transaction. Only the actions call it: the services (`apps.tasks.services`) and the
periodic upkeep (`apps.tasks.upkeep`). Live publication needs nothing more: the event row
is the outbox that the relay (realtime/relay.py) publishes from.
"""

import logging
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from apps.tasks.models import EventStream, Project, StreamEntry, Task, TaskEvent
from apps.tasks.notifications import plan_event_emails
from apps.tasks.representation import project_snapshot, task_representation
from apps.tasks.selectors import event_audience, people_concerned
from apps.users.models import User
from realtime.publisher import publish_in_process

logger = logging.getLogger(__name__)

# The Celery job that sends a change's emails (apps.tasks.jobs.send_email_deliveries),
# named rather than imported: the jobs build on the upkeep, which records events here.
SEND_EMAILS_JOB = "tasks.send_email_deliveries"


def record_event(  # noqa: PLR0913 (keyword-only parts of an event, most optional)
    event_type: str,
    *,
    actor: User | None,
    task: Task | None = None,
    project: Project | None = None,
    changes: dict | None = None,
    snapshot: dict | None = None,
    member: dict | None = None,
    comment: dict | None = None,
    extra_recipients: AbstractSet[int | None] = frozenset(),
    notify: AbstractSet[int] = frozenset(),
) -> TaskEvent:
    """Write the event and give it the next `seq` in each recipient's stream, plan its
    emails and hand them off after the commit. Call it last in the transaction, so the
    stream locks are held only until the commit.

    A task's events (and its comments', which pass `comment`) carry `task` and go to
    everyone who can see it; a project's (and its members', which pass `member`) carry
    `project` and go to its members; both also go to every active admin and to
    `extra_recipients`, who just lost sight of it (`selectors.event_audience`). `snapshot`
    replaces the task's representation (a deleted task's `{id}`). `notify` names people
    beyond the task's creator and assignee whom the event may email (earlier commenters,
    a member just added). Events of the system's own jobs (reminders, purges) have no
    actor."""
    concerned = {*extra_recipients, *notify}
    if task is not None:
        concerned |= {task.created_by_id, task.assignee_id}
    people = people_concerned({pk for pk in concerned if pk is not None})
    project_id = project.pk if project is not None else task.project_id if task else None
    recipients = event_audience(
        task=task, project_id=project_id, people=people, extra=extra_recipients
    )
    task_snapshot = None
    if task is not None:
        task_snapshot = snapshot if snapshot is not None else task_representation(task)
    event = TaskEvent(
        type=event_type,
        task_id=task.pk if task is not None else None,
        project_id=project_id,
        actor=actor,
        actor_snapshot={"id": actor.pk, "username": actor.username} if actor else None,
        task_snapshot=task_snapshot,
        project_snapshot=project_snapshot(project) if project is not None else None,
        member_snapshot=member,
        comment_snapshot=comment,
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
    delivery_ids = plan_event_emails(event, people=people, notify=notify)
    if delivery_ids:
        transaction.on_commit(lambda: hand_off_emails(delivery_ids))
    # The relay is woken by the commit itself (a trigger NOTIFYs it). Without a relay
    # process (the embedded mode) this process publishes after the commit.
    if settings.LIVE_RELAY_IN_PROCESS:
        transaction.on_commit(publish_in_process, robust=True)  # logged, never a 500
    return event


# After a commit, the change's emails go to the broker from this one thread, so that the
# request answers without waiting for Redis and Celery's message building (1-3 ms of a
# PATCH, emails on: scripts/bench/live_e2e.py). The deliveries are committed already: a
# hand-off that never happens (the process dies first) only leaves them to
# queue_due_emails, as a broker outage does.
_email_hand_off = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskhub-emails")


def hand_off_emails(delivery_ids: list[int]) -> None:
    """After commit: have one send job queued for these deliveries, from the hand-off
    thread (in the embedded mode, where jobs run in-process, the job runs here, now)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _queue_emails(delivery_ids)
    else:
        _email_hand_off.submit(_queue_emails, delivery_ids)


def wait_for_email_hand_offs(timeout: float = 10) -> None:
    """Return once every hand-off submitted so far is done (they run in order)."""
    _email_hand_off.submit(lambda: None).result(timeout)


def _queue_emails(delivery_ids: list[int]) -> None:
    """Queue one send job for the change's emails (one message to the broker per change).
    A broker that is away fails nothing: the deliveries stay pending and queue_due_emails
    queues them later."""
    try:
        current_app.tasks[SEND_EMAILS_JOB].delay(delivery_ids)
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
    "project_id",
    "actor_id",
    "actor_snapshot",
    "task_snapshot",
    "project_snapshot",
    "member_snapshot",
    "comment_snapshot",
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
    # Columns of the model itself, never a relation's reverse side or a generic key.
    fields = [cast("Field", TaskEvent._meta.get_field(name)) for name in _EVENT_COLUMNS]
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

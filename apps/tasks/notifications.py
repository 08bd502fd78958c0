"""Email notifications of task events, new comments and new project members: who gets
one, and sending each exactly once."""

import logging
import random
import smtplib
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.tasks.models import (
    TASK_EVENT_TYPES,
    DeliveryStatus,
    EmailDelivery,
    EventType,
    TaskEvent,
)
from apps.users.models import EmailNotifications, User

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 15 * 60

_VERBS: dict[str, str] = {  # by event type (an event row holds the plain string)
    EventType.CREATED: "has been created",
    EventType.UPDATED: "has been updated",
    EventType.ARCHIVED: "has been archived",
    EventType.RESTORED: "has been restored",
    EventType.DELETED: "has been deleted",
    EventType.DUE_SOON: "is due soon",
}
_STATUS_LABELS = {"todo": "To do", "in_progress": "In progress", "done": "Done"}


# A pending delivery whose job has not sent it after this long is queued again: its job
# was lost (the broker was away at the commit, or a worker died holding it).
REQUEUE_AFTER = timedelta(seconds=30)
# A kept SMTP connection idle for longer than this is closed rather than reused: servers
# drop idle clients.
SMTP_IDLE_SECONDS = 30


def plan_event_emails(
    event: TaskEvent, *, people: dict[int, User], notify: AbstractSet[int] = frozenset()
) -> list[int]:
    """Decide, in the change's own transaction, who is emailed about the new `event`,
    record one delivery per person, and return their ids for the send jobs. A task's
    events email its creator and assignee; a new comment, them and the people in
    `notify` (earlier commenters), never its author; being added to a project, the
    person added (`notify`); other events email nobody. Each is emailed as their
    `email_notifications` allows. `people` are the people the change concerns, read with
    their email fields (`selectors.people_concerned`); someone not among them (a deleted
    user) is not emailed."""
    recipient_ids = _recipient_ids(event, notify)
    users = [people[pk] for pk in sorted(recipient_ids) if pk in people and people[pk].is_active]
    users = [user for user in users if user.email]
    requeue_at = timezone.now() + REQUEUE_AFTER
    deliveries = EmailDelivery.objects.bulk_create(
        [
            EmailDelivery(event=event, user=user, email=user.email, next_attempt_at=requeue_at)
            for user in users
            if _wants(user, event)
        ]
    )
    return [delivery.pk for delivery in deliveries]


def _recipient_ids(event: TaskEvent, notify: AbstractSet[int]) -> set[int]:
    if event.type == EventType.MEMBER_ADDED:
        return set(notify)
    if event.type not in TASK_EVENT_TYPES and event.type != EventType.COMMENT_CREATED:
        return set()
    task = _full_snapshot(event)
    if task is None:
        return set()
    ids = {task["created_by"]["id"], task.get("assignee")} - {None}
    if event.type == EventType.COMMENT_CREATED:
        ids = (ids | notify) - {event.actor_id}
    return ids


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, failed, pending (retry later), busy, done (nothing to do)
    retry_in: float | None = None


def deliver_email(*, delivery_id: int) -> SendOutcome:
    """Send one delivery if it is still pending. The row stays locked while the message
    goes out and is marked sent in the same transaction: a second worker skips it, and
    a crash rolls the claim back so that the delivery is sent again later (unless the
    message had gone out: see _remember_sent). A failed
    attempt leaves it pending with its next attempt due after a backoff, when
    queue_due_emails queues it again. The SMTP connection is kept for the next send."""
    with transaction.atomic():
        return _deliver_locked(delivery_id)


class _KeptConnection:
    """This process's SMTP connection, reused from one send to the next (an SMTP session
    per email costs a handshake and often TLS); re-made when the email settings change
    or it has been idle too long."""

    def __init__(self):
        self._connection = None
        self._key = None
        self._used_at = 0.0

    def get(self):
        key = (settings.EMAIL_BACKEND, getattr(settings, "EMAIL_HOST", None),
               getattr(settings, "EMAIL_PORT", None))  # fmt: skip
        stale = time.monotonic() - self._used_at > SMTP_IDLE_SECONDS
        if self._connection is not None and (key != self._key or stale):
            self.discard()
        if self._connection is None:
            self._connection, self._key = get_connection(), key
        self._used_at = time.monotonic()
        return self._connection

    def discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except (smtplib.SMTPException, OSError) as exc:
                logger.warning("closing the SMTP connection failed: %s", exc)


kept_connection = _KeptConnection()


def _send(message) -> None:
    """Send over the kept connection; one that the server dropped meanwhile is opened
    afresh once (the server refused nothing: it was gone before the message began)."""
    connection = kept_connection.get()
    if connection.open():  # True: opened now, so it is fresh
        connection.send_messages([message])
        return
    try:
        connection.send_messages([message])
    except smtplib.SMTPServerDisconnected:
        kept_connection.discard()
        connection = kept_connection.get()
        connection.open()
        connection.send_messages([message])


def _deliver_locked(delivery_id: int) -> SendOutcome:
    delivery = (
        EmailDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("event", "user")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return SendOutcome("busy")  # gone, or being sent right now by another worker
    if delivery.status != DeliveryStatus.PENDING:
        return SendOutcome("done")
    if _sent_earlier(delivery.pk):
        # An earlier attempt handed it to the mail server, but its transaction never
        # committed: PostgreSQL went away (or the worker died) between the two.
        logger.warning(
            "email %s to %s was sent by an earlier attempt that could not record it; "
            "recorded now, not sent again",
            delivery.pk,
            delivery.email,
            extra={"delivery_id": delivery.pk, "event_id": delivery.event_id},
        )
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = timezone.now()
        delivery.save(update_fields=["status", "sent_at"])
        return SendOutcome("sent")
    delivery.attempts += 1
    try:
        _send(build_email(delivery, _full_snapshot(delivery.event)))
    except (smtplib.SMTPException, OSError, LookupError) as exc:
        kept_connection.discard()
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if delivery.attempts >= MAX_ATTEMPTS or isinstance(exc, LookupError):
            delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["attempts", "last_error", "status"])
            logger.error(
                "email %s to %s failed for good after %s attempts: %s",
                delivery.pk,
                delivery.email,
                delivery.attempts,
                delivery.last_error,
                extra={"delivery_id": delivery.pk, "event_id": delivery.event_id},
            )
            return SendOutcome("failed")
        retry_in = retry_delay(delivery.attempts)
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        delivery.save(update_fields=["attempts", "last_error", "next_attempt_at"])
        return SendOutcome("pending", retry_in=retry_in)
    _remember_sent(delivery.pk)
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.save(update_fields=["attempts", "status", "sent_at"])
    return SendOutcome("sent")


# The mail server accepted a message, and the row that says so is not committed yet: if
# PostgreSQL goes away (or the worker dies) before the commit, the claim rolls back and
# the delivery would be sent again. So the send is also noted in the cache (Redis, which
# does not go down with PostgreSQL) until long after any retry: the next attempt finds
# the note and records the delivery as sent instead. Only both failing at once, or the
# worker dying between the send and the note (microseconds), can still send twice.
SENT_NOTE_SECONDS = 2 * 24 * 60 * 60


def _sent_note_key(delivery_id: int) -> str:
    return f"email-delivery-sent:{delivery_id}"


def _remember_sent(delivery_id: int) -> None:
    try:
        cache.set(_sent_note_key(delivery_id), 1, SENT_NOTE_SECONDS)
    except (redis.RedisError, OSError) as exc:  # PostgreSQL will most likely record it
        logger.warning("could not note email %s as sent in the cache: %s", delivery_id, exc)


def _sent_earlier(delivery_id: int) -> bool:
    try:
        return cache.get(_sent_note_key(delivery_id)) is not None
    except (redis.RedisError, OSError) as exc:  # no note to be had: send
        logger.warning("could not look for email %s's sent note: %s", delivery_id, exc)
        return False


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter: up to 5 s, 10 s, 20 s, ... capped at 15 min."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def claim_due_deliveries(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due (an SMTP retry, or a send job that was
    lost), each pushed REQUEUE_AFTER into the future as it is claimed so that the next
    sweep does not queue it again while its job waits in the queue."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            EmailDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        EmailDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + REQUEUE_AFTER)
    return ids


def _wants(user: User, event: TaskEvent) -> bool:
    if user.email_notifications == EmailNotifications.NONE:
        return False
    if user.email_notifications == EmailNotifications.OTHERS:
        return event.actor_id != user.pk
    return True


def _full_snapshot(event: TaskEvent) -> dict | None:
    """The task as the event shows it; a deletion carries only the id, so its last full
    snapshot comes from the event before it."""
    if event.task_snapshot is None:
        return None
    if "title" in event.task_snapshot:
        return event.task_snapshot
    return (
        TaskEvent.objects.filter(task_id=event.task_id, pk__lt=event.pk)
        .exclude(type=EventType.DELETED)
        .order_by("-pk")
        .values_list("task_snapshot", flat=True)
        .first()
    )


def build_email(delivery: EmailDelivery, task: dict | None) -> EmailMultiAlternatives:
    """The email of `delivery` about its event, `task` being the task as the event shows
    it (None for a project's events). The bodies are templates under tasks/email/:
    event.* for a task's events, comment.* for a new comment, member_added.* for being
    added to a project. LookupError if the event is a task's and `task` is None (its
    snapshot was pruned from the event log)."""
    event = delivery.event
    if event.type == EventType.MEMBER_ADDED:
        subject, template, context = _member_added_email(event)
    elif task is None:
        raise LookupError("the task's snapshot was pruned from the event log")
    elif event.type == EventType.COMMENT_CREATED:
        subject, template, context = _comment_email(event, task)
    else:
        subject, template, context = _task_email(event, task)
    context["username"] = delivery.user.username
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # no line breaks in a header
        body=_render(f"tasks/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        # The same id on every attempt, so a mail system can tell a resend from news.
        headers={"Message-ID": f"<taskhub-delivery-{delivery.pk}@{_mail_domain()}>"},
    )
    message.attach_alternative(_render(f"tasks/email/{template}.html", context), "text/html")
    return message


def _task_email(event: TaskEvent, task: dict) -> tuple[str, str, dict]:
    title = task["title"]
    verb = _VERBS.get(event.type, "has changed")
    context = {
        "title": title,
        "verb": verb,
        # The system's own events (reminders, purges) are by nobody.
        "actor": event.actor_snapshot.get("username", "Taskhub") if event.actor_snapshot else None,
        "status": _STATUS_LABELS.get(task["status"], task["status"]),
        "due": task["due_at"] or "no due date",
        "link": _link(task=task["id"]),
        "changes": [
            (field, str(old), str(new)) for field, (old, new) in (event.changes or {}).items()
        ],
    }
    return f"Task “{title}” {verb}", "event", context


def _comment_email(event: TaskEvent, task: dict) -> tuple[str, str, dict]:
    actor = _actor_name(event)
    body = event.comment_snapshot["body"] if event.comment_snapshot else ""
    context = {
        "actor": actor,
        "title": task["title"],
        "body": body,
        "lines": body.splitlines(),
        "link": _link(task=task["id"]),
    }
    return f"{actor} commented on task “{task['title']}”", "comment", context


_ROLE_PHRASES = {"owner": "an owner", "member": "a member", "viewer": "a viewer"}


def _member_added_email(event: TaskEvent) -> tuple[str, str, dict]:
    actor = _actor_name(event)
    project = event.project_snapshot or {}
    role = (event.member_snapshot or {}).get("role", "")
    context = {
        "actor": actor,
        "name": project.get("name", ""),
        "role": _ROLE_PHRASES.get(role, role),
        "link": _link(project=str(project.get("id", event.project_id))),
    }
    return f"{actor} added you to project “{context['name']}”", "member_added", context


def _actor_name(event: TaskEvent) -> str:
    return (event.actor_snapshot or {}).get("username") or "Someone"


def _link(**query: str) -> str:
    """The browser page at SITE_URL, opened on one task or project (`task=` or
    `project=` its id)."""
    [(name, value)] = query.items()
    return f"{settings.SITE_URL.rstrip('/')}/?{name}={value}"


def _render(template_name: str, context: dict) -> str:
    # The line break that ends the template file is not part of the body.
    return render_to_string(template_name, context).removesuffix("\n")


def _mail_domain() -> str:
    address = settings.DEFAULT_FROM_EMAIL.rsplit("<", 1)[-1].rstrip(">")
    return address.rsplit("@", 1)[-1] or "taskhub.local"

"""Email notifications of task events: who gets one, and sending each exactly once."""

import logging
import random
import smtplib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from apps.tasks.models import DeliveryStatus, EmailDelivery, EventType, TaskEvent
from apps.users.models import EmailNotifications, User

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 15 * 60

_VERBS = {
    EventType.CREATED: "has been created",
    EventType.UPDATED: "has been updated",
    EventType.ARCHIVED: "has been archived",
    EventType.RESTORED: "has been restored",
    EventType.DELETED: "has been deleted",
    EventType.DUE_SOON: "is due soon",
}
_STATUS_LABELS = {"todo": "To do", "in_progress": "In progress", "done": "Done"}


def plan_event_emails(event: TaskEvent) -> None:
    """Decide who is emailed about `event` (its task's creator and assignee, as each
    one's `email_notifications` allows) and record one delivery per person. Running it
    again records nothing new."""
    task = _full_snapshot(event)
    if task is None:
        return
    recipient_ids = {task["created_by"]["id"], task.get("assignee")} - {None}
    users = User.objects.filter(pk__in=recipient_ids, is_active=True).exclude(email="")
    EmailDelivery.objects.bulk_create(
        [
            EmailDelivery(event=event, user=user, email=user.email)
            for user in users
            if _wants(user, event)
        ],
        ignore_conflicts=True,
    )


def pending_deliveries(event: TaskEvent) -> list[int]:
    """The ids of the event's deliveries still to send."""
    return list(
        EmailDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING).values_list(
            "pk", flat=True
        )
    )


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, failed, pending (retry later), busy, done (nothing to do)
    retry_in: float | None = None


def deliver_email(*, delivery_id: int) -> SendOutcome:
    """Send one delivery if it is still pending. The row stays locked while the message
    goes out and is marked sent in the same transaction: a second worker skips it, and
    a crash rolls the claim back so that the job, delivered again, sends it then. The
    SMTP session is closed only after the commit, so a crash while saying goodbye to
    the server cannot undo the record of a message it already accepted."""
    connection = get_connection()
    try:
        with transaction.atomic():
            return _deliver_locked(delivery_id, connection)
    finally:
        try:
            connection.close()
        except (smtplib.SMTPException, OSError) as exc:
            logger.warning("closing the SMTP connection failed: %s", exc)


def _deliver_locked(delivery_id: int, connection) -> SendOutcome:
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
    task = _full_snapshot(delivery.event)
    delivery.attempts += 1
    try:
        if task is None:
            raise LookupError("the task's snapshot was pruned from the event log")
        connection.open()
        connection.send_messages([_message(delivery, task)])
    except (smtplib.SMTPException, OSError, LookupError) as exc:
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
        delivery.save(update_fields=["attempts", "last_error"])
        return SendOutcome("pending", retry_in=retry_delay(delivery.attempts))
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.save(update_fields=["attempts", "status", "sent_at"])
    return SendOutcome("sent")


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter: up to 5 s, 10 s, 20 s, ... capped at 15 min."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def stale_pending_deliveries(*, older_than: timedelta, limit: int = 500) -> list[int]:
    """Pending deliveries that no job seems to be carrying any more (a lost message, a
    job that failed outside the send): the safety net re-queues these."""
    cutoff = timezone.now() - older_than
    return list(
        EmailDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def _wants(user: User, event: TaskEvent) -> bool:
    if user.email_notifications == EmailNotifications.NONE:
        return False
    if user.email_notifications == EmailNotifications.OTHERS:
        return event.actor_id != user.pk
    return True


def _full_snapshot(event: TaskEvent) -> dict | None:
    """The task as the event shows it; a deletion carries only the id, so its last full
    snapshot comes from the event before it."""
    if "title" in event.task_snapshot:
        return event.task_snapshot
    return (
        TaskEvent.objects.filter(task_id=event.task_id, pk__lt=event.pk)
        .exclude(type=EventType.DELETED)
        .order_by("-pk")
        .values_list("task_snapshot", flat=True)
        .first()
    )


def _message(delivery: EmailDelivery, task: dict) -> EmailMultiAlternatives:
    event, user = delivery.event, delivery.user
    title = task["title"]
    verb = _VERBS.get(event.type, "has changed")
    actor = (event.actor_snapshot or {}).get("username", "Taskhub")
    status = _STATUS_LABELS.get(task["status"], task["status"])
    due = task["due_at"] or "no due date"
    link = f"{settings.SITE_URL.rstrip('/')}/?task={task['id']}"
    changes = list((event.changes or {}).items())
    change_lines = "".join(f"  {field}: {old} → {new}\n" for field, (old, new) in changes)
    text = (
        f"Hello {user.username},\n\n"
        f"Task “{title}” {verb}"
        + (f" by {actor}" if event.actor_snapshot else "")
        + f".\n\nStatus: {status}\nDue: {due}\n"
        + (f"Changes:\n{change_lines}" if changes else "")
        + f"\nOpen it: {link}\n"
    )
    change_rows = "".join(
        f"<li><b>{escape(field)}</b>: {escape(str(old))} → {escape(str(new))}</li>"
        for field, (old, new) in changes
    )
    html = (
        f"<p>Hello {escape(user.username)},</p>"
        f"<p>Task <b>{escape(title)}</b> {verb}"
        + (f" by {escape(actor)}" if event.actor_snapshot else "")
        + f".</p><p>Status: {escape(status)}<br>Due: {escape(due)}</p>"
        + (f"<ul>{change_rows}</ul>" if change_rows else "")
        + f'<p><a href="{escape(link)}">Open the task</a></p>'
    )
    message = EmailMultiAlternatives(
        subject=f"Task “{' '.join(title.split())}” {verb}",  # no line breaks in a header
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        # The same id on every attempt, so a mail system can tell a resend from news.
        headers={"Message-ID": f"<taskhub-delivery-{delivery.pk}@{_mail_domain()}>"},
    )
    message.attach_alternative(html, "text/html")
    return message


def _mail_domain() -> str:
    address = settings.DEFAULT_FROM_EMAIL.rsplit("<", 1)[-1].rstrip(">")
    return address.rsplit("@", 1)[-1] or "taskhub.local"

"""Celery jobs: deliver each committed event to the live sockets and by email, and the
periodic upkeep that Celery beat runs (schedule: `CELERY_BEAT_SCHEDULE` in settings).

Jobs take primary keys, re-read the rows, tolerate them being gone, and may run twice
(acks_late): every one of them is idempotent.
"""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.tasks import notifications, services
from apps.tasks.models import TaskEvent
from apps.tasks.representation import event_representation
from realtime.groups import user_stream_group
from realtime.publisher import send_to_groups

logger = logging.getLogger(__name__)

# A periodic job stops after this long and leaves the rest to its next run, so that it
# stays well inside the broker's visibility timeout.
JOB_TIME_BUDGET_SECONDS = 60
STALE_DELIVERY_AGE = timedelta(minutes=20)


@shared_task(name="tasks.publish_event", ignore_result=True)
def publish_event(event_id: int, committed_at: float | None = None) -> None:
    """Send the event to each recipient's stream group, then queue its emails."""
    event = TaskEvent.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("event %s is gone; nothing to publish", event_id)
        return
    entries = list(event.entries.values_list("user_id", "seq"))
    send_to_groups(
        [
            (
                user_stream_group(user_id),
                {"type": "task.event", "event": event_representation(event, seq=seq)},
            )
            for user_id, seq in entries
        ]
    )
    delay_ms = round((time.time() - committed_at) * 1000, 1) if committed_at else None
    recipients = sorted(user_id for user_id, _ in entries)
    logger.info(
        "published %s task=%s recipients=%s %sms after commit",
        event.type,
        event.task_id,
        ",".join(map(str, recipients)),
        delay_ms,
        extra={
            "event_id": event.pk,
            "event_type": event.type,
            "task_id": str(event.task_id),
            "recipients": recipients,
            "published_ms_after_commit": delay_ms,
        },
    )
    notify_event.delay(event.pk)


@shared_task(name="tasks.notify_event", ignore_result=True)
def notify_event(event_id: int) -> None:
    """Queue one send job per email still pending for the event (decided with the
    change; deciding again here is a no-op kept for events from before that)."""
    event = TaskEvent.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("event %s is gone; no email", event_id)
        return
    notifications.plan_event_emails(event)
    delivery_ids = notifications.pending_deliveries(event)
    for delivery_id in delivery_ids:
        send_email_delivery.delay(delivery_id)
    logger.info(
        "queued %s email(s) for %s task=%s",
        len(delivery_ids),
        event.type,
        event.task_id,
        extra={"event_id": event.pk, "event_type": event.type, "deliveries": delivery_ids},
    )


@shared_task(bind=True, name="tasks.send_email_delivery", ignore_result=True, max_retries=None)
def send_email_delivery(self, delivery_id: int) -> None:
    """Send one email, once; an SMTP failure comes back later with backoff and jitter
    until the delivery's attempts run out (then it is marked failed and logged)."""
    outcome = notifications.deliver_email(delivery_id=delivery_id)
    logger.info(
        "email %s: %s", delivery_id, outcome.status,
        extra={"delivery_id": delivery_id, "outcome": outcome.status},
    )  # fmt: skip
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="tasks.send_due_reminders", ignore_result=True)
def send_due_reminders() -> int:
    """Every minute: one `task.due_soon` event (and its emails) per open task due within
    REMINDER_LEAD_MINUTES that was not reminded for its current due date."""
    lead = timedelta(minutes=settings.REMINDER_LEAD_MINUTES)
    return _in_batches(
        "send_due_reminders",
        "reminded",
        lambda size: services.remind_due_tasks(now=timezone.now(), lead=lead, batch_size=size),
        batch_size=100,
    )


@shared_task(name="tasks.purge_archived_tasks", ignore_result=True)
def purge_archived_tasks() -> int:
    """Daily: delete tasks archived more than ARCHIVE_RETENTION_DAYS ago."""
    cutoff = timezone.now() - timedelta(days=settings.ARCHIVE_RETENTION_DAYS)
    return _in_batches(
        "purge_archived_tasks",
        "deleted",
        lambda size: services.purge_archived_tasks(archived_before=cutoff, batch_size=size),
        batch_size=100,
    )


@shared_task(name="tasks.prune_event_log", ignore_result=True)
def prune_event_log() -> int:
    """Hourly: remove events older than EVENT_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    return _in_batches(
        "prune_event_log",
        "removed",
        lambda size: services.prune_event_log(created_before=cutoff, batch_size=size),
        batch_size=1000,
    )


@shared_task(name="tasks.prune_idempotency_records", ignore_result=True)
def prune_idempotency_records() -> int:
    """Hourly: remove Idempotency-Key records past their 24 hours."""
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    return _in_batches(
        "prune_idempotency_records",
        "removed",
        lambda size: services.prune_idempotency_records(created_before=cutoff, batch_size=size),
        batch_size=1000,
    )


@shared_task(name="tasks.requeue_stale_emails", ignore_result=True)
def requeue_stale_emails() -> int:
    """Every ten minutes: queue again the emails still pending long after they were
    decided (their job was lost); sending stays once-only, so this is always safe."""
    started = time.monotonic()
    delivery_ids = notifications.stale_pending_deliveries(older_than=STALE_DELIVERY_AGE)
    for delivery_id in delivery_ids:
        send_email_delivery.delay(delivery_id)
    _log_job("requeue_stale_emails", "requeued", len(delivery_ids), started)
    return len(delivery_ids)


def _in_batches(job: str, verb: str, run_batch, *, batch_size: int) -> int:
    """Run `run_batch(batch_size)` until a batch comes back short or the time budget is
    spent; log one line with the total and the time taken."""
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < JOB_TIME_BUDGET_SECONDS:
        done = run_batch(batch_size)
        total += done
        if done < batch_size:
            break
    _log_job(job, verb, total, started)
    return total


def _log_job(job: str, verb: str, count: int, started: float) -> None:
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    logger.info(
        "%s: %s %s in %sms", job, verb, count, elapsed_ms,
        extra={"job": job, "count": count, "elapsed_ms": elapsed_ms},
    )  # fmt: skip

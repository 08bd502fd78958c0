"""Celery jobs: send the emails that each change decided (`apps.tasks.notifications`),
and run the periodic upkeep (`apps.tasks.upkeep`) on Celery beat's schedule
(`CELERY_BEAT_SCHEDULE` in settings), in batches within a time budget. Live events do not
go through Celery: the relay (realtime/relay.py) publishes them.

Jobs take primary keys, re-read the rows, tolerate them being gone, and may run twice
(acks_late): every one of them is idempotent.
"""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.tasks import notifications, upkeep

logger = logging.getLogger(__name__)

# A periodic job stops after this long and leaves the rest to its next run, so that it
# stays well inside its time limit and the broker's visibility timeout (settings).
JOB_TIME_BUDGET_SECONDS = 20
# Rows per batch, each batch one transaction: reminders and purges write events and
# stream entries for every row, prunes only delete.
REMINDER_BATCH_SIZE = 100
PURGE_BATCH_SIZE = 100
PRUNE_BATCH_SIZE = 1000


@shared_task(name="tasks.send_email_deliveries", ignore_result=True)
def send_email_deliveries(delivery_ids: list[int]) -> None:
    """Send the emails of one change (at most one per person it concerns), each once,
    over one kept SMTP connection. After an SMTP failure a delivery stays pending with
    its next attempt due after a backoff with jitter, and queue_due_emails queues it
    then, until its attempts run out (then it is marked failed and logged). No job waits
    in a worker for its retry, so a dead worker holds no retries; one that runs out of
    its time budget leaves the rest pending, and queue_due_emails queues them later."""
    started = time.monotonic()
    for delivery_id in delivery_ids:
        if time.monotonic() - started > JOB_TIME_BUDGET_SECONDS:
            logger.warning("emails %s left for a later job: out of time", delivery_ids)
            return
        outcome = notifications.deliver_email(delivery_id=delivery_id)
        retry = f", next attempt in {outcome.retry_in:.0f}s" if outcome.retry_in is not None else ""
        logger.info(
            "email %s: %s%s", delivery_id, outcome.status, retry,
            extra={"delivery_id": delivery_id, "outcome": outcome.status},
        )  # fmt: skip


@shared_task(name="tasks.send_due_reminders", ignore_result=True)
def send_due_reminders() -> int:
    """Every minute: one `task.due_soon` event (and its emails) per open task due within
    REMINDER_LEAD_MINUTES that was not reminded for its current due date."""
    lead = timedelta(minutes=settings.REMINDER_LEAD_MINUTES)
    return _in_batches(
        "send_due_reminders",
        "reminded",
        lambda size: upkeep.remind_due_tasks(now=timezone.now(), lead=lead, batch_size=size),
        batch_size=REMINDER_BATCH_SIZE,
    )


@shared_task(name="tasks.purge_archived_tasks", ignore_result=True)
def purge_archived_tasks() -> int:
    """Daily: delete tasks archived more than ARCHIVE_RETENTION_DAYS ago, then projects
    archived that long ago with the tasks they still hold, within one time budget.
    Returns how many rows it deleted (tasks, then projects and their tasks)."""
    started = time.monotonic()
    cutoff = timezone.now() - timedelta(days=settings.ARCHIVE_RETENTION_DAYS)
    tasks = _in_batches(
        "purge_archived_tasks",
        "deleted",
        lambda size: upkeep.purge_archived_tasks(archived_before=cutoff, batch_size=size),
        batch_size=PURGE_BATCH_SIZE,
    )
    projects = _in_batches(
        "purge_archived_projects",
        "deleted (projects and their tasks)",
        lambda size: upkeep.purge_archived_projects(archived_before=cutoff, batch_size=size),
        batch_size=PURGE_BATCH_SIZE,
        budget=JOB_TIME_BUDGET_SECONDS - (time.monotonic() - started),
    )
    return tasks + projects


@shared_task(name="tasks.prune_event_log", ignore_result=True)
def prune_event_log() -> int:
    """Hourly: remove events older than EVENT_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    return _in_batches(
        "prune_event_log",
        "removed",
        lambda size: upkeep.prune_event_log(created_before=cutoff, batch_size=size),
        batch_size=PRUNE_BATCH_SIZE,
    )


@shared_task(name="tasks.prune_idempotency_records", ignore_result=True)
def prune_idempotency_records() -> int:
    """Hourly: remove Idempotency-Key records past their 24 hours."""
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    return _in_batches(
        "prune_idempotency_records",
        "removed",
        lambda size: upkeep.prune_idempotency_records(created_before=cutoff, batch_size=size),
        batch_size=PRUNE_BATCH_SIZE,
    )


@shared_task(name="tasks.queue_due_emails", ignore_result=True)
def queue_due_emails() -> int:
    """Every few seconds: queue the emails whose next attempt is due, that is SMTP
    retries, and sends whose job was lost (the broker was away at the commit, or a worker
    died holding it); sending stays once-only, so queueing twice is always safe."""
    started = time.monotonic()
    delivery_ids = notifications.claim_due_deliveries()
    for delivery_id in delivery_ids:
        # One job each: these are retries and lost sends, which may be slow to send.
        send_email_deliveries.delay([delivery_id])
    if delivery_ids:
        _log_job("queue_due_emails", "queued", len(delivery_ids), started)
    return len(delivery_ids)


def _in_batches(
    job: str, verb: str, run_batch, *, batch_size: int, budget: float = JOB_TIME_BUDGET_SECONDS
) -> int:
    """Run `run_batch(batch_size)` until a batch comes back short or the time budget
    (`budget` seconds, which a job doing two things shares between them) is spent; log
    one line with the total and the time taken."""
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < budget:
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

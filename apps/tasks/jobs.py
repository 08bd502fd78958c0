"""Celery jobs: deliver each committed event to the live sockets and by email.

Jobs take primary keys, re-read the rows, tolerate them being gone, and may run twice.
"""

import logging
import time

from celery import shared_task

from apps.tasks.models import TaskEvent
from apps.tasks.notifications import send_event_notifications
from apps.tasks.representation import event_representation
from realtime.groups import user_stream_group
from realtime.publisher import send_to_groups

logger = logging.getLogger(__name__)


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
    """Email the event to the task's creator and assignee, as their preferences allow."""
    event = TaskEvent.objects.select_related("actor").filter(pk=event_id).first()
    if event is None:
        logger.info("event %s is gone; no email", event_id)
        return
    sent_to = send_event_notifications(event)
    logger.info(
        "emailed %s task=%s to=%s",
        event.type,
        event.task_id,
        ",".join(sent_to) or "nobody",
        extra={"event_id": event.pk, "event_type": event.type, "emailed": sent_to},
    )

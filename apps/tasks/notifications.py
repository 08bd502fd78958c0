"""Email notifications of task events."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.html import escape

from apps.tasks.models import EventType, TaskEvent
from apps.users.models import EmailNotifications, User

_VERBS = {
    EventType.CREATED: "has been created",
    EventType.UPDATED: "has been updated",
    EventType.ARCHIVED: "has been archived",
    EventType.RESTORED: "has been restored",
    EventType.DELETED: "has been deleted",
    EventType.DUE_SOON: "is due soon",
}
_STATUS_LABELS = {"todo": "To do", "in_progress": "In progress", "done": "Done"}


def send_event_notifications(event: TaskEvent) -> list[str]:
    """Email the event to the task's creator and its assignee (one message each), as each
    one's `email_notifications` preference allows. Returns the addresses mailed."""
    task = _full_snapshot(event)
    if task is None:
        return []
    recipient_ids = {task["created_by"]["id"], task.get("assignee")} - {None}
    recipients = [
        user
        for user in User.objects.filter(pk__in=recipient_ids, is_active=True).exclude(email="")
        if _wants(user, event)
    ]
    messages = [_message(event, task, user) for user in recipients]
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
    return [user.email for user in recipients]


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
    earlier = (
        TaskEvent.objects.filter(task_id=event.task_id, pk__lt=event.pk)
        .exclude(type=EventType.DELETED)
        .order_by("-pk")
        .values_list("task_snapshot", flat=True)
        .first()
    )
    return earlier


def _message(event: TaskEvent, task: dict, user: User) -> EmailMultiAlternatives:
    title = task["title"]
    verb = _VERBS.get(event.type, "has changed")
    actor = (event.actor_snapshot or {}).get("username", "someone")
    status = _STATUS_LABELS.get(task["status"], task["status"])
    due = task["due_at"] or "no due date"
    link = f"{settings.SITE_URL.rstrip('/')}/?task={task['id']}"
    changes = list((event.changes or {}).items())
    change_lines = "".join(f"  {field}: {old} → {new}\n" for field, (old, new) in changes)
    text = (
        f"Hello {user.username},\n\n"
        f"Task “{title}” {verb} by {actor}.\n\n"
        f"Status: {status}\nDue: {due}\n"
        + (f"Changes:\n{change_lines}" if changes else "")
        + f"\nOpen it: {link}\n"
    )
    change_rows = "".join(
        f"<li><b>{escape(field)}</b>: {escape(str(old))} → {escape(str(new))}</li>"
        for field, (old, new) in changes
    )
    html = (
        f"<p>Hello {escape(user.username)},</p>"
        f"<p>Task <b>{escape(title)}</b> {verb} by {escape(actor)}.</p>"
        f"<p>Status: {escape(status)}<br>Due: {escape(due)}</p>"
        + (f"<ul>{change_rows}</ul>" if change_rows else "")
        + f'<p><a href="{escape(link)}">Open the task</a></p>'
    )
    message = EmailMultiAlternatives(
        subject=f"Task “{' '.join(title.split())}” {verb}",  # no line breaks in a header
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(html, "text/html")
    return message

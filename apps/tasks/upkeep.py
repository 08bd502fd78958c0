"""The periodic upkeep: due-soon reminders, the purge of long-archived tasks and
projects, and the pruning of the event log and of Idempotency-Key records.

Each function does one batch in one transaction and returns how many rows it handled;
the Celery jobs (`apps.tasks.jobs`) run them in batches on beat's schedule. Reminders and
purges are changes to tasks, so they record their events as the services do.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from apps.tasks.events import record_event
from apps.tasks.models import EventType, IdempotencyRecord, Project, Status, Task, TaskEvent


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
            record_event(EventType.DUE_SOON, task=task, actor=None)
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
            record_event(EventType.DELETED, task=task, actor=None, snapshot={"id": str(task.pk)})
            task.delete()
    return len(tasks)


def purge_archived_projects(*, archived_before: datetime, batch_size: int = 100) -> int:
    """Delete projects archived before `archived_before` with the tasks they still hold,
    in one batch of at most `batch_size` tasks: each task with its `task.deleted` event,
    then each project left without tasks with its `project.deleted`. Returns how many
    rows (tasks and projects) it deleted; a project with more tasks than the batch holds
    is finished by the next batches. Projects and tasks locked by another run (or by a
    change) are left for later."""
    deleted = 0
    with transaction.atomic():
        projects = list(
            Project.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("created_by")
            .filter(archived_at__lt=archived_before)
            .order_by("archived_at", "id")[:batch_size]
        )
        for project in projects:
            if deleted >= batch_size:
                break
            tasks = list(
                Task.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("created_by")
                .filter(project=project)
                .order_by("id")[: batch_size - deleted]
            )
            for task in tasks:
                snapshot = {"id": str(task.pk)}
                record_event(EventType.DELETED, task=task, actor=None, snapshot=snapshot)
                task.delete()
            deleted += len(tasks)
            if Task.objects.filter(project=project).exists():
                continue
            # Recorded while its members are still there to receive it.
            record_event(EventType.PROJECT_DELETED, actor=None, project=project)
            project.delete()
            deleted += 1
    return deleted


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

"""The periodic jobs against PostgreSQL with real rows; time is injected, never slept."""

import threading
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db import connections
from django.utils import timezone

from apps.tasks import jobs, services, upkeep
from apps.tasks.models import (
    EventType,
    IdempotencyRecord,
    Status,
    StreamEntry,
    Task,
    TaskEvent,
)
from apps.tasks.selectors import stream_is_pruned_after

pytestmark = pytest.mark.django_db(transaction=True)

LEAD = timedelta(minutes=60)


def make_task(user, **fields) -> Task:
    body = services.task_create(actor=user, data={"title": "Task", **fields}).body
    return Task.objects.get(pk=body["id"])


def due_soon_events(task) -> list[TaskEvent]:
    return list(TaskEvent.objects.filter(task_id=task.pk, type=EventType.DUE_SOON))


def test_task_due_within_the_lead_time_is_reminded_once(ana, bob):
    now = timezone.now()
    task = make_task(ana, due_at=now + timedelta(minutes=10), assignee_id=bob.pk)
    assert upkeep.remind_due_tasks(now=now, lead=LEAD) == 1
    assert upkeep.remind_due_tasks(now=now + timedelta(minutes=1), lead=LEAD) == 0
    [event] = due_soon_events(task)
    assert event.actor is None
    assert event.task_snapshot["id"] == str(task.pk)
    recipients = set(StreamEntry.objects.filter(event=event).values_list("user_id", flat=True))
    assert recipients == {ana.pk, bob.pk}


def test_reminder_does_not_change_the_task_version(ana):
    now = timezone.now()
    task = make_task(ana, due_at=now + timedelta(minutes=10))
    upkeep.remind_due_tasks(now=now, lead=LEAD)
    task.refresh_from_db()
    assert task.version == 1


def test_task_due_later_than_the_lead_time_is_not_reminded_yet(ana):
    now = timezone.now()
    task = make_task(ana, due_at=now + LEAD + timedelta(minutes=1))
    assert upkeep.remind_due_tasks(now=now, lead=LEAD) == 0
    assert upkeep.remind_due_tasks(now=now + timedelta(minutes=2), lead=LEAD) == 1
    assert len(due_soon_events(task)) == 1


def test_task_due_in_the_past_when_created_is_not_reminded(ana):
    now = timezone.now()
    task = make_task(ana, due_at=now - timedelta(minutes=5))
    assert upkeep.remind_due_tasks(now=now, lead=LEAD) == 0
    assert due_soon_events(task) == []


def test_done_and_archived_tasks_are_not_reminded(ana):
    now = timezone.now()
    done = make_task(ana, due_at=now + timedelta(minutes=10), status=Status.DONE)
    archived = make_task(ana, due_at=now + timedelta(minutes=10))
    services.task_archive(task_id=archived.pk, actor=ana)
    assert upkeep.remind_due_tasks(now=now, lead=LEAD) == 0
    assert due_soon_events(done) == due_soon_events(archived) == []


def test_changing_the_due_date_rearms_the_reminder(ana):
    now = timezone.now()
    task = make_task(ana, due_at=now + timedelta(minutes=10))
    upkeep.remind_due_tasks(now=now, lead=LEAD)
    services.task_update(task_id=task.pk, actor=ana, data={"due_at": now + timedelta(minutes=30)})
    assert upkeep.remind_due_tasks(now=now, lead=LEAD) == 1
    assert len(due_soon_events(task)) == 2


def test_two_reminder_runs_at_once_remind_each_task_once(ana):
    now = timezone.now()
    tasks = [make_task(ana, due_at=now + timedelta(minutes=5 + i)) for i in range(30)]
    barrier = threading.Barrier(2)
    counts = []

    def run():
        barrier.wait()
        try:
            counts.append(upkeep.remind_due_tasks(now=now, lead=LEAD, batch_size=100))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 30
    for task in tasks:
        assert len(due_soon_events(task)) == 1


def test_reminder_job_works_through_all_batches(ana, settings, monkeypatch):
    settings.REMINDER_LEAD_MINUTES = 60
    # Batches of 2: reminding all 5 tasks takes three batches (2, 2, then a short 1).
    monkeypatch.setattr(jobs, "REMINDER_BATCH_SIZE", 2)
    now = timezone.now()
    tasks = [make_task(ana, due_at=now + timedelta(minutes=5 + i)) for i in range(5)]
    assert jobs.send_due_reminders() == 5
    for task in tasks:
        assert len(due_soon_events(task)) == 1


def test_purge_deletes_only_tasks_archived_before_the_retention(ana, bob):
    old = make_task(ana, assignee_id=bob.pk)
    recent = make_task(ana)
    live = make_task(ana)
    for task in (old, recent):
        services.task_archive(task_id=task.pk, actor=ana)
    Task.objects.filter(pk=old.pk).update(archived_at=timezone.now() - timedelta(days=31))
    Task.objects.filter(pk=recent.pk).update(archived_at=timezone.now() - timedelta(days=29))
    assert jobs.purge_archived_tasks() == 1
    assert set(Task.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
    [deleted] = TaskEvent.objects.filter(task_id=old.pk, type=EventType.DELETED)
    assert deleted.task_snapshot == {"id": str(old.pk)}
    assert deleted.actor is None
    recipients = set(StreamEntry.objects.filter(event=deleted).values_list("user_id", flat=True))
    assert recipients == {ana.pk, bob.pk}


def test_prune_removes_only_events_older_than_the_retention(ana):
    task = make_task(ana)
    services.task_update(task_id=task.pk, actor=ana, data={"title": "Renamed"})
    services.task_update(task_id=task.pk, actor=ana, data={"title": "Again"})
    first, second, third = TaskEvent.objects.order_by("id")
    TaskEvent.objects.filter(pk__in=[first.pk, second.pk]).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    assert jobs.prune_event_log() == 2
    assert list(TaskEvent.objects.values_list("pk", flat=True)) == [third.pk]
    assert list(StreamEntry.objects.filter(user=ana).values_list("seq", flat=True)) == [3]


def test_resume_from_before_the_pruned_events_needs_a_resync(ana):
    task = make_task(ana)
    services.task_update(task_id=task.pk, actor=ana, data={"title": "Renamed"})
    TaskEvent.objects.filter(type=EventType.CREATED).update(
        created_at=timezone.now() - timedelta(days=8)
    )
    jobs.prune_event_log()
    assert stream_is_pruned_after(user=ana, after=0)
    assert not stream_is_pruned_after(user=ana, after=1)


def test_idempotency_records_older_than_a_day_are_removed(ana):
    for key in ("old", "fresh"):
        services.task_create(actor=ana, data={"title": key}, idempotency_key=key, request_hash="h")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert jobs.prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


def test_beat_schedule_lists_each_job_at_its_time():
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["tasks.send_due_reminders"] == crontab(minute="*")
    assert schedule["tasks.prune_event_log"] == crontab(minute=5)
    assert schedule["tasks.prune_idempotency_records"] == crontab(minute=35)
    assert schedule["tasks.purge_archived_tasks"] == crontab(hour=3, minute=30)
    assert schedule["tasks.queue_due_emails"] == 5.0
    registered = set(jobs.send_due_reminders.app.tasks)
    assert set(schedule) <= registered


def test_each_job_is_queued_once_on_its_own_queue():
    """An email job lands on the `email` queue only and an upkeep job on `celery` only,
    once each: a copy on both would run every job twice."""
    from project.celery import app

    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        for queue in ("celery", "email"):
            broker.delete(queue)
        jobs.send_email_deliveries.delay([0])
        jobs.prune_idempotency_records.delay()
        assert (broker.llen("email"), broker.llen("celery")) == (1, 1)
        for queue in ("celery", "email"):
            broker.delete(queue)

"""The event pipeline at the service level, without HTTP: each action records its event
row, one stream entry per recipient at that recipient's next seq, the planned emails,
and the hand-offs that run only after the commit (apps.tasks.events)."""

import base64
import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.common.errors import (
    Archived,
    IdempotencyKeyReused,
    NotAllowed,
    NotFound,
    StaleVersion,
)
from apps.tasks import events, services, upkeep
from apps.tasks.models import (
    IDEMPOTENCY_KEY_CONSTRAINT,
    EmailDelivery,
    EventStream,
    EventType,
    IdempotencyRecord,
    StreamEntry,
    Task,
    TaskEvent,
)
from apps.users.models import EmailNotifications

pytestmark = pytest.mark.django_db


def entries_of(event: TaskEvent) -> dict[int, int]:
    """The event's stream entries as {user id: seq}."""
    return dict(StreamEntry.objects.filter(event=event).values_list("user_id", "seq"))


def events_of(task_id) -> list[TaskEvent]:
    return list(TaskEvent.objects.filter(task_id=task_id).order_by("pk"))


def test_creating_a_task_records_one_event_with_its_snapshot_and_actor(ana, bob):
    body = services.task_create(actor=ana, data={"title": "Plan", "assignee_id": bob.pk}).body
    [event] = events_of(body["id"])
    assert event.type == EventType.CREATED
    assert event.actor_id == ana.pk
    assert event.actor_snapshot == {"id": ana.pk, "username": "ana"}
    assert event.task_snapshot == body
    assert event.changes is None
    assert event.published_at is None  # the relay's outbox


def test_each_recipient_gets_one_stream_entry_at_consecutive_seqs(ana, bob, root, eve):
    body = services.task_create(actor=ana, data={"title": "Plan", "assignee_id": bob.pk}).body
    services.task_update(task_id=body["id"], actor=ana, data={"title": "Plan B"})
    created, updated = events_of(body["id"])
    # The creator, the assignee and the admin; eve is a stranger to the task.
    assert entries_of(created) == {ana.pk: 1, bob.pk: 1, root.pk: 1}
    assert entries_of(updated) == {ana.pk: 2, bob.pk: 2, root.pk: 2}
    streams = dict(EventStream.objects.values_list("user_id", "last_seq"))
    assert streams == {ana.pk: 2, bob.pk: 2, root.pk: 2}


def test_a_former_assignee_gets_the_event_that_takes_the_task_away(ana, bob):
    body = services.task_create(actor=ana, data={"title": "Plan", "assignee_id": bob.pk}).body
    services.task_update(task_id=body["id"], actor=ana, data={"assignee_id": None})
    _, unassigned = events_of(body["id"])
    assert unassigned.changes == {"assignee": [bob.pk, None]}
    assert entries_of(unassigned) == {ana.pk: 2, bob.pk: 2}


def test_a_change_plans_one_email_per_person_concerned_who_wants_one(ana, bob, make_user):
    quiet = make_user("quiet", email_notifications=EmailNotifications.NONE)
    body = services.task_create(actor=ana, data={"title": "Plan", "assignee_id": bob.pk}).body
    services.task_update(task_id=body["id"], actor=ana, data={"assignee_id": quiet.pk})
    created, reassigned = events_of(body["id"])
    planned = EmailDelivery.objects.order_by("event_id", "email").values_list(
        "event_id", "email", "status"
    )
    assert list(planned) == [
        (created.pk, "ana@example.com", "pending"),
        (created.pk, "bob@example.com", "pending"),
        (reassigned.pk, "ana@example.com", "pending"),
    ]


def test_the_email_hand_off_waits_for_the_commit(ana, bob, django_capture_on_commit_callbacks):
    """Nothing reaches the broker before the change commits; after it, one job carries
    all of the change's emails."""
    from project.celery import app

    with app.connection_for_write() as connection:
        broker = connection.default_channel.client
        broker.delete("email")
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            body = services.task_create(
                actor=ana, data={"title": "Plan", "assignee_id": bob.pk}
            ).body
            assert broker.llen("email") == 0
        assert len(callbacks) == 1
        events.wait_for_email_hand_offs()
        assert broker.llen("email") == 1
        message = json.loads(broker.lpop("email"))
    [event] = events_of(body["id"])
    assert message["headers"]["task"] == events.SEND_EMAILS_JOB
    delivery_ids = list(EmailDelivery.objects.filter(event=event).values_list("pk", flat=True))
    assert json.loads(base64.b64decode(message["body"]))[0][0] == sorted(delivery_ids)


def test_a_change_that_emails_nobody_hands_nothing_off(ana, django_capture_on_commit_callbacks):
    ana.email_notifications = EmailNotifications.NONE
    ana.save(update_fields=["email_notifications"])
    with django_capture_on_commit_callbacks() as callbacks:
        services.task_create(actor=ana, data={"title": "Quiet"})
    assert callbacks == []
    assert not EmailDelivery.objects.exists()


def test_in_the_embedded_mode_the_change_is_published_after_the_commit(
    ana, settings, django_capture_on_commit_callbacks
):
    from realtime.publisher import publish_in_process

    settings.LIVE_RELAY_IN_PROCESS = True
    ana.email_notifications = EmailNotifications.NONE
    ana.save(update_fields=["email_notifications"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.task_create(actor=ana, data={"title": "Live"})
    assert callbacks == [publish_in_process]


def test_a_change_that_changes_nothing_records_nothing(ana, django_capture_on_commit_callbacks):
    body = services.task_create(actor=ana, data={"title": "Same"}).body
    with django_capture_on_commit_callbacks() as callbacks:
        task = services.task_update(task_id=body["id"], actor=ana, data={"title": "Same"})
    assert task.version == 1
    assert callbacks == []
    assert len(events_of(body["id"])) == 1


def test_deleting_records_the_last_event_with_only_the_id(ana, bob):
    body = services.task_create(actor=ana, data={"title": "Gone", "assignee_id": bob.pk}).body
    services.task_delete(task_id=body["id"], actor=ana)
    deleted = events_of(body["id"])[-1]
    assert deleted.type == EventType.DELETED
    assert deleted.task_snapshot == {"id": body["id"]}
    assert entries_of(deleted) == {ana.pk: 2, bob.pk: 2}
    assert not Task.objects.filter(pk=body["id"]).exists()


def test_a_reminder_is_an_event_without_an_actor(ana, bob):
    now = timezone.now()
    body = services.task_create(
        actor=ana,
        data={"title": "Soon", "assignee_id": bob.pk, "due_at": now + timedelta(minutes=5)},
    ).body
    assert upkeep.remind_due_tasks(now=now, lead=timedelta(hours=1)) == 1
    reminder = events_of(body["id"])[-1]
    assert reminder.type == EventType.DUE_SOON
    assert (reminder.actor_id, reminder.actor_snapshot) == (None, None)
    assert entries_of(reminder) == {ana.pk: 2, bob.pk: 2}


# --- What the services refuse, in the domain's words ------------------------------------


def test_a_task_the_actor_cannot_see_is_not_found(ana, eve):
    body = services.task_create(actor=ana, data={"title": "Private"}).body
    with pytest.raises(NotFound):
        services.task_archive(task_id=body["id"], actor=eve)


def test_an_assignee_may_not_archive(ana, bob):
    body = services.task_create(actor=ana, data={"title": "Mine", "assignee_id": bob.pk}).body
    with pytest.raises(NotAllowed):
        services.task_archive(task_id=body["id"], actor=bob)


def test_an_archived_task_does_not_change(ana):
    body = services.task_create(actor=ana, data={"title": "Old"}).body
    services.task_archive(task_id=body["id"], actor=ana)
    with pytest.raises(Archived):
        services.task_update(task_id=body["id"], actor=ana, data={"title": "New"})


def test_a_stale_version_carries_the_task_as_it_is(ana):
    body = services.task_create(actor=ana, data={"title": "v1"}).body
    services.task_update(task_id=body["id"], actor=ana, data={"title": "v2"})
    with pytest.raises(StaleVersion) as raised:
        services.task_update(
            task_id=body["id"], actor=ana, data={"title": "v3"}, if_match=frozenset({1})
        )
    assert raised.value.current["title"] == "v2"
    assert raised.value.current["version"] == 2


def test_an_idempotency_key_with_another_body_is_refused(ana):
    services.task_create(actor=ana, data={"title": "A"}, idempotency_key="k", request_hash="a")
    with pytest.raises(IdempotencyKeyReused):
        services.task_create(actor=ana, data={"title": "B"}, idempotency_key="k", request_hash="b")


# --- The Idempotency-Key record -------------------------------------------------------------


def test_an_idempotency_record_holds_its_task_id_once_the_task_exists(ana):
    body = services.task_create(
        actor=ana, data={"title": "Once"}, idempotency_key="k1", request_hash="h"
    ).body
    record = IdempotencyRecord.objects.get(user=ana, key="k1")
    assert str(record.task_id) == body["id"]
    assert record.response_body == body


def test_an_idempotency_record_may_be_without_a_task_while_its_request_runs(ana):
    """The claim is stored before the task exists: with no task id, not a made-up one."""
    record = IdempotencyRecord.objects.create(
        user=ana, key="k2", request_hash="h", response_body={}, created_at=timezone.now()
    )
    record.refresh_from_db()
    assert record.task_id is None


def test_a_second_claim_of_a_key_is_told_by_its_constraint_name(ana):
    IdempotencyRecord.objects.create(
        user=ana, key="k3", request_hash="h", response_body={}, created_at=timezone.now()
    )
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        IdempotencyRecord.objects.create(
            user=ana, key="k3", request_hash="h", response_body={}, created_at=timezone.now()
        )
    assert services._violated_constraint(raised.value) == IDEMPOTENCY_KEY_CONSTRAINT


def test_an_integrity_error_of_another_constraint_is_not_taken_for_a_key_race(ana):
    """Only the key's own constraint means "a concurrent request won": another violation
    is raised at once, even when its message happens to say "idempotency" (PostgreSQL
    quotes the failing row, title included)."""
    with pytest.raises(IntegrityError) as raised:
        services.task_create(
            actor=ana,
            data={"title": "Idempotency study", "version": 0},
            idempotency_key="k4",
            request_hash="h",
        )
    assert "idempotency" in str(raised.value).lower()
    assert services._violated_constraint(raised.value) == "task_version_positive"
    assert not IdempotencyRecord.objects.exists()

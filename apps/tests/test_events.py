"""The event log: what each change writes, who receives it at which `seq`, and how the
events read back through GET /api/v1/events/ and GET /api/v1/tasks/{id}/history/."""

import asyncio
import importlib
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as django_apps
from django.db import connection
from django.utils import timezone

from apps.tasks import upkeep
from apps.tasks.models import (
    EventStream,
    EventType,
    IdempotencyRecord,
    StreamEntry,
    Task,
    TaskEvent,
)
from apps.tests.conftest import assert_problem, auth
from apps.users.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = "/api/v1/tasks/"
EVENTS = "/api/v1/events/"
EVENT_KEYS = {"type", "seq", "at", "actor", "task"}


@pytest.fixture
def cy(make_user):
    return make_user("cy")


# --- Helpers --------------------------------------------------------------------------------


async def create(api, user, **body) -> dict:
    response = await api.post(TASKS, json={"title": "Task", **body}, headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()


async def patch(api, user, task_id, **body) -> dict:
    response = await api.patch(f"{TASKS}{task_id}/", json=body, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def put(api, user, task_id, **body) -> dict:
    response = await api.put(f"{TASKS}{task_id}/", json=body, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def archive(api, user, task_id) -> dict:
    response = await api.post(f"{TASKS}{task_id}/archive/", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def restore(api, user, task_id) -> dict:
    response = await api.post(f"{TASKS}{task_id}/restore/", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def delete(api, user, task_id) -> None:
    response = await api.delete(f"{TASKS}{task_id}/", headers=auth(user))
    assert response.status_code == 204, response.text


async def events_of(task_id) -> list[TaskEvent]:
    """The task's event rows, oldest first."""
    return [event async for event in TaskEvent.objects.filter(task_id=task_id).order_by("id")]


async def last_event_of(task_id) -> TaskEvent:
    return (await events_of(task_id))[-1]


async def stream_of(user) -> list[tuple[int, str, str]]:
    """The user's stream entries as (seq, event type, task id), by seq."""
    rows = StreamEntry.objects.filter(user=user).order_by("seq")
    return [
        (seq, kind, str(task_id))
        async for seq, kind, task_id in rows.values_list("seq", "event__type", "event__task_id")
    ]


async def seqs_of(user) -> list[int]:
    return [seq for seq, _kind, _task in await stream_of(user)]


async def get_events(api, user, **params) -> dict:
    response = await api.get(EVENTS, params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def get_history(api, user, task_id, **params) -> dict:
    response = await api.get(f"{TASKS}{task_id}/history/", params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


def is_rfc3339_utc(value: str) -> bool:
    if not value.endswith("Z"):
        return False
    offset = datetime.fromisoformat(value).utcoffset()
    return offset is not None and offset.total_seconds() == 0


# --- The rows each change writes ------------------------------------------------------------


async def test_create_writes_task_created_event(api, ana):
    task = await create(api, ana, title="New")
    [event] = await events_of(task["id"])
    assert event.type == EventType.CREATED
    assert event.actor_id == ana.pk
    assert event.actor_snapshot == {"id": ana.pk, "username": "ana"}
    assert event.task_snapshot == task
    assert event.changes is None


async def test_update_writes_task_updated_with_the_task_after_the_change(api, ana):
    task = await create(api, ana, title="Old")
    updated = await patch(api, ana, task["id"], title="New")
    event = await last_event_of(task["id"])
    assert event.type == EventType.UPDATED
    assert event.actor_id == ana.pk
    assert event.task_snapshot == updated


async def test_update_changes_name_only_fields_that_changed(api, ana):
    task = await create(api, ana, title="Old", description="same")
    await patch(api, ana, task["id"], title="New", description="same", status="in_progress")
    event = await last_event_of(task["id"])
    assert event.changes == {"title": ["Old", "New"], "status": ["todo", "in_progress"]}


async def test_put_changes_name_only_fields_that_changed(api, ana):
    task = await create(api, ana, title="Same", description="kept")
    await put(api, ana, task["id"], title="Same", description="kept", priority="low")
    event = await last_event_of(task["id"])
    assert event.changes == {"priority": ["medium", "low"]}


async def test_update_changes_show_priority_as_labels(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], priority="urgent")
    event = await last_event_of(task["id"])
    assert event.changes == {"priority": ["medium", "urgent"]}


async def test_update_changes_show_assignee_as_ids(api, ana, bob, cy):
    task = await create(api, ana)
    await patch(api, ana, task["id"], assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    await patch(api, ana, task["id"], assignee=None)
    changes = [event.changes for event in await events_of(task["id"])][1:]
    assert changes == [
        {"assignee": [None, bob.pk]},
        {"assignee": [bob.pk, cy.pk]},
        {"assignee": [cy.pk, None]},
    ]


async def test_update_changes_show_due_at_as_rfc3339_utc_strings(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], due_at="2030-05-01T12:00:00+02:00")
    await patch(api, ana, task["id"], due_at="2030-06-01T08:30:00Z")
    changes = [event.changes for event in await events_of(task["id"])][1:]
    assert changes == [
        {"due_at": [None, "2030-05-01T10:00:00Z"]},
        {"due_at": ["2030-05-01T10:00:00Z", "2030-06-01T08:30:00Z"]},
    ]


async def test_update_changes_show_metadata_as_objects(api, ana):
    task = await create(api, ana, metadata={"a": 1})
    await patch(api, ana, task["id"], metadata={"a": 2, "b": [1]})
    event = await last_event_of(task["id"])
    assert event.changes == {"metadata": [{"a": 1}, {"a": 2, "b": [1]}]}


async def test_update_that_changes_nothing_writes_no_event(api, ana):
    task = await create(api, ana, title="Same")
    await patch(api, ana, task["id"], title="Same", status="todo")
    assert [event.type for event in await events_of(task["id"])] == [EventType.CREATED]


async def test_assignee_change_records_the_assignee_as_actor(api, ana, bob):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, bob, task["id"], status="done")
    event = await last_event_of(task["id"])
    assert event.actor_snapshot == {"id": bob.pk, "username": "bob"}
    assert event.changes == {"status": ["todo", "done"]}


async def test_archive_writes_task_archived_event(api, ana):
    task = await create(api, ana)
    archived = await archive(api, ana, task["id"])
    event = await last_event_of(task["id"])
    assert event.type == EventType.ARCHIVED
    assert event.task_snapshot == archived
    assert event.task_snapshot["archived_at"] is not None
    assert event.changes is None


async def test_archiving_an_archived_task_writes_no_event(api, ana):
    task = await create(api, ana)
    await archive(api, ana, task["id"])
    await archive(api, ana, task["id"])
    types = [event.type for event in await events_of(task["id"])]
    assert types == [EventType.CREATED, EventType.ARCHIVED]


async def test_restore_writes_task_restored_event(api, ana):
    task = await create(api, ana)
    await archive(api, ana, task["id"])
    restored = await restore(api, ana, task["id"])
    event = await last_event_of(task["id"])
    assert event.type == EventType.RESTORED
    assert event.task_snapshot == restored
    assert event.task_snapshot["archived_at"] is None


async def test_delete_writes_task_deleted_event_with_only_the_id(api, ana):
    task = await create(api, ana)
    await delete(api, ana, task["id"])
    event = await last_event_of(task["id"])
    assert event.type == EventType.DELETED
    assert event.task_snapshot == {"id": task["id"]}
    assert event.actor_snapshot == {"id": ana.pk, "username": "ana"}


async def test_event_log_outlives_the_deleted_task(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="Changed")
    await delete(api, ana, task["id"])
    types = [event.type for event in await events_of(task["id"])]
    assert types == [EventType.CREATED, EventType.UPDATED, EventType.DELETED]


# --- Recipients -----------------------------------------------------------------------------


async def test_creator_receives_the_event(api, ana):
    task = await create(api, ana)
    assert await stream_of(ana) == [(1, EventType.CREATED, task["id"])]


async def test_assignee_receives_the_event(api, ana, bob):
    task = await create(api, ana, assignee=bob.pk)
    assert await stream_of(bob) == [(1, EventType.CREATED, task["id"])]


async def test_admin_receives_events_of_tasks_not_theirs(api, ana, root):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="Changed")
    assert await stream_of(root) == [
        (1, EventType.CREATED, task["id"]),
        (2, EventType.UPDATED, task["id"]),
    ]


async def test_inactive_admin_receives_nothing(api, ana, make_user):
    retired = await sync_to_async(make_user)("retired", role=Role.ADMIN, is_active=False)
    await create(api, ana)
    assert await stream_of(retired) == []


async def test_stranger_receives_nothing(api, ana, bob, eve):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], title="Changed")
    await archive(api, ana, task["id"])
    await restore(api, ana, task["id"])
    await delete(api, ana, task["id"])
    assert await stream_of(eve) == []


async def test_every_recipient_receives_the_delete(api, ana, bob, root):
    task = await create(api, ana, assignee=bob.pk)
    await delete(api, ana, task["id"])
    for user in (ana, bob, root):
        assert (await stream_of(user))[-1] == (2, EventType.DELETED, task["id"])


async def test_new_assignee_receives_the_reassignment(api, ana, bob, cy):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    assert await stream_of(cy) == [(1, EventType.UPDATED, task["id"])]


async def test_former_assignee_receives_one_last_update_then_nothing(api, ana, bob, cy):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    await patch(api, ana, task["id"], title="Later")
    await archive(api, ana, task["id"])
    assert await stream_of(bob) == [
        (1, EventType.CREATED, task["id"]),
        (2, EventType.UPDATED, task["id"]),
    ]
    entry = await StreamEntry.objects.select_related("event").aget(user=bob, seq=2)
    assert entry.event.changes == {"assignee": [bob.pk, cy.pk]}


async def test_unassigned_former_assignee_receives_one_last_update_then_nothing(api, ana, bob):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=None)
    await patch(api, ana, task["id"], title="Later")
    assert [kind for _seq, kind, _task in await stream_of(bob)] == [
        EventType.CREATED,
        EventType.UPDATED,
    ]


async def test_events_name_the_assignee_as_it_was_after_each_change(api, ana, bob, cy):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    await patch(api, ana, task["id"], assignee=None)
    named = [event.task_snapshot["assignee_user"] for event in await events_of(task["id"])]
    assert named == [{"id": bob.pk, "username": "bob"}, {"id": cy.pk, "username": "cy"}, None]


async def test_former_assignees_last_event_names_the_new_assignee(api, ana, bob, cy):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    last = (await get_events(api, bob))["results"][-1]
    assert (last["type"], last["task"]["assignee_user"]) == (
        "task.updated",
        {"id": cy.pk, "username": "cy"},
    )


async def test_history_names_the_assignee_of_each_version(api, ana, bob, cy):
    task = await create(api, ana)
    await patch(api, ana, task["id"], assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    history = (await get_history(api, ana, task["id"]))["results"]
    assert [event["task"]["assignee_user"] for event in history] == [
        None,
        {"id": bob.pk, "username": "bob"},
        {"id": cy.pk, "username": "cy"},
    ]


async def test_reminders_name_the_assignee(ana, bob):
    now = timezone.now()
    task = await Task.objects.acreate(
        title="Soon", created_by=ana, assignee=bob, due_at=now + timedelta(minutes=5)
    )
    assert await sync_to_async(upkeep.remind_due_tasks)(now=now, lead=timedelta(hours=1)) == 1
    event = await last_event_of(task.pk)
    assert event.type == EventType.DUE_SOON
    assert event.task_snapshot["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_snapshots_from_before_assignee_user_gain_it(api, ana, bob):
    """Events and replayable responses written before tasks named their assignee are
    given the name by migration tasks 0004, so history and replays have today's shape."""
    keyed = {**auth(ana), "Idempotency-Key": "before-the-names"}
    response = await api.post(TASKS, json={"title": "Task", "assignee": bob.pk}, headers=keyed)
    assert response.status_code == 201, response.text
    assigned = response.json()
    alone = await create(api, ana)
    for task in (assigned, alone):
        old_shape = {name: value for name, value in task.items() if name != "assignee_user"}
        await TaskEvent.objects.filter(task_id=task["id"]).aupdate(task_snapshot=old_shape)
        await IdempotencyRecord.objects.filter(task_id=task["id"]).aupdate(response_body=old_shape)
    await delete(api, ana, alone["id"])
    migration = importlib.import_module("apps.tasks.migrations.0004_assignee_user_in_snapshots")

    def migrate():
        with connection.schema_editor() as editor:
            migration.add_assignee_user(django_apps, editor)

    await sync_to_async(migrate)()
    [event] = (await get_history(api, ana, assigned["id"]))["results"]
    assert event["task"] == assigned
    replayed = await api.post(TASKS, json={"title": "Task", "assignee": bob.pk}, headers=keyed)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == assigned
    alone_events = (await get_events(api, ana))["results"][-2:]
    assert [event["task"] for event in alone_events] == [alone, {"id": alone["id"]}]


async def test_each_event_reaches_each_recipient_once(api, ana, root):
    # root is creator, assignee and admin at once.
    task = await create(api, root, assignee=root.pk)
    await patch(api, root, task["id"], title="Changed")
    assert await seqs_of(root) == [1, 2]
    assert await stream_of(ana) == []


# --- Per-user seq ---------------------------------------------------------------------------


async def test_each_users_seq_is_gap_free_across_many_changes(api, ana, bob, cy, root):
    first = await create(api, ana, assignee=bob.pk)
    second = await create(api, bob)
    third = await create(api, cy, assignee=ana.pk)
    await patch(api, ana, first["id"], title="One")
    await patch(api, bob, first["id"], status="in_progress")
    await patch(api, bob, second["id"], assignee=cy.pk)
    await patch(api, cy, third["id"], priority="high")
    await patch(api, ana, third["id"], description="mine too")
    await archive(api, bob, second["id"])
    await restore(api, bob, second["id"])
    await patch(api, ana, first["id"], assignee=cy.pk)
    await delete(api, cy, third["id"])
    expected_counts = {ana: 8, bob: 8, cy: 8, root: 12}
    for user, count in expected_counts.items():
        assert await seqs_of(user) == list(range(1, count + 1)), user.username


async def test_seq_order_follows_the_order_of_changes(api, ana, bob):
    task = await create(api, ana, assignee=bob.pk)
    for title in ("a", "b", "c", "d"):
        await patch(api, ana, task["id"], title=title)
    entries = StreamEntry.objects.filter(user=bob).order_by("seq")
    event_ids = [event_id async for event_id in entries.values_list("event_id", flat=True)]
    assert event_ids == sorted(event_ids)
    assert len(event_ids) == 5


async def test_stream_last_seq_is_the_users_latest_seq(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="Changed")
    stream = await EventStream.objects.aget(user=ana)
    assert stream.last_seq == 2


async def test_concurrent_changes_keep_each_stream_gap_free(api, ana, bob):
    shared = [
        (await create(api, ana, title=f"Shared {n}", assignee=bob.pk))["id"] for n in range(4)
    ]
    requests = []
    for n in range(20):
        task_url = f"{TASKS}{shared[n % 4]}/"
        if n % 5 == 0:
            body = {"title": f"New by ana {n}", "assignee": bob.pk}
            requests.append(api.post(TASKS, json=body, headers=auth(ana)))
        elif n % 5 == 1:
            body = {"title": f"New by bob {n}", "assignee": ana.pk}
            requests.append(api.post(TASKS, json=body, headers=auth(bob)))
        elif n % 2:
            requests.append(api.patch(task_url, json={"title": f"ana {n}"}, headers=auth(ana)))
        else:
            body = {"description": f"bob {n}"}
            requests.append(api.patch(task_url, json=body, headers=auth(bob)))
    responses = await asyncio.gather(*requests)
    assert all(response.status_code in (200, 201) for response in responses), [
        response.text for response in responses if response.status_code not in (200, 201)
    ]
    for user in (ana, bob):
        assert await seqs_of(user) == list(range(1, 25)), user.username


async def test_concurrent_changes_to_one_task_each_get_their_own_seq(api, ana, bob):
    task = await create(api, ana, assignee=bob.pk)
    task_url = f"{TASKS}{task['id']}/"
    responses = await asyncio.gather(
        *(
            api.patch(task_url, json={"description": f"v{n}"}, headers=auth(ana if n % 2 else bob))
            for n in range(20)
        )
    )
    assert all(response.status_code == 200 for response in responses)
    versions = sorted(response.json()["version"] for response in responses)
    assert versions == list(range(2, 22))
    for user in (ana, bob):
        assert await seqs_of(user) == list(range(1, 22)), user.username


# --- GET /api/v1/events/ --------------------------------------------------------------------


async def test_events_page_has_results_and_next(api, ana):
    await create(api, ana)
    body = await get_events(api, ana)
    assert set(body) == {"results", "next"}
    assert body["next"] is None


async def test_created_event_shape(api, ana):
    task = await create(api, ana)
    [event] = (await get_events(api, ana))["results"]
    assert set(event) == EVENT_KEYS
    assert event["type"] == "task.created"
    assert event["seq"] == 1
    assert is_rfc3339_utc(event["at"])
    assert event["actor"] == {"id": ana.pk, "username": "ana"}
    assert event["task"] == task


async def test_updated_event_shape_has_changes(api, ana):
    task = await create(api, ana, title="Old")
    updated = await patch(api, ana, task["id"], title="New")
    event = (await get_events(api, ana))["results"][-1]
    assert set(event) == EVENT_KEYS | {"changes"}
    assert event["type"] == "task.updated"
    assert event["seq"] == 2
    assert event["task"] == updated
    assert event["changes"] == {"title": ["Old", "New"]}


async def test_only_updated_events_carry_changes(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="New")
    await archive(api, ana, task["id"])
    await restore(api, ana, task["id"])
    await delete(api, ana, task["id"])
    results = (await get_events(api, ana))["results"]
    assert [(event["type"], "changes" in event) for event in results] == [
        ("task.created", False),
        ("task.updated", True),
        ("task.archived", False),
        ("task.restored", False),
        ("task.deleted", False),
    ]


async def test_deleted_event_task_is_only_the_id(api, ana):
    task = await create(api, ana)
    await delete(api, ana, task["id"])
    event = (await get_events(api, ana))["results"][-1]
    assert event["type"] == "task.deleted"
    assert event["task"] == {"id": task["id"]}


async def test_events_after_returns_only_greater_seqs_oldest_first(api, ana):
    task = await create(api, ana)
    for title in ("a", "b", "c", "d"):
        await patch(api, ana, task["id"], title=title)
    results = (await get_events(api, ana, after=2))["results"]
    assert [event["seq"] for event in results] == [3, 4, 5]
    assert [event["task"]["title"] for event in results] == ["b", "c", "d"]


async def test_events_without_after_start_at_the_first_seq(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="a")
    results = (await get_events(api, ana))["results"]
    assert [event["seq"] for event in results] == [1, 2]


async def test_events_after_the_last_seq_is_empty(api, ana):
    await create(api, ana)
    body = await get_events(api, ana, after=1)
    assert body == {"results": [], "next": None}


async def test_events_limit_and_next_walk_the_whole_stream_once(api, ana):
    task = await create(api, ana)
    for n in range(6):
        await patch(api, ana, task["id"], title=f"v{n}")
    body = await get_events(api, ana, limit=3)
    pages = [body]
    while body["next"] is not None and len(pages) < 20:
        response = await api.get(body["next"], headers=auth(ana))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    seqs = [event["seq"] for page in pages for event in page["results"]]
    assert seqs == list(range(1, 8))


async def test_events_next_is_null_when_the_page_ends_the_stream(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="a")
    body = await get_events(api, ana, limit=2)
    assert len(body["results"]) == 2
    assert body["next"] is None


@pytest.mark.parametrize("after", ["-1", "abc", "", "1.5"])
async def test_events_bad_after_is_400(api, ana, after):
    response = await api.get(EVENTS, params={"after": after}, headers=auth(ana))
    body = assert_problem(response, 400)
    assert "after" in body["errors"]


@pytest.mark.parametrize("limit", ["0", "201", "x"])
async def test_events_bad_limit_is_400(api, ana, limit):
    response = await api.get(EVENTS, params={"limit": limit}, headers=auth(ana))
    body = assert_problem(response, 400)
    assert "limit" in body["errors"]


async def test_events_unknown_parameter_is_400(api, ana):
    response = await api.get(EVENTS, params={"since": "1"}, headers=auth(ana))
    body = assert_problem(response, 400)
    assert "since" in body["errors"]


async def test_events_without_token_is_401(api):
    assert_problem(await api.get(EVENTS), 401)


async def test_user_sees_only_their_own_stream(api, ana, bob):
    await create(api, ana, title="Ana only")
    shared = await create(api, ana, title="Shared", assignee=bob.pk)
    results = (await get_events(api, bob))["results"]
    assert [(event["seq"], event["task"]["id"]) for event in results] == [(1, shared["id"])]


async def test_stranger_sees_an_empty_stream(api, ana, eve):
    await create(api, ana)
    assert (await get_events(api, eve))["results"] == []


# --- GET /api/v1/tasks/{id}/history/ --------------------------------------------------------


async def test_history_is_oldest_first_in_event_shape(api, ana):
    task = await create(api, ana, title="Old")
    updated = await patch(api, ana, task["id"], title="New")
    archived = await archive(api, ana, task["id"])
    restored = await restore(api, ana, task["id"])
    body = await get_history(api, ana, task["id"])
    assert set(body) == {"results", "next", "previous"}
    results = body["results"]
    assert [event["type"] for event in results] == [
        "task.created",
        "task.updated",
        "task.archived",
        "task.restored",
    ]
    assert [event["task"] for event in results] == [task, updated, archived, restored]
    assert [set(event) for event in results] == [
        EVENT_KEYS,
        EVENT_KEYS | {"changes"},
        EVENT_KEYS,
        EVENT_KEYS,
    ]
    assert results[1]["changes"] == {"title": ["Old", "New"]}
    assert all(event["actor"] == {"id": ana.pk, "username": "ana"} for event in results)
    assert all(is_rfc3339_utc(event["at"]) for event in results)


async def test_history_matches_the_events_endpoint(api, ana):
    task = await create(api, ana)
    await patch(api, ana, task["id"], priority="high")
    history = (await get_history(api, ana, task["id"]))["results"]
    assert history == (await get_events(api, ana))["results"]


async def test_history_seq_is_the_callers_seq(api, ana, bob):
    await create(api, ana, title="Earlier one")
    await create(api, ana, title="Earlier two")
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], title="Changed")
    ana_seqs = [event["seq"] for event in (await get_history(api, ana, task["id"]))["results"]]
    bob_seqs = [event["seq"] for event in (await get_history(api, bob, task["id"]))["results"]]
    assert ana_seqs == [3, 4]
    assert bob_seqs == [1, 2]


async def test_newly_assigned_user_sees_earlier_events_with_null_seq(api, ana, bob):
    task = await create(api, ana)
    await patch(api, ana, task["id"], title="Changed")
    await patch(api, ana, task["id"], assignee=bob.pk)
    results = (await get_history(api, bob, task["id"]))["results"]
    assert [(event["type"], event["seq"]) for event in results] == [
        ("task.created", None),
        ("task.updated", None),
        ("task.updated", 1),
    ]


async def test_admin_sees_history_of_any_task(api, ana, make_user):
    task = await create(api, ana)
    late_admin = await sync_to_async(make_user)("late_admin", role=Role.ADMIN)
    await patch(api, ana, task["id"], title="Changed")
    results = (await get_history(api, late_admin, task["id"]))["results"]
    assert [event["seq"] for event in results] == [None, 1]


async def test_history_of_invisible_task_is_404(api, ana, eve):
    task = await create(api, ana)
    response = await api.get(f"{TASKS}{task['id']}/history/", headers=auth(eve))
    assert_problem(response, 404)


async def test_former_assignee_cannot_read_history(api, ana, bob, cy):
    task = await create(api, ana, assignee=bob.pk)
    await patch(api, ana, task["id"], assignee=cy.pk)
    response = await api.get(f"{TASKS}{task['id']}/history/", headers=auth(bob))
    assert_problem(response, 404)


async def test_history_of_deleted_task_is_404(api, ana):
    task = await create(api, ana)
    await delete(api, ana, task["id"])
    response = await api.get(f"{TASKS}{task['id']}/history/", headers=auth(ana))
    assert_problem(response, 404)


async def test_history_of_malformed_task_id_is_404(api, ana):
    assert_problem(await api.get(f"{TASKS}not-a-uuid/history/", headers=auth(ana)), 404)


async def test_history_pages_walk_every_event_once(api, ana):
    task = await create(api, ana)
    for n in range(6):
        await patch(api, ana, task["id"], title=f"v{n}")
    body = await get_history(api, ana, task["id"], limit=3)
    pages = [body]
    while body["next"] is not None and len(pages) < 20:
        response = await api.get(body["next"], headers=auth(ana))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    assert [event["seq"] for page in pages for event in page["results"]] == list(range(1, 8))
    back = await api.get(pages[2]["previous"], headers=auth(ana))
    assert back.json()["results"] == pages[1]["results"]


@pytest.mark.parametrize(("param", "value"), [("limit", "0"), ("cursor", "junk"), ("x", "1")])
async def test_history_bad_parameter_is_400(api, ana, param, value):
    task = await create(api, ana)
    response = await api.get(
        f"{TASKS}{task['id']}/history/", params={param: value}, headers=auth(ana)
    )
    body = assert_problem(response, 400)
    assert param in body["errors"]

"""Who may see and do what on a task: the rights of its creator, assignee, a stranger and
an admin on every task endpoint, and what an unauthenticated request gets."""

import pytest

from apps.tests.conftest import (
    MISSING_ID,
    TASKS,
    assert_problem,
    auth,
    list_task_ids,
    read_task,
    task_url,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- The visibility and rights matrix -------------------------------------------------------

ROLE_READ = [("creator", 200), ("assignee", 200), ("stranger", 404), ("admin", 200)]
ROLE_MANAGE = [("creator", 200), ("assignee", 403), ("stranger", 404), ("admin", 200)]


@pytest.mark.parametrize(("role", "expected"), ROLE_READ)
async def test_get_task_by_role(api, task, people, role, expected):
    response = await api.get(task_url(task["id"]), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json() == task
    else:
        assert_problem(response, expected)


@pytest.mark.parametrize(
    ("role", "listed"),
    [("creator", True), ("assignee", True), ("stranger", False), ("admin", True)],
)
async def test_task_appears_in_list_by_role(api, task, people, role, listed):
    assert (task["id"] in await list_task_ids(api, people[role])) is listed


@pytest.mark.parametrize(("role", "expected"), ROLE_READ)
async def test_history_by_role(api, task, people, role, expected):
    response = await api.get(task_url(task["id"], "history"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert [event["type"] for event in response.json()["results"]] == ["task.created"]
    else:
        assert_problem(response, expected)


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_patch_title_by_role(api, task, people, root, role, expected):
    response = await api.patch(
        task_url(task["id"]), json={"title": "Renamed"}, headers=auth(people[role])
    )
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "Renamed"
    else:
        assert_problem(response, expected)
        assert (await read_task(api, task["id"], root))["title"] == task["title"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("creator", 200), ("assignee", 200), ("stranger", 404), ("admin", 200)],
)
async def test_patch_status_by_role(api, task, people, root, role, expected):
    response = await api.patch(
        task_url(task["id"]), json={"status": "done"}, headers=auth(people[role])
    )
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "done"
    else:
        assert_problem(response, expected)
        assert (await read_task(api, task["id"], root))["status"] == "todo"


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_put_by_role(api, task, people, root, role, expected):
    body = {"title": "Replaced", "assignee": task["assignee"]}
    response = await api.put(task_url(task["id"]), json=body, headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "Replaced"
    else:
        assert_problem(response, expected)
        assert await read_task(api, task["id"], root) == task


@pytest.mark.parametrize(
    ("role", "expected"),
    [("creator", 204), ("assignee", 403), ("stranger", 404), ("admin", 204)],
)
async def test_delete_by_role(api, task, people, root, role, expected):
    response = await api.delete(task_url(task["id"]), headers=auth(people[role]))
    if expected == 204:
        assert response.status_code == 204, response.text
        assert_problem(await api.get(task_url(task["id"]), headers=auth(root)), 404)
    else:
        assert_problem(response, expected)
        assert await read_task(api, task["id"], root) == task


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_archive_by_role(api, task, people, root, role, expected):
    response = await api.post(task_url(task["id"], "archive"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["archived_at"] is not None
    else:
        assert_problem(response, expected)
        assert (await read_task(api, task["id"], root))["archived_at"] is None


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_restore_by_role(api, archived_task, people, root, role, expected):
    response = await api.post(task_url(archived_task["id"], "restore"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["archived_at"] is None
    else:
        assert_problem(response, expected)
        assert (await read_task(api, archived_task["id"], root))["archived_at"] is not None


# --- What the assignee may change -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "in_progress"), ("description", "Notes"), ("metadata", {"sprint": 7})],
)
async def test_assignee_may_change_field(api, task, bob, field, value):
    response = await api.patch(task_url(task["id"]), json={field: value}, headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.json()[field] == value
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Taken over"),
        ("priority", "urgent"),
        ("due_at", "2031-01-01T00:00:00Z"),
        ("assignee", "stranger"),
        ("assignee", None),
    ],
)
async def test_assignee_cannot_change_field(api, task, people, root, field, value):
    if value == "stranger":
        value = people["stranger"].pk
    response = await api.patch(
        task_url(task["id"]), json={field: value}, headers=auth(people["assignee"])
    )
    assert_problem(response, 403)
    assert await read_task(api, task["id"], root) == task


async def test_assignee_cannot_sneak_forbidden_field_next_to_allowed_one(api, task, bob, root):
    response = await api.patch(
        task_url(task["id"]), json={"status": "done", "priority": "low"}, headers=auth(bob)
    )
    assert_problem(response, 403)
    assert await read_task(api, task["id"], root) == task


async def test_assignee_may_put_when_only_allowed_fields_differ(api, task, bob):
    body = {
        "title": task["title"],
        "priority": task["priority"],
        "due_at": task["due_at"],
        "assignee": task["assignee"],
        "status": "done",
        "description": "Finished",
        "metadata": {"hours": 3},
    }
    response = await api.put(task_url(task["id"]), json=body, headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"


async def test_assignee_may_send_unchanged_forbidden_field(api, task, bob):
    response = await api.patch(
        task_url(task["id"]), json={"title": task["title"], "status": "done"}, headers=auth(bob)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"


# --- Admin, creator, assignment -------------------------------------------------------------


async def test_admin_may_change_every_field_of_anyones_task(api, task, root, eve, ana):
    changes = {
        "title": "Admin edit",
        "description": "By root",
        "status": "in_progress",
        "priority": "high",
        "due_at": "2031-05-01T12:00:00Z",
        "metadata": {"by": "root"},
        "assignee": eve.pk,
    }
    response = await api.patch(task_url(task["id"]), json=changes, headers=auth(root))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {name: body[name] for name in changes} == changes
    assert body["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_admin_sees_task_that_is_neither_theirs_nor_assigned_to_them(
    api, unassigned_task, root
):
    assert unassigned_task["id"] in await list_task_ids(api, root)
    assert (await read_task(api, unassigned_task["id"], root))["title"] == "Private"


async def test_created_by_is_the_caller(api, ana):
    response = await api.post(TASKS, json={"title": "Mine"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    assert response.json()["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_created_by_in_body_is_ignored(api, ana, bob):
    body = {"title": "Mine", "created_by": {"id": bob.pk, "username": "bob"}}
    response = await api.post(TASKS, json=body, headers=auth(ana))
    assert response.status_code == 201, response.text
    assert response.json()["created_by"] == {"id": ana.pk, "username": "ana"}
    assert_problem(await api.get(task_url(response.json()["id"]), headers=auth(bob)), 404)


async def test_read_only_fields_in_patch_body_are_ignored(api, task, ana, bob):
    body = {
        "id": MISSING_ID,
        "version": 99,
        "created_by": {"id": bob.pk, "username": "bob"},
        "archived_at": "2030-01-01T00:00:00Z",
        "description": "Changed",
    }
    response = await api.patch(task_url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["id"], result["version"], result["archived_at"]) == (task["id"], 2, None)
    assert result["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_task_created_with_assignee_is_visible_to_them(api, ana, bob):
    response = await api.post(
        TASKS, json={"title": "For bob", "assignee": bob.pk}, headers=auth(ana)
    )
    assert response.status_code == 201, response.text
    assert (await read_task(api, response.json()["id"], bob))["assignee"] == bob.pk


async def test_assigning_task_makes_it_visible_to_assignee(api, unassigned_task, ana, bob):
    unassigned = unassigned_task
    assert_problem(await api.get(task_url(unassigned["id"]), headers=auth(bob)), 404)
    response = await api.patch(
        task_url(unassigned["id"]), json={"assignee": bob.pk}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert (await read_task(api, unassigned["id"], bob))["assignee"] == bob.pk
    assert unassigned["id"] in await list_task_ids(api, bob)


@pytest.mark.parametrize("new_assignee", ["stranger", None])
async def test_reassigned_away_assignee_loses_visibility(api, task, people, new_assignee):
    new_id = people[new_assignee].pk if new_assignee else None
    response = await api.patch(
        task_url(task["id"]), json={"assignee": new_id}, headers=auth(people["creator"])
    )
    assert response.status_code == 200, response.text
    former = people["assignee"]
    assert_problem(await api.get(task_url(task["id"]), headers=auth(former)), 404)
    assert task["id"] not in await list_task_ids(api, former)


async def test_reassigned_away_assignee_cannot_change_task(api, task, ana, bob, eve):
    await api.patch(task_url(task["id"]), json={"assignee": eve.pk}, headers=auth(ana))
    response = await api.patch(task_url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert_problem(response, 404)


async def test_stranger_gets_same_404_as_for_missing_task(api, task, eve):
    hidden = assert_problem(await api.get(task_url(task["id"]), headers=auth(eve)), 404)
    missing = assert_problem(await api.get(task_url(MISSING_ID), headers=auth(eve)), 404)
    assert hidden["detail"] == missing["detail"]


async def test_stranger_with_stale_if_match_gets_404_not_412(api, task, eve):
    response = await api.patch(
        task_url(task["id"]), json={"title": "x"}, headers={**auth(eve), "If-Match": '"7"'}
    )
    assert_problem(response, 404)


# --- Authentication -------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", ""),
    ("POST", ""),
    ("GET", "{id}"),
    ("PATCH", "{id}"),
    ("PUT", "{id}"),
    ("DELETE", "{id}"),
    ("POST", "{id}/archive"),
    ("POST", "{id}/restore"),
    ("GET", "{id}/history"),
]


def endpoint_task_url(path: str, task_id: str) -> str:
    return f"{TASKS}{path.format(id=task_id)}/" if path else TASKS


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_unauthenticated_request_is_401(api, task, root, method, path):
    body = {"title": "No token"} if method in ("PATCH", "PUT") or path == "" else None
    response = await api.request(method, endpoint_task_url(path, task["id"]), json=body)
    assert_problem(response, 401)
    assert await read_task(api, task["id"], root) == task


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_invalid_token_is_401(api, task, method, path):
    headers = {"Authorization": "Bearer not.a.token"}
    response = await api.request(method, endpoint_task_url(path, task["id"]), headers=headers)
    assert_problem(response, 401)

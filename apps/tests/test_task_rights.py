"""Who may see and do what on a task, and the conditional-request rules (ETag, If-Match,
If-None-Match), archive/restore/delete lifecycle and versioning of every task endpoint."""

import pytest

from apps.tasks import services
from apps.tests.conftest import assert_problem, auth
from apps.users.models import User

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = "/api/v1/tasks/"
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def url(task_id: str, action: str = "") -> str:
    return f"{TASKS}{task_id}/{action + '/' if action else ''}"


@pytest.fixture
def make_task(django_db_blocker):
    """Create a task through the service (so it has its `task.created` event); returns its
    representation. `fields` are model attributes (priority as a number, assignee_id)."""

    def make(creator, **fields) -> dict:
        fields.setdefault("title", "Plan the release")
        with django_db_blocker.unblock():
            return services.task_create(actor=creator, data=fields).body

    return make


@pytest.fixture
def change_task(django_db_blocker):
    """Apply a service call to a task outside any request (setup only)."""

    def change(service, task: dict, actor, **kwargs):
        with django_db_blocker.unblock():
            return service(task_id=task["id"], actor=actor, **kwargs)

    return change


@pytest.fixture
def people(ana, bob, eve, root):
    """The four relations a user can have to `task`."""
    return {"creator": ana, "assignee": bob, "stranger": eve, "admin": root}


@pytest.fixture
def task(make_task, ana, bob):
    """ana's task, assigned to bob."""
    return make_task(ana, assignee_id=bob.pk)


@pytest.fixture
def archived_task(task, change_task, ana):
    change_task(services.task_archive, task, ana)
    return task


@pytest.fixture
def updated_task(task, change_task, ana):
    """`task` after ana renamed it to "Newer": at version 2."""
    change_task(services.task_update, task, ana, data={"title": "Newer"})
    return task


@pytest.fixture
def unassigned_task(make_task, ana):
    return make_task(ana, title="Private")


async def read(api, task_id: str, as_user) -> dict:
    """The task as `as_user` reads it now."""
    response = await api.get(url(task_id), headers=auth(as_user))
    assert response.status_code == 200, response.text
    return response.json()


async def list_ids(api, user, **params) -> set[str]:
    response = await api.get(TASKS, params={"archived": "all", **params}, headers=auth(user))
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["results"]}


# --- The visibility and rights matrix -------------------------------------------------------

ROLE_READ = [("creator", 200), ("assignee", 200), ("stranger", 404), ("admin", 200)]
ROLE_MANAGE = [("creator", 200), ("assignee", 403), ("stranger", 404), ("admin", 200)]


@pytest.mark.parametrize(("role", "expected"), ROLE_READ)
async def test_get_task_by_role(api, task, people, role, expected):
    response = await api.get(url(task["id"]), headers=auth(people[role]))
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
    assert (task["id"] in await list_ids(api, people[role])) is listed


@pytest.mark.parametrize(("role", "expected"), ROLE_READ)
async def test_history_by_role(api, task, people, role, expected):
    response = await api.get(url(task["id"], "history"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert [event["type"] for event in response.json()["results"]] == ["task.created"]
    else:
        assert_problem(response, expected)


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_patch_title_by_role(api, task, people, root, role, expected):
    response = await api.patch(
        url(task["id"]), json={"title": "Renamed"}, headers=auth(people[role])
    )
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "Renamed"
    else:
        assert_problem(response, expected)
        assert (await read(api, task["id"], root))["title"] == task["title"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("creator", 200), ("assignee", 200), ("stranger", 404), ("admin", 200)],
)
async def test_patch_status_by_role(api, task, people, root, role, expected):
    response = await api.patch(url(task["id"]), json={"status": "done"}, headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "done"
    else:
        assert_problem(response, expected)
        assert (await read(api, task["id"], root))["status"] == "todo"


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_put_by_role(api, task, people, root, role, expected):
    body = {"title": "Replaced", "assignee": task["assignee"]}
    response = await api.put(url(task["id"]), json=body, headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["title"] == "Replaced"
    else:
        assert_problem(response, expected)
        assert await read(api, task["id"], root) == task


@pytest.mark.parametrize(
    ("role", "expected"),
    [("creator", 204), ("assignee", 403), ("stranger", 404), ("admin", 204)],
)
async def test_delete_by_role(api, task, people, root, role, expected):
    response = await api.delete(url(task["id"]), headers=auth(people[role]))
    if expected == 204:
        assert response.status_code == 204, response.text
        assert_problem(await api.get(url(task["id"]), headers=auth(root)), 404)
    else:
        assert_problem(response, expected)
        assert await read(api, task["id"], root) == task


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_archive_by_role(api, task, people, root, role, expected):
    response = await api.post(url(task["id"], "archive"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["archived_at"] is not None
    else:
        assert_problem(response, expected)
        assert (await read(api, task["id"], root))["archived_at"] is None


@pytest.mark.parametrize(("role", "expected"), ROLE_MANAGE)
async def test_restore_by_role(api, archived_task, people, root, role, expected):
    response = await api.post(url(archived_task["id"], "restore"), headers=auth(people[role]))
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["archived_at"] is None
    else:
        assert_problem(response, expected)
        assert (await read(api, archived_task["id"], root))["archived_at"] is not None


# --- What the assignee may change -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "in_progress"), ("description", "Notes"), ("metadata", {"sprint": 7})],
)
async def test_assignee_may_change_field(api, task, bob, field, value):
    response = await api.patch(url(task["id"]), json={field: value}, headers=auth(bob))
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
        url(task["id"]), json={field: value}, headers=auth(people["assignee"])
    )
    assert_problem(response, 403)
    assert await read(api, task["id"], root) == task


async def test_assignee_cannot_sneak_forbidden_field_next_to_allowed_one(api, task, bob, root):
    response = await api.patch(
        url(task["id"]), json={"status": "done", "priority": "low"}, headers=auth(bob)
    )
    assert_problem(response, 403)
    assert await read(api, task["id"], root) == task


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
    response = await api.put(url(task["id"]), json=body, headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"


async def test_assignee_may_send_unchanged_forbidden_field(api, task, bob):
    response = await api.patch(
        url(task["id"]), json={"title": task["title"], "status": "done"}, headers=auth(bob)
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
    response = await api.patch(url(task["id"]), json=changes, headers=auth(root))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {name: body[name] for name in changes} == changes
    assert body["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_admin_sees_task_that_is_neither_theirs_nor_assigned_to_them(
    api, unassigned_task, root
):
    assert unassigned_task["id"] in await list_ids(api, root)
    assert (await read(api, unassigned_task["id"], root))["title"] == "Private"


async def test_created_by_is_the_caller(api, ana):
    response = await api.post(TASKS, json={"title": "Mine"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    assert response.json()["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_created_by_in_body_is_ignored(api, ana, bob):
    body = {"title": "Mine", "created_by": {"id": bob.pk, "username": "bob"}}
    response = await api.post(TASKS, json=body, headers=auth(ana))
    assert response.status_code == 201, response.text
    assert response.json()["created_by"] == {"id": ana.pk, "username": "ana"}
    assert_problem(await api.get(url(response.json()["id"]), headers=auth(bob)), 404)


async def test_read_only_fields_in_patch_body_are_ignored(api, task, ana, bob):
    body = {
        "id": MISSING_ID,
        "version": 99,
        "created_by": {"id": bob.pk, "username": "bob"},
        "archived_at": "2030-01-01T00:00:00Z",
        "description": "Changed",
    }
    response = await api.patch(url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["id"], result["version"], result["archived_at"]) == (task["id"], 2, None)
    assert result["created_by"] == {"id": ana.pk, "username": "ana"}


async def test_task_created_with_assignee_is_visible_to_them(api, ana, bob):
    response = await api.post(
        TASKS, json={"title": "For bob", "assignee": bob.pk}, headers=auth(ana)
    )
    assert response.status_code == 201, response.text
    assert (await read(api, response.json()["id"], bob))["assignee"] == bob.pk


async def test_assigning_task_makes_it_visible_to_assignee(api, unassigned_task, ana, bob):
    unassigned = unassigned_task
    assert_problem(await api.get(url(unassigned["id"]), headers=auth(bob)), 404)
    response = await api.patch(url(unassigned["id"]), json={"assignee": bob.pk}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert (await read(api, unassigned["id"], bob))["assignee"] == bob.pk
    assert unassigned["id"] in await list_ids(api, bob)


@pytest.mark.parametrize("new_assignee", ["stranger", None])
async def test_reassigned_away_assignee_loses_visibility(api, task, people, new_assignee):
    new_id = people[new_assignee].pk if new_assignee else None
    response = await api.patch(
        url(task["id"]), json={"assignee": new_id}, headers=auth(people["creator"])
    )
    assert response.status_code == 200, response.text
    former = people["assignee"]
    assert_problem(await api.get(url(task["id"]), headers=auth(former)), 404)
    assert task["id"] not in await list_ids(api, former)


async def test_reassigned_away_assignee_cannot_change_task(api, task, ana, bob, eve):
    await api.patch(url(task["id"]), json={"assignee": eve.pk}, headers=auth(ana))
    response = await api.patch(url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert_problem(response, 404)


async def test_stranger_gets_same_404_as_for_missing_task(api, task, eve):
    hidden = assert_problem(await api.get(url(task["id"]), headers=auth(eve)), 404)
    missing = assert_problem(await api.get(url(MISSING_ID), headers=auth(eve)), 404)
    assert hidden["detail"] == missing["detail"]


async def test_stranger_with_stale_if_match_gets_404_not_412(api, task, eve):
    response = await api.patch(
        url(task["id"]), json={"title": "x"}, headers={**auth(eve), "If-Match": '"7"'}
    )
    assert_problem(response, 404)


# --- The assignee by name (`assignee_user`) -------------------------------------------------


async def test_every_read_names_the_assignee(api, task, ana, bob):
    named = {"id": bob.pk, "username": "bob"}
    assert task["assignee_user"] == named
    assert (await read(api, task["id"], ana))["assignee_user"] == named
    listed = (await api.get(TASKS, headers=auth(ana))).json()["results"]
    assert [row["assignee_user"] for row in listed] == [named]


async def test_a_task_without_assignee_has_null_assignee_user(api, ana):
    response = await api.post(TASKS, json={"title": "Mine alone"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["assignee"], created["assignee_user"]) == (None, None)
    assert (await read(api, created["id"], ana))["assignee_user"] is None
    [row] = (await api.get(TASKS, headers=auth(ana))).json()["results"]
    assert row["assignee_user"] is None


async def test_create_with_assignee_names_them(api, ana, bob):
    response = await api.post(
        TASKS, json={"title": "For bob", "assignee": bob.pk}, headers=auth(ana)
    )
    assert response.status_code == 201, response.text
    assert response.json()["assignee_user"] == {"id": bob.pk, "username": "bob"}


@pytest.mark.parametrize("method", ["patch", "put"])
async def test_reassigning_names_the_new_assignee(api, task, ana, eve, method):
    body = {"title": task["title"], "assignee": eve.pk}
    response = await getattr(api, method)(url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] == {"id": eve.pk, "username": "eve"}
    assert (await read(api, task["id"], ana))["assignee_user"] == {"id": eve.pk, "username": "eve"}


async def test_unassigning_makes_assignee_user_null(api, task, ana):
    response = await api.patch(url(task["id"]), json={"assignee": None}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] is None
    assert (await read(api, task["id"], ana))["assignee_user"] is None


async def test_a_change_of_another_field_keeps_the_assignee_named(api, task, bob):
    response = await api.patch(url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_archive_and_restore_name_the_assignee(api, task, ana, bob):
    for action in ("archive", "restore"):
        response = await api.post(url(task["id"], action), headers=auth(ana))
        assert response.status_code == 200, response.text
        assert response.json()["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_assignee_user_in_body_is_ignored(api, task, ana, bob, eve):
    body = {"assignee_user": {"id": eve.pk, "username": "eve"}, "description": "Changed"}
    response = await api.patch(url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["assignee"], result["assignee_user"]) == (
        bob.pk,
        {"id": bob.pk, "username": "bob"},
    )


async def test_stale_if_match_problem_names_the_assignee(api, updated_task, ana, bob):
    response = await api.patch(
        url(updated_task["id"]), json={"title": "x"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    problem = assert_problem(response, 412)
    assert problem["current"]["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_an_assignee_deactivated_later_is_still_named(api, task, ana, bob):
    await User.objects.filter(pk=bob.pk).aupdate(is_active=False)
    assert (await read(api, task["id"], ana))["assignee_user"] == {"id": bob.pk, "username": "bob"}


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


def endpoint_url(path: str, task_id: str) -> str:
    return f"{TASKS}{path.format(id=task_id)}/" if path else TASKS


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_unauthenticated_request_is_401(api, task, root, method, path):
    body = {"title": "No token"} if method in ("PATCH", "PUT") or path == "" else None
    response = await api.request(method, endpoint_url(path, task["id"]), json=body)
    assert_problem(response, 401)
    assert await read(api, task["id"], root) == task


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_invalid_token_is_401(api, task, method, path):
    headers = {"Authorization": "Bearer not.a.token"}
    response = await api.request(method, endpoint_url(path, task["id"]), headers=headers)
    assert_problem(response, 401)


# --- Conditional requests -------------------------------------------------------------------


async def test_get_returns_etag_of_version(api, task, ana):
    response = await api.get(url(task["id"]), headers=auth(ana))
    assert response.headers["ETag"] == '"1"'


async def test_if_none_match_with_current_etag_is_304(api, task, ana):
    response = await api.get(url(task["id"]), headers={**auth(ana), "If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == '"1"'


async def test_if_none_match_listing_current_etag_is_304(api, task, ana):
    headers = {**auth(ana), "If-None-Match": '"5", "1"'}
    response = await api.get(url(task["id"]), headers=headers)
    assert response.status_code == 304


async def test_if_none_match_with_stale_etag_is_200(api, updated_task, ana):
    response = await api.get(url(updated_task["id"]), headers={**auth(ana), "If-None-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["title"] == "Newer"


async def test_if_none_match_does_not_reveal_hidden_task(api, task, eve):
    response = await api.get(url(task["id"]), headers={**auth(eve), "If-None-Match": '"1"'})
    assert_problem(response, 404)


async def test_patch_with_stale_if_match_is_412_with_current_task(api, updated_task, ana):
    now = await read(api, updated_task["id"], ana)
    response = await api.patch(
        url(updated_task["id"]),
        json={"title": "Lost update"},
        headers={**auth(ana), "If-Match": '"1"'},
    )
    problem = assert_problem(response, 412)
    assert problem["current"] == now
    assert await read(api, updated_task["id"], ana) == now


async def test_put_with_stale_if_match_is_412(api, updated_task, ana):
    response = await api.put(
        url(updated_task["id"]),
        json={"title": "Lost update"},
        headers={**auth(ana), "If-Match": '"1"'},
    )
    assert assert_problem(response, 412)["current"]["title"] == "Newer"


async def test_patch_with_matching_if_match_bumps_version(api, task, ana):
    response = await api.patch(
        url(task["id"]), json={"title": "Checked"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'


async def test_patch_with_if_match_star_succeeds(api, updated_task, ana):
    response = await api.patch(
        url(updated_task["id"]), json={"title": "Any"}, headers={**auth(ana), "If-Match": "*"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 3


@pytest.mark.parametrize(
    ("method", "action"), [("POST", "archive"), ("POST", "restore"), ("DELETE", "")]
)
async def test_stale_if_match_is_412_on_state_changes(api, archived_task, ana, method, action):
    now = await read(api, archived_task["id"], ana)
    response = await api.request(
        method, url(archived_task["id"], action), headers={**auth(ana), "If-Match": '"1"'}
    )
    assert assert_problem(response, 412)["current"] == now
    assert await read(api, archived_task["id"], ana) == now


async def test_delete_with_matching_if_match_succeeds(api, task, ana):
    response = await api.delete(url(task["id"]), headers={**auth(ana), "If-Match": '"1"'})
    assert response.status_code == 204, response.text


# --- Archive, restore, delete ---------------------------------------------------------------


async def test_archive_sets_archived_at_and_bumps_version(api, task, ana):
    response = await api.post(url(task["id"], "archive"), headers=auth(ana))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["archived_at"] is not None
    assert body["version"] == 2
    assert response.headers["ETag"] == '"2"'


async def test_archiving_archived_task_is_noop(api, archived_task, ana):
    before = await read(api, archived_task["id"], ana)
    response = await api.post(url(archived_task["id"], "archive"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == before


async def test_restore_clears_archived_at_and_bumps_version(api, archived_task, ana):
    response = await api.post(url(archived_task["id"], "restore"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["archived_at"] is None
    assert response.json()["version"] == 3


async def test_restoring_live_task_is_noop(api, task, ana):
    response = await api.post(url(task["id"], "restore"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == task


async def test_archived_task_is_still_readable(api, archived_task, bob):
    assert (await read(api, archived_task["id"], bob))["archived_at"] is not None


async def test_patch_on_archived_task_is_409(api, archived_task, ana):
    before = await read(api, archived_task["id"], ana)
    response = await api.patch(url(archived_task["id"]), json={"title": "x"}, headers=auth(ana))
    assert_problem(response, 409)
    assert await read(api, archived_task["id"], ana) == before


async def test_put_on_archived_task_is_409(api, archived_task, ana):
    response = await api.put(url(archived_task["id"]), json={"title": "x"}, headers=auth(ana))
    assert_problem(response, 409)


async def test_assignee_patch_on_archived_task_is_409(api, archived_task, bob):
    response = await api.patch(url(archived_task["id"]), json={"status": "done"}, headers=auth(bob))
    assert_problem(response, 409)


async def test_delete_is_204_then_task_is_gone(api, task, ana, bob):
    response = await api.delete(url(task["id"]), headers=auth(ana))
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.get(url(task["id"]), headers=auth(ana)), 404)
    assert task["id"] not in await list_ids(api, bob)


async def test_deleting_deleted_task_is_404(api, task, ana):
    await api.delete(url(task["id"]), headers=auth(ana))
    assert_problem(await api.delete(url(task["id"]), headers=auth(ana)), 404)


async def test_archived_task_may_be_deleted(api, archived_task, ana):
    response = await api.delete(url(archived_task["id"]), headers=auth(ana))
    assert response.status_code == 204, response.text


# --- Create and versioning ------------------------------------------------------------------


async def test_create_is_201_with_location_and_etag(api, ana):
    response = await api.post(TASKS, json={"title": "New"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"http://testserver{url(body['id'])}"


async def test_location_header_names_the_created_task(api, ana):
    created = await api.post(TASKS, json={"title": "New"}, headers=auth(ana))
    response = await api.get(created.headers["Location"], headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == created.json()


async def test_version_increases_by_one_on_every_change(api, task, ana):
    versions = []
    for method, path, body in [
        ("PATCH", url(task["id"]), {"status": "in_progress"}),
        ("PUT", url(task["id"]), {"title": "Whole", "assignee": task["assignee"]}),
        ("POST", url(task["id"], "archive"), None),
        ("POST", url(task["id"], "restore"), None),
    ]:
        response = await api.request(method, path, json=body, headers=auth(ana))
        assert response.status_code == 200, response.text
        versions.append(response.json()["version"])
    assert versions == [2, 3, 4, 5]


async def test_patch_that_changes_nothing_keeps_version(api, task, ana):
    response = await api.patch(
        url(task["id"]), json={"title": task["title"], "status": "todo"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.headers["ETag"] == '"1"'


async def test_put_that_changes_nothing_keeps_version(api, task, ana):
    body = {"title": task["title"], "assignee": task["assignee"]}
    response = await api.put(url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == task

"""A task's lifecycle: create (201, Location, ETag), versioning, archive, restore and
delete."""

import pytest

from apps.tests.conftest import (
    TASKS,
    assert_problem,
    auth,
    list_task_ids,
    read_task,
    task_url,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- Archive, restore, delete ---------------------------------------------------------------


async def test_archive_sets_archived_at_and_bumps_version(api, task, ana):
    response = await api.post(task_url(task["id"], "archive"), headers=auth(ana))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["archived_at"] is not None
    assert body["version"] == 2
    assert response.headers["ETag"] == '"2"'


async def test_archiving_archived_task_is_noop(api, archived_task, ana):
    before = await read_task(api, archived_task["id"], ana)
    response = await api.post(task_url(archived_task["id"], "archive"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == before


async def test_restore_clears_archived_at_and_bumps_version(api, archived_task, ana):
    response = await api.post(task_url(archived_task["id"], "restore"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["archived_at"] is None
    assert response.json()["version"] == 3


async def test_restoring_live_task_is_noop(api, task, ana):
    response = await api.post(task_url(task["id"], "restore"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == task


async def test_archived_task_is_still_readable(api, archived_task, bob):
    assert (await read_task(api, archived_task["id"], bob))["archived_at"] is not None


async def test_patch_on_archived_task_is_409(api, archived_task, ana):
    before = await read_task(api, archived_task["id"], ana)
    response = await api.patch(
        task_url(archived_task["id"]), json={"title": "x"}, headers=auth(ana)
    )
    assert_problem(response, 409)
    assert await read_task(api, archived_task["id"], ana) == before


async def test_put_on_archived_task_is_409(api, archived_task, ana):
    response = await api.put(task_url(archived_task["id"]), json={"title": "x"}, headers=auth(ana))
    assert_problem(response, 409)


async def test_assignee_patch_on_archived_task_is_409(api, archived_task, bob):
    response = await api.patch(
        task_url(archived_task["id"]), json={"status": "done"}, headers=auth(bob)
    )
    assert_problem(response, 409)


async def test_delete_is_204_then_task_is_gone(api, task, ana, bob):
    response = await api.delete(task_url(task["id"]), headers=auth(ana))
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.get(task_url(task["id"]), headers=auth(ana)), 404)
    assert task["id"] not in await list_task_ids(api, bob)


async def test_deleting_deleted_task_is_404(api, task, ana):
    await api.delete(task_url(task["id"]), headers=auth(ana))
    assert_problem(await api.delete(task_url(task["id"]), headers=auth(ana)), 404)


async def test_archived_task_may_be_deleted(api, archived_task, ana):
    response = await api.delete(task_url(archived_task["id"]), headers=auth(ana))
    assert response.status_code == 204, response.text


# --- Create and versioning ------------------------------------------------------------------


async def test_create_is_201_with_location_and_etag(api, ana):
    response = await api.post(TASKS, json={"title": "New"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"http://testserver{task_url(body['id'])}"


async def test_location_header_names_the_created_task(api, ana):
    created = await api.post(TASKS, json={"title": "New"}, headers=auth(ana))
    response = await api.get(created.headers["Location"], headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == created.json()


async def test_version_increases_by_one_on_every_change(api, task, ana):
    versions = []
    for method, path, body in [
        ("PATCH", task_url(task["id"]), {"status": "in_progress"}),
        ("PUT", task_url(task["id"]), {"title": "Whole", "assignee": task["assignee"]}),
        ("POST", task_url(task["id"], "archive"), None),
        ("POST", task_url(task["id"], "restore"), None),
    ]:
        response = await api.request(method, path, json=body, headers=auth(ana))
        assert response.status_code == 200, response.text
        versions.append(response.json()["version"])
    assert versions == [2, 3, 4, 5]


async def test_patch_that_changes_nothing_keeps_version(api, task, ana):
    response = await api.patch(
        task_url(task["id"]), json={"title": task["title"], "status": "todo"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.headers["ETag"] == '"1"'


async def test_put_that_changes_nothing_keeps_version(api, task, ana):
    body = {"title": task["title"], "assignee": task["assignee"]}
    response = await api.put(task_url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == task

"""Conditional requests on tasks: ETag, If-None-Match (304) and If-Match (412 with the
current task)."""

import pytest

from apps.tests.conftest import (
    assert_problem,
    auth,
    read_task,
    task_url,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- Conditional requests -------------------------------------------------------------------


async def test_get_returns_etag_of_version(api, task, ana):
    response = await api.get(task_url(task["id"]), headers=auth(ana))
    assert response.headers["ETag"] == '"1"'


async def test_if_none_match_with_current_etag_is_304(api, task, ana):
    response = await api.get(task_url(task["id"]), headers={**auth(ana), "If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == '"1"'


async def test_if_none_match_listing_current_etag_is_304(api, task, ana):
    headers = {**auth(ana), "If-None-Match": '"5", "1"'}
    response = await api.get(task_url(task["id"]), headers=headers)
    assert response.status_code == 304


async def test_if_none_match_with_stale_etag_is_200(api, updated_task, ana):
    response = await api.get(
        task_url(updated_task["id"]), headers={**auth(ana), "If-None-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["title"] == "Newer"


async def test_if_none_match_does_not_reveal_hidden_task(api, task, eve):
    response = await api.get(task_url(task["id"]), headers={**auth(eve), "If-None-Match": '"1"'})
    assert_problem(response, 404)


async def test_patch_with_stale_if_match_is_412_with_current_task(api, updated_task, ana):
    now = await read_task(api, updated_task["id"], ana)
    response = await api.patch(
        task_url(updated_task["id"]),
        json={"title": "Lost update"},
        headers={**auth(ana), "If-Match": '"1"'},
    )
    problem = assert_problem(response, 412)
    assert problem["current"] == now
    assert await read_task(api, updated_task["id"], ana) == now


async def test_put_with_stale_if_match_is_412(api, updated_task, ana):
    response = await api.put(
        task_url(updated_task["id"]),
        json={"title": "Lost update"},
        headers={**auth(ana), "If-Match": '"1"'},
    )
    assert assert_problem(response, 412)["current"]["title"] == "Newer"


async def test_patch_with_matching_if_match_bumps_version(api, task, ana):
    response = await api.patch(
        task_url(task["id"]), json={"title": "Checked"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'


async def test_patch_with_if_match_star_succeeds(api, updated_task, ana):
    response = await api.patch(
        task_url(updated_task["id"]), json={"title": "Any"}, headers={**auth(ana), "If-Match": "*"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 3


@pytest.mark.parametrize(
    ("method", "action"), [("POST", "archive"), ("POST", "restore"), ("DELETE", "")]
)
async def test_stale_if_match_is_412_on_state_changes(api, archived_task, ana, method, action):
    now = await read_task(api, archived_task["id"], ana)
    response = await api.request(
        method, task_url(archived_task["id"], action), headers={**auth(ana), "If-Match": '"1"'}
    )
    assert assert_problem(response, 412)["current"] == now
    assert await read_task(api, archived_task["id"], ana) == now


async def test_delete_with_matching_if_match_succeeds(api, task, ana):
    response = await api.delete(task_url(task["id"]), headers={**auth(ana), "If-Match": '"1"'})
    assert response.status_code == 204, response.text

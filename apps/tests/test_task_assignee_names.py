"""Tasks name their assignee: `assignee_user` ({id, username} or null) beside `assignee`,
in every answer and as the assignee changes."""

import pytest

from apps.tests.conftest import (
    TASKS,
    assert_problem,
    auth,
    read_task,
    task_url,
)
from apps.users.models import User

pytestmark = pytest.mark.django_db(transaction=True)


# --- The assignee by name (`assignee_user`) -------------------------------------------------


async def test_every_read_names_the_assignee(api, task, ana, bob):
    named = {"id": bob.pk, "username": "bob"}
    assert task["assignee_user"] == named
    assert (await read_task(api, task["id"], ana))["assignee_user"] == named
    listed = (await api.get(TASKS, headers=auth(ana))).json()["results"]
    assert [row["assignee_user"] for row in listed] == [named]


async def test_a_task_without_assignee_has_null_assignee_user(api, ana):
    response = await api.post(TASKS, json={"title": "Mine alone"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["assignee"], created["assignee_user"]) == (None, None)
    assert (await read_task(api, created["id"], ana))["assignee_user"] is None
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
    response = await getattr(api, method)(task_url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] == {"id": eve.pk, "username": "eve"}
    assert (await read_task(api, task["id"], ana))["assignee_user"] == {
        "id": eve.pk,
        "username": "eve",
    }


async def test_unassigning_makes_assignee_user_null(api, task, ana):
    response = await api.patch(task_url(task["id"]), json={"assignee": None}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] is None
    assert (await read_task(api, task["id"], ana))["assignee_user"] is None


async def test_a_change_of_another_field_keeps_the_assignee_named(api, task, bob):
    response = await api.patch(task_url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.json()["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_archive_and_restore_name_the_assignee(api, task, ana, bob):
    for action in ("archive", "restore"):
        response = await api.post(task_url(task["id"], action), headers=auth(ana))
        assert response.status_code == 200, response.text
        assert response.json()["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_assignee_user_in_body_is_ignored(api, task, ana, bob, eve):
    body = {"assignee_user": {"id": eve.pk, "username": "eve"}, "description": "Changed"}
    response = await api.patch(task_url(task["id"]), json=body, headers=auth(ana))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["assignee"], result["assignee_user"]) == (
        bob.pk,
        {"id": bob.pk, "username": "bob"},
    )


async def test_stale_if_match_problem_names_the_assignee(api, updated_task, ana, bob):
    response = await api.patch(
        task_url(updated_task["id"]), json={"title": "x"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    problem = assert_problem(response, 412)
    assert problem["current"]["assignee_user"] == {"id": bob.pk, "username": "bob"}


async def test_an_assignee_deactivated_later_is_still_named(api, task, ana, bob):
    await User.objects.filter(pk=bob.pk).aupdate(is_active=False)
    assert (await read_task(api, task["id"], ana))["assignee_user"] == {
        "id": bob.pk,
        "username": "bob",
    }

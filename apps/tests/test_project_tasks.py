"""Tasks in projects: who sees them, who changes them, where they may go, and who hears of
each change (REST and the live stream)."""

import pytest
from asgiref.sync import sync_to_async

from apps.tasks.models import Membership
from apps.tests.conftest import (
    MISSING_ID,
    TASKS,
    assert_problem,
    auth,
    in_db,
    list_task_ids,
    read_task,
    run_relay_once,
    task_url,
)
from apps.tests.test_realtime_consumer import assert_silent, receive_events, stream_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(make_user, make_project, ana, bob, eve):
    """ana owns "Team"; bob is a member, vic a viewer; eve is a stranger."""
    vic = make_user("vic")
    project = make_project(ana, name="Team", members={bob: "member", vic: "viewer"})
    return project, vic


@pytest.fixture
def team_task(team, make_task, ana):
    """ana's task in Team, assigned to nobody."""
    project, _ = team
    return make_task(ana, title="Shared", project_id=project.pk)


async def stream_types(api, user, after: int = 0) -> list[tuple[str, str | None]]:
    """(type, task id) of every event in the user's stream after `after`."""
    response = await api.get("/api/v1/events/", params={"after": after}, headers=auth(user))
    assert response.status_code == 200, response.text
    return [
        (event["type"], (event.get("task") or {}).get("id")) for event in response.json()["results"]
    ]


async def last_seq(api, user) -> int:
    response = await api.get("/api/v1/events/", params={"limit": 200}, headers=auth(user))
    results = response.json()["results"]
    return results[-1]["seq"] if results else 0


async def remove_member(project, user) -> None:
    await Membership.objects.filter(project=project, user=user).adelete()


# --- Visibility --------------------------------------------------------------------------------


async def test_every_member_sees_a_project_task(api, team, team_task, bob):
    _, vic = team
    for member in (bob, vic):
        assert (await read_task(api, team_task["id"], member))["project"] == str(team[0].pk)
        assert team_task["id"] in await list_task_ids(api, member)


async def test_a_stranger_gets_404_for_a_project_task(api, team_task, eve):
    response = await api.get(task_url(team_task["id"]), headers=auth(eve))
    assert_problem(response, 404)
    assert team_task["id"] not in await list_task_ids(api, eve)


async def test_a_former_member_no_longer_sees_the_project_tasks(api, team, team_task, bob):
    await remove_member(team[0], bob)
    assert_problem(await api.get(task_url(team_task["id"]), headers=auth(bob)), 404)


async def test_an_assignee_who_left_the_project_still_sees_their_task(
    api, team, make_task, ana, bob
):
    task = await in_db(make_task, ana, project_id=team[0].pk, assignee_id=bob.pk)
    await remove_member(team[0], bob)
    assert (await read_task(api, task["id"], bob))["assignee"] == bob.pk


async def test_the_admin_sees_every_project_task(api, team_task, root):
    assert team_task["id"] in await list_task_ids(api, root)


async def test_the_project_filter_lists_one_projects_tasks(api, team, team_task, make_task, ana):
    personal = await in_db(make_task, ana, title="Mine")
    assert await list_task_ids(api, ana, project=str(team[0].pk)) == {team_task["id"]}
    assert await list_task_ids(api, ana, project="none") == {personal["id"]}
    assert await list_task_ids(api, ana) == {team_task["id"], personal["id"]}


async def test_a_project_filter_that_is_not_an_id_is_400(api, ana):
    response = await api.get(TASKS, params={"project": "team"}, headers=auth(ana))
    assert "project" in assert_problem(response, 400)["errors"]


async def test_filtering_by_someone_elses_project_lists_nothing(
    api, make_project, make_task, eve, ana
):
    other = await in_db(make_project, eve, name="Eve's")
    await in_db(make_task, eve, project_id=other.pk)
    assert await list_task_ids(api, ana, project=str(other.pk)) == set()


# --- Rights ----------------------------------------------------------------------------------


async def test_a_member_changes_every_field_of_anothers_task(api, team_task, bob):
    response = await api.patch(
        task_url(team_task["id"]),
        json={"title": "Renamed", "priority": "high", "assignee": bob.pk},
        headers=auth(bob),
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Renamed"


@pytest.mark.parametrize("action", ["archive", "restore"])
async def test_a_member_archives_and_restores_project_tasks(api, team_task, bob, action):
    if action == "restore":
        await api.post(task_url(team_task["id"], "archive"), headers=auth(bob))
    response = await api.post(task_url(team_task["id"], action), headers=auth(bob))
    assert response.status_code == 200, response.text


async def test_a_member_deletes_a_project_task(api, team_task, bob):
    response = await api.delete(task_url(team_task["id"]), headers=auth(bob))
    assert response.status_code == 204


async def test_a_viewer_cannot_change_a_project_task(api, team, team_task):
    _, vic = team
    response = await api.patch(
        task_url(team_task["id"]), json={"status": "done"}, headers=auth(vic)
    )
    assert_problem(response, 403)
    assert_problem(await api.post(task_url(team_task["id"], "archive"), headers=auth(vic)), 403)
    assert_problem(await api.delete(task_url(team_task["id"]), headers=auth(vic)), 403)


async def test_a_viewer_cannot_create_a_task_in_the_project(api, team):
    project, vic = team
    response = await api.post(
        TASKS, json={"title": "Sneaky", "project": str(project.pk)}, headers=auth(vic)
    )
    assert_problem(response, 403)


async def test_a_member_creates_a_task_in_the_project(api, team, bob, ana):
    project, _ = team
    response = await api.post(
        TASKS, json={"title": "Ours", "project": str(project.pk)}, headers=auth(bob)
    )
    assert response.status_code == 201, response.text
    assert response.json()["project"] == str(project.pk)
    assert response.json()["id"] in await list_task_ids(api, ana)


@pytest.mark.parametrize("project_id", ["stranger's", MISSING_ID])
async def test_creating_in_a_project_one_is_not_in_is_400(api, make_project, eve, ana, project_id):
    if project_id == "stranger's":
        project_id = str((await in_db(make_project, eve, name="Eve's")).pk)
    response = await api.post(
        TASKS, json={"title": "Sneaky", "project": project_id}, headers=auth(ana)
    )
    assert "project" in assert_problem(response, 400)["errors"]


async def test_a_project_that_is_not_a_uuid_is_400(api, ana):
    response = await api.post(TASKS, json={"title": "T", "project": "team"}, headers=auth(ana))
    assert "project" in assert_problem(response, 400)["errors"]


async def test_an_assignee_outside_the_project_keeps_the_assignee_rights(
    api, team, make_task, ana, bob
):
    task = await in_db(make_task, ana, project_id=team[0].pk, assignee_id=bob.pk)
    await remove_member(team[0], bob)
    done = await api.patch(task_url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert done.status_code == 200, done.text
    renamed = await api.patch(task_url(task["id"]), json={"title": "x"}, headers=auth(bob))
    assert_problem(renamed, 403)


async def test_a_creator_who_left_the_project_only_reads_their_task(api, team, make_task, bob):
    task = await in_db(make_task, bob, project_id=team[0].pk)
    await remove_member(team[0], bob)
    assert (await read_task(api, task["id"], bob))["id"] == task["id"]
    response = await api.patch(task_url(task["id"]), json={"status": "done"}, headers=auth(bob))
    assert_problem(response, 403)


async def test_the_admin_changes_a_project_task(api, team_task, root):
    response = await api.patch(
        task_url(team_task["id"]), json={"title": "By root"}, headers=auth(root)
    )
    assert response.status_code == 200, response.text


# --- Assignees -------------------------------------------------------------------------------


async def test_a_viewer_cannot_be_assigned_a_project_task(api, team, team_task, ana):
    _, vic = team
    response = await api.patch(
        task_url(team_task["id"]), json={"assignee": vic.pk}, headers=auth(ana)
    )
    assert "assignee" in assert_problem(response, 400)["errors"]


async def test_someone_outside_the_project_cannot_be_assigned(api, team, eve, ana):
    response = await api.post(
        TASKS,
        json={"title": "T", "project": str(team[0].pk), "assignee": eve.pk},
        headers=auth(ana),
    )
    assert "assignee" in assert_problem(response, 400)["errors"]


async def test_an_assignee_demoted_to_viewer_stays_assigned_through_other_edits(
    api, team, make_task, ana, bob
):
    task = await in_db(make_task, ana, project_id=team[0].pk, assignee_id=bob.pk)
    await Membership.objects.filter(project=team[0], user=bob).aupdate(role="viewer")
    response = await api.patch(
        task_url(task["id"]), json={"title": "Still bob's"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == bob.pk


# --- Moving between projects ----------------------------------------------------------------


async def test_the_creator_moves_a_personal_task_into_their_project(api, team, make_task, ana):
    task = await in_db(make_task, ana)
    response = await api.patch(
        task_url(task["id"]), json={"project": str(team[0].pk)}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json()["project"] == str(team[0].pk)


async def test_moving_into_a_project_where_one_is_a_viewer_is_403(
    api, make_project, team_task, eve, bob
):
    other = await in_db(make_project, eve, name="Eve's", members={bob: "viewer"})
    response = await api.patch(
        task_url(team_task["id"]), json={"project": str(other.pk)}, headers=auth(bob)
    )
    assert_problem(response, 403)


async def test_a_member_moves_a_task_between_projects_they_edit(
    api, make_project, team_task, eve, bob, ana
):
    other = await in_db(make_project, eve, name="Eve's", members={bob: "member"})
    response = await api.patch(
        task_url(team_task["id"]), json={"project": str(other.pk)}, headers=auth(bob)
    )
    assert response.status_code == 200, response.text
    # ana created it, so she still sees it; eve now does too.
    assert (await read_task(api, team_task["id"], eve))["project"] == str(other.pk)


async def test_only_the_creator_makes_a_project_task_personal(api, team_task, bob, ana):
    response = await api.patch(task_url(team_task["id"]), json={"project": None}, headers=auth(bob))
    assert_problem(response, 403)
    response = await api.patch(task_url(team_task["id"]), json={"project": None}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["project"] is None


async def test_members_of_the_project_a_task_left_get_one_last_event(
    api, team, team_task, ana, bob
):
    _, vic = team
    before = await last_seq(api, vic)
    await api.patch(task_url(team_task["id"]), json={"project": None}, headers=auth(ana))
    assert await stream_types(api, vic, before) == [("task.updated", team_task["id"])]
    await api.patch(task_url(team_task["id"]), json={"title": "Private now"}, headers=auth(ana))
    assert await stream_types(api, vic, before) == [("task.updated", team_task["id"])]
    assert_problem(await api.get(task_url(team_task["id"]), headers=auth(vic)), 404)


# --- Archived projects ------------------------------------------------------------------------


async def test_a_task_of_an_archived_project_is_read_only(api, team, team_task, ana):
    from django.utils import timezone

    project, _ = team
    project.archived_at = timezone.now()
    await sync_to_async(project.save)(update_fields=["archived_at"])
    response = await api.patch(task_url(team_task["id"]), json={"title": "x"}, headers=auth(ana))
    assert assert_problem(response, 409)["code"] == "project_archived"
    response = await api.post(
        TASKS, json={"title": "New", "project": str(project.pk)}, headers=auth(ana)
    )
    assert assert_problem(response, 409)["code"] == "project_archived"
    assert (await read_task(api, team_task["id"], ana))["title"] == "Shared"


# --- Who hears of a change --------------------------------------------------------------------


async def test_a_project_task_change_reaches_every_member_and_no_stranger(
    api, team, team_task, ana, bob, eve, root
):
    _, vic = team
    await api.patch(task_url(team_task["id"]), json={"status": "done"}, headers=auth(bob))
    for person in (ana, bob, vic, root):
        assert ("task.updated", team_task["id"]) in await stream_types(api, person)
    assert await stream_types(api, eve) == []


async def test_a_removed_member_hears_nothing_of_later_changes(api, team, team_task, bob, ana):
    before = await last_seq(api, bob)
    await remove_member(team[0], bob)
    await api.patch(task_url(team_task["id"]), json={"status": "done"}, headers=auth(ana))
    assert await stream_types(api, bob, before) == []


async def test_a_member_socket_receives_project_task_changes_live(api, team, team_task, ana):
    _, vic = team
    async with stream_of(vic) as (socket, _):
        await api.patch(task_url(team_task["id"]), json={"title": "Live"}, headers=auth(ana))
        await run_relay_once()
        (event,) = await receive_events(socket, 1)
        assert event["type"] == "task.updated"
        assert event["task"]["title"] == "Live"
        assert event["changes"] == {"title": ["Shared", "Live"]}


async def test_a_removed_members_socket_receives_nothing_more(api, team, team_task, ana, bob):
    async with stream_of(bob) as (socket, _):
        await remove_member(team[0], bob)
        await api.patch(task_url(team_task["id"]), json={"title": "Without bob"}, headers=auth(ana))
        await run_relay_once()
        await assert_silent(socket)

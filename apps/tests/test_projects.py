"""Projects through the API: create (201, Location, ETag, the creator its first owner),
the list (visibility, the `archived` filter, cursor pages), read with ETags, rename,
archive, restore and delete, who may do which, and the events each change sends."""

import pytest

from apps.tasks import services
from apps.tests.conftest import (
    MISSING_ID,
    PROJECTS,
    assert_problem,
    auth,
    in_db,
    project_url,
)

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events/"


async def create_project(api, user, **body) -> dict:
    response = await api.post(PROJECTS, json={"name": "Launch", **body}, headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()


async def read_project(api, project_id, user) -> dict:
    response = await api.get(project_url(project_id), headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def listed_names(api, user, **params) -> list[str]:
    response = await api.get(PROJECTS, params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return [project["name"] for project in response.json()["results"]]


async def stream(api, user) -> list[dict]:
    """Every event in the user's stream, oldest first."""
    response = await api.get(EVENTS, params={"limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def event_types(api, user) -> list[str]:
    return [event["type"] for event in await stream(api, user)]


@pytest.fixture
def vic(make_user):
    return make_user("vic")


@pytest.fixture
def team(make_project, ana, bob, vic):
    """ana's project, with bob a member and vic a viewer."""
    return make_project(ana, name="Team", members={bob: "member", vic: "viewer"})


# --- Create -----------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_etag(api, ana):
    response = await api.post(PROJECTS, json={"name": "Launch"}, headers=auth(ana))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"http://testserver{project_url(body['id'])}"
    assert response.headers["ETag"] == '"1"'


async def test_creator_is_the_first_owner(api, ana):
    body = await create_project(api, ana, description="Ship it")
    assert body["created_by"] == {"id": ana.pk, "username": "ana"}
    assert (body["my_role"], body["member_count"]) == ("owner", 1)


async def test_created_project_reads_back_as_created(api, ana):
    body = await create_project(api, ana, description="Ship it")
    assert await read_project(api, body["id"], ana) == body


async def test_name_is_trimmed(api, ana):
    body = await create_project(api, ana, name="  Launch  ")
    assert body["name"] == "Launch"


async def test_blank_name_is_400(api, ana):
    response = await api.post(PROJECTS, json={"name": "   "}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_missing_name_is_400(api, ana):
    response = await api.post(PROJECTS, json={"description": "x"}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_name_of_101_characters_is_400(api, ana):
    response = await api.post(PROJECTS, json={"name": "n" * 101}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_name_of_100_characters_is_accepted(api, ana):
    assert (await create_project(api, ana, name="n" * 100))["name"] == "n" * 100


async def test_description_of_2001_characters_is_400(api, ana):
    response = await api.post(
        PROJECTS, json={"name": "Launch", "description": "d" * 2001}, headers=auth(ana)
    )
    assert "description" in assert_problem(response, 400)["errors"]


async def test_name_that_is_not_a_string_is_400(api, ana):
    response = await api.post(PROJECTS, json={"name": 5}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_unknown_field_is_400(api, ana):
    response = await api.post(PROJECTS, json={"name": "Launch", "owner": 3}, headers=auth(ana))
    assert "owner" in assert_problem(response, 400)["errors"]


async def test_body_that_is_not_an_object_is_400(api, ana):
    response = await api.post(PROJECTS, json=["Launch"], headers=auth(ana))
    assert_problem(response, 400)


async def test_second_project_of_the_same_name_in_other_case_is_400(api, ana):
    await create_project(api, ana, name="Launch")
    response = await api.post(PROJECTS, json={"name": "LAUNCH"}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_another_creator_may_use_the_same_name(api, ana, bob):
    await create_project(api, ana, name="Launch")
    assert (await create_project(api, bob, name="launch"))["name"] == "launch"


async def test_create_without_token_is_401(api):
    assert_problem(await api.post(PROJECTS, json={"name": "Launch"}), 401)


# --- List -------------------------------------------------------------------------------


async def test_list_shows_only_the_callers_projects(api, make_project, ana, bob, eve):
    await in_db(make_project, ana, name="Ana's")
    await in_db(make_project, bob, name="Shared", members={ana: "viewer"})
    await in_db(make_project, eve, name="Eve's")
    assert await listed_names(api, ana) == ["Ana's", "Shared"]


async def test_list_gives_the_callers_role_and_member_count(api, team, bob):
    response = await api.get(PROJECTS, headers=auth(bob))
    [project] = response.json()["results"]
    assert (project["my_role"], project["member_count"]) == ("member", 3)


async def test_admin_lists_every_project_with_no_role_where_not_a_member(
    api, make_project, ana, eve, root
):
    await in_db(make_project, ana, name="Ana's")
    await in_db(make_project, eve, name="Eve's")
    response = await api.get(PROJECTS, headers=auth(root))
    assert [(p["name"], p["my_role"]) for p in response.json()["results"]] == [
        ("Ana's", None),
        ("Eve's", None),
    ]


async def test_list_is_ordered_by_name_whatever_its_case(api, make_project, ana):
    for name in ("beta", "Alpha", "gamma"):
        await in_db(make_project, ana, name=name)
    assert await listed_names(api, ana) == ["Alpha", "beta", "gamma"]


async def test_list_leaves_out_archived_projects_by_default(api, make_project, ana):
    await in_db(make_project, ana, name="Live")
    await in_db(make_project, ana, name="Old", archived_at="2026-01-01T00:00:00Z")
    assert await listed_names(api, ana) == ["Live"]


async def test_archived_true_lists_only_archived_projects(api, make_project, ana):
    await in_db(make_project, ana, name="Live")
    await in_db(make_project, ana, name="Old", archived_at="2026-01-01T00:00:00Z")
    assert await listed_names(api, ana, archived="true") == ["Old"]


async def test_archived_all_lists_both(api, make_project, ana):
    await in_db(make_project, ana, name="Live")
    await in_db(make_project, ana, name="Old", archived_at="2026-01-01T00:00:00Z")
    assert await listed_names(api, ana, archived="all") == ["Live", "Old"]


async def test_unknown_archived_value_is_400(api, ana):
    response = await api.get(PROJECTS, params={"archived": "yes"}, headers=auth(ana))
    assert "archived" in assert_problem(response, 400)["errors"]


async def test_unknown_list_parameter_is_400(api, ana):
    response = await api.get(PROJECTS, params={"owner": "me"}, headers=auth(ana))
    assert "owner" in assert_problem(response, 400)["errors"]


async def test_list_pages_forward_and_back_with_cursors(api, make_project, ana):
    for name in ("a", "b", "c"):
        await in_db(make_project, ana, name=name)
    first = (await api.get(PROJECTS, params={"limit": 2}, headers=auth(ana))).json()
    second = (await api.get(first["next"], headers=auth(ana))).json()
    back = (await api.get(second["previous"], headers=auth(ana))).json()
    assert [p["name"] for p in first["results"]] == ["a", "b"]
    assert [p["name"] for p in second["results"]] == ["c"]
    assert second["next"] is None
    assert back["results"] == first["results"]


async def test_cursor_that_was_not_given_out_is_400(api, ana):
    response = await api.get(PROJECTS, params={"cursor": "bogus"}, headers=auth(ana))
    assert "cursor" in assert_problem(response, 400)["errors"]


# --- Read -------------------------------------------------------------------------------


async def test_get_answers_with_the_etag_of_the_version(api, team, bob):
    response = await api.get(project_url(team.pk), headers=auth(bob))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"1"'


async def test_if_none_match_with_the_current_etag_is_304(api, team, bob):
    response = await api.get(project_url(team.pk), headers={**auth(bob), "If-None-Match": '"1"'})
    assert response.status_code == 304
    assert response.content == b""


async def test_viewer_reads_the_project(api, team, vic):
    assert (await read_project(api, team.pk, vic))["my_role"] == "viewer"


async def test_admin_reads_a_project_outside_it(api, team, root):
    assert (await read_project(api, team.pk, root))["my_role"] is None


async def test_stranger_gets_404(api, team, eve):
    assert_problem(await api.get(project_url(team.pk), headers=auth(eve)), 404)


async def test_missing_project_is_404(api, ana):
    assert_problem(await api.get(project_url(MISSING_ID), headers=auth(ana)), 404)


async def test_id_that_is_not_a_uuid_is_404(api, ana):
    body = assert_problem(await api.get(project_url("not-a-uuid"), headers=auth(ana)), 404)
    assert "not a project id" in body["detail"]


# --- Update -----------------------------------------------------------------------------


async def test_owner_renames_the_project(api, team, ana):
    response = await api.patch(project_url(team.pk), json={"name": "Crew"}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["version"]) == ("Crew", 2)
    assert response.headers["ETag"] == '"2"'


async def test_rename_sends_project_updated_with_the_changes_to_every_member(
    api, team, ana, bob, vic, eve
):
    await api.patch(project_url(team.pk), json={"description": "Ours"}, headers=auth(ana))
    for member in (ana, bob, vic):
        [event] = await stream(api, member)
        assert event["type"] == "project.updated"
        assert event["changes"] == {"description": ["", "Ours"]}
        assert event["project"]["id"] == str(team.pk)
    assert await stream(api, eve) == []


async def test_admin_receives_the_events_of_every_project(api, team, ana, root):
    await api.patch(project_url(team.pk), json={"description": "Ours"}, headers=auth(ana))
    assert await event_types(api, root) == ["project.updated"]


async def test_admin_renames_a_project_outside_it(api, team, root):
    response = await api.patch(project_url(team.pk), json={"name": "Crew"}, headers=auth(root))
    assert response.status_code == 200, response.text


async def test_member_may_not_rename_the_project(api, team, bob):
    response = await api.patch(project_url(team.pk), json={"name": "Mine"}, headers=auth(bob))
    assert_problem(response, 403)


async def test_viewer_may_not_rename_the_project(api, team, vic):
    response = await api.patch(project_url(team.pk), json={"name": "Mine"}, headers=auth(vic))
    assert_problem(response, 403)


async def test_stranger_renaming_gets_404(api, team, eve):
    response = await api.patch(project_url(team.pk), json={"name": "Mine"}, headers=auth(eve))
    assert_problem(response, 404)


async def test_rename_to_another_project_name_of_the_creator_is_400(api, make_project, team, ana):
    await in_db(make_project, ana, name="Other")
    response = await api.patch(project_url(team.pk), json={"name": "other"}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_rename_to_blank_is_400(api, team, ana):
    response = await api.patch(project_url(team.pk), json={"name": ""}, headers=auth(ana))
    assert "name" in assert_problem(response, 400)["errors"]


async def test_patch_of_a_read_only_field_with_another_value_changes_nothing(api, team, ana):
    response = await api.patch(project_url(team.pk), json={"version": 9}, headers=auth(ana))
    assert response.json()["version"] == 1


async def test_patch_that_changes_nothing_keeps_the_version_and_sends_nothing(api, team, ana):
    response = await api.patch(project_url(team.pk), json={"name": "Team"}, headers=auth(ana))
    assert response.json()["version"] == 1
    assert await stream(api, ana) == []


async def test_patch_with_a_stale_if_match_is_412_with_the_current_project(api, team, ana):
    await api.patch(project_url(team.pk), json={"name": "Crew"}, headers=auth(ana))
    response = await api.patch(
        project_url(team.pk), json={"name": "Lost"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    problem = assert_problem(response, 412)
    assert problem["current"] == await read_project(api, team.pk, ana)


async def test_patch_with_the_current_if_match_applies(api, team, ana):
    response = await api.patch(
        project_url(team.pk), json={"name": "Crew"}, headers={**auth(ana), "If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text


async def test_patch_of_an_archived_project_is_409(api, make_project, ana):
    project = await in_db(make_project, ana, archived_at="2026-01-01T00:00:00Z")
    response = await api.patch(project_url(project.pk), json={"name": "x"}, headers=auth(ana))
    assert_problem(response, 409)


# --- Archive and restore ----------------------------------------------------------------


async def test_archive_sets_archived_at_and_bumps_the_version(api, team, ana):
    response = await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json()["archived_at"] is not None
    assert response.headers["ETag"] == '"2"'


async def test_archive_sends_project_archived_to_the_members(api, team, ana, vic):
    await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    assert await event_types(api, vic) == ["project.archived"]


async def test_archiving_an_archived_project_is_a_noop(api, team, ana):
    first = await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    second = await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    assert second.status_code == 200
    assert second.json() == first.json()


async def test_restore_clears_archived_at_and_sends_project_restored(api, team, ana, bob):
    await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    response = await api.post(project_url(team.pk, "restore"), headers=auth(ana))
    assert (response.json()["archived_at"], response.json()["version"]) == (None, 3)
    assert await event_types(api, bob) == ["project.archived", "project.restored"]


async def test_restoring_a_live_project_is_a_noop(api, team, ana):
    response = await api.post(project_url(team.pk, "restore"), headers=auth(ana))
    assert response.json()["version"] == 1
    assert await stream(api, ana) == []


async def test_restored_project_may_be_renamed_again(api, team, ana):
    await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    await api.post(project_url(team.pk, "restore"), headers=auth(ana))
    response = await api.patch(project_url(team.pk), json={"name": "Crew"}, headers=auth(ana))
    assert response.status_code == 200, response.text


async def test_member_may_not_archive_the_project(api, team, bob):
    assert_problem(await api.post(project_url(team.pk, "archive"), headers=auth(bob)), 403)


async def test_stranger_archiving_gets_404(api, team, eve):
    assert_problem(await api.post(project_url(team.pk, "archive"), headers=auth(eve)), 404)


async def test_admin_archives_a_project_outside_it(api, team, root):
    response = await api.post(project_url(team.pk, "archive"), headers=auth(root))
    assert response.status_code == 200, response.text


async def test_archive_with_a_stale_if_match_is_412(api, team, ana):
    response = await api.post(
        project_url(team.pk, "archive"), headers={**auth(ana), "If-Match": '"7"'}
    )
    assert assert_problem(response, 412)["current"]["archived_at"] is None


# --- Delete -----------------------------------------------------------------------------


async def test_owner_deletes_an_empty_project(api, team, ana):
    response = await api.delete(project_url(team.pk), headers=auth(ana))
    assert response.status_code == 204, response.text
    assert_problem(await api.get(project_url(team.pk), headers=auth(ana)), 404)


async def test_delete_sends_project_deleted_to_every_member(api, team, ana, bob, vic):
    await api.delete(project_url(team.pk), headers=auth(ana))
    for member in (ana, bob, vic):
        [event] = await stream(api, member)
        assert (event["type"], event["project"]["id"]) == ("project.deleted", str(team.pk))


async def test_project_with_a_task_is_not_deleted(api, team, ana, make_task):
    await in_db(make_task, ana, project_id=team.pk)
    assert_problem(await api.delete(project_url(team.pk), headers=auth(ana)), 409)
    assert (await read_project(api, team.pk, ana))["id"] == str(team.pk)


async def test_project_with_only_an_archived_task_is_not_deleted(
    api, team, ana, make_task, change_task
):
    task = await in_db(make_task, ana, project_id=team.pk)
    await in_db(change_task, services.task_archive, task, ana)
    assert_problem(await api.delete(project_url(team.pk), headers=auth(ana)), 409)


async def test_member_may_not_delete_the_project(api, team, bob):
    assert_problem(await api.delete(project_url(team.pk), headers=auth(bob)), 403)


async def test_stranger_deleting_gets_404(api, team, eve):
    assert_problem(await api.delete(project_url(team.pk), headers=auth(eve)), 404)


async def test_admin_deletes_a_project_outside_it(api, team, root):
    assert (await api.delete(project_url(team.pk), headers=auth(root))).status_code == 204


async def test_delete_with_a_stale_if_match_is_412(api, team, ana):
    response = await api.delete(project_url(team.pk), headers={**auth(ana), "If-Match": '"3"'})
    assert_problem(response, 412)

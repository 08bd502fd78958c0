"""A project's members through the API: the list, adding someone (by id, username or
email), changing a role, removing someone or leaving; the rule that a project keeps an
owner; and who receives which event, before and after a membership change, including
when a membership change and a task change happen at once."""

import asyncio
import threading

import pytest
from django.db import connection, connections, transaction

from apps.common.errors import InvalidInput, NotAllowed, NotFound
from apps.tasks import comment_services, project_services, services
from apps.tasks.models import Comment, EventType, StreamEntry, Task, TaskEvent
from apps.tests.conftest import (
    MISSING_ID,
    assert_problem,
    auth,
    in_db,
    project_url,
    task_url,
)

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events/"


def members_url(project, user_id=None) -> str:
    url = project_url(project.pk, "members")
    return url if user_id is None else f"{url}{user_id}/"


async def stream(api, user) -> list[dict]:
    """Every event in the user's stream, oldest first."""
    response = await api.get(EVENTS, params={"limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def event_types(api, user) -> list[str]:
    return [event["type"] for event in await stream(api, user)]


async def member_roles(api, project, user) -> dict[str, str]:
    response = await api.get(members_url(project), headers=auth(user))
    assert response.status_code == 200, response.text
    return {member["user"]["username"]: member["role"] for member in response.json()["results"]}


@pytest.fixture
def vic(make_user):
    return make_user("vic")


@pytest.fixture
def cy(make_user):
    return make_user("cy")


@pytest.fixture
def team(make_project, ana, bob, vic):
    """ana's project, with bob a member and vic a viewer."""
    return make_project(ana, name="Team", members={bob: "member", vic: "viewer"})


# --- List -------------------------------------------------------------------------------


async def test_members_are_listed_by_username_with_their_roles(api, team, ana, vic):
    response = await api.get(members_url(team), headers=auth(vic))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(m["user"]["username"], m["role"]) for m in results] == [
        ("ana", "owner"),
        ("bob", "member"),
        ("vic", "viewer"),
    ]
    assert results[0]["user"] == {"id": ana.pk, "username": "ana"}
    assert results[0]["added_at"].endswith("Z")


async def test_member_list_pages_with_cursors(api, team, ana):
    first = (await api.get(members_url(team), params={"limit": 2}, headers=auth(ana))).json()
    second = (await api.get(first["next"], headers=auth(ana))).json()
    assert [m["user"]["username"] for m in first["results"]] == ["ana", "bob"]
    assert [m["user"]["username"] for m in second["results"]] == ["vic"]
    assert (second["next"], first["previous"]) == (None, None)


async def test_admin_lists_the_members_of_a_project_outside_it(api, team, root):
    assert set(await member_roles(api, team, root)) == {"ana", "bob", "vic"}


async def test_stranger_listing_members_gets_404(api, team, eve):
    assert_problem(await api.get(members_url(team), headers=auth(eve)), 404)


async def test_members_of_a_missing_project_is_404(api, ana):
    response = await api.get(f"/api/v1/projects/{MISSING_ID}/members/", headers=auth(ana))
    assert_problem(response, 404)


async def test_members_of_a_project_id_that_is_not_a_uuid_is_404(api, ana):
    assert_problem(await api.get("/api/v1/projects/nope/members/", headers=auth(ana)), 404)


async def test_member_list_limit_out_of_range_is_400(api, team, ana):
    response = await api.get(members_url(team), params={"limit": 0}, headers=auth(ana))
    assert "limit" in assert_problem(response, 400)["errors"]


async def test_unknown_member_list_parameter_is_400(api, team, ana):
    response = await api.get(members_url(team), params={"role": "owner"}, headers=auth(ana))
    assert "role" in assert_problem(response, 400)["errors"]


# --- Add --------------------------------------------------------------------------------


async def test_owner_adds_someone_by_id(api, team, ana, cy):
    response = await api.post(
        members_url(team), json={"user": cy.pk, "role": "viewer"}, headers=auth(ana)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["user"], body["role"]) == ({"id": cy.pk, "username": "cy"}, "viewer")
    assert response.headers["Location"] == f"http://testserver{members_url(team, cy.pk)}"


async def test_added_member_is_a_member_by_default(api, team, ana, cy):
    await api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana))
    assert (await member_roles(api, team, ana))["cy"] == "member"


async def test_owner_adds_someone_by_username_in_any_case(api, team, ana, cy):
    response = await api.post(members_url(team), json={"user": "CY"}, headers=auth(ana))
    assert response.json()["user"]["id"] == cy.pk


async def test_owner_adds_someone_by_email_in_any_case(api, team, ana, cy):
    response = await api.post(members_url(team), json={"user": "Cy@Example.com"}, headers=auth(ana))
    assert response.json()["user"]["id"] == cy.pk


async def test_added_person_sees_the_project(api, team, ana, cy):
    await api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana))
    response = await api.get(project_url(team.pk), headers=auth(cy))
    assert response.json()["my_role"] == "member"


async def test_adding_bumps_the_project_version_and_member_count(api, team, ana, cy):
    await api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana))
    project = (await api.get(project_url(team.pk), headers=auth(ana))).json()
    assert (project["version"], project["member_count"]) == (2, 4)


async def test_adding_sends_member_added_to_every_member_and_the_new_one(
    api, team, ana, bob, cy, eve
):
    await api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana))
    for person in (ana, bob, cy):
        [event] = await stream(api, person)
        assert event["type"] == "member.added"
        assert event["member"]["user"] == {"id": cy.pk, "username": "cy"}
        assert event["project"]["id"] == str(team.pk)
        assert event["actor"] == {"id": ana.pk, "username": "ana"}
    assert await stream(api, eve) == []


async def test_unknown_username_is_400(api, team, ana):
    response = await api.post(members_url(team), json={"user": "nobody"}, headers=auth(ana))
    assert "user" in assert_problem(response, 400)["errors"]


async def test_unknown_user_id_is_400(api, team, ana):
    response = await api.post(members_url(team), json={"user": 987654}, headers=auth(ana))
    assert "user" in assert_problem(response, 400)["errors"]


async def test_inactive_user_is_400(api, team, ana, make_user):
    gone = await in_db(make_user, "gone", is_active=False)
    response = await api.post(members_url(team), json={"user": gone.pk}, headers=auth(ana))
    assert "user" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize("user", [True, None, [1], {"id": 1}, 1.5, "", 2**64])
async def test_user_of_the_wrong_kind_is_400(api, team, ana, user):
    response = await api.post(members_url(team), json={"user": user}, headers=auth(ana))
    assert "user" in assert_problem(response, 400)["errors"]


async def test_unknown_role_is_400(api, team, ana, cy):
    response = await api.post(
        members_url(team), json={"user": cy.pk, "role": "admin"}, headers=auth(ana)
    )
    assert "role" in assert_problem(response, 400)["errors"]


async def test_unknown_field_when_adding_is_400(api, team, ana, cy):
    response = await api.post(members_url(team), json={"user": cy.pk, "team": 1}, headers=auth(ana))
    assert "team" in assert_problem(response, 400)["errors"]


async def test_adding_someone_who_is_a_member_already_is_409(api, team, ana, bob):
    response = await api.post(
        members_url(team), json={"user": bob.pk, "role": "owner"}, headers=auth(ana)
    )
    assert_problem(response, 409)
    assert (await member_roles(api, team, ana))["bob"] == "member"


async def test_member_may_not_add_anyone(api, team, bob, cy):
    response = await api.post(members_url(team), json={"user": cy.pk}, headers=auth(bob))
    assert_problem(response, 403)


async def test_viewer_may_not_add_anyone(api, team, vic, cy):
    response = await api.post(members_url(team), json={"user": cy.pk}, headers=auth(vic))
    assert_problem(response, 403)


async def test_stranger_adding_gets_404(api, team, eve):
    response = await api.post(members_url(team), json={"user": eve.pk}, headers=auth(eve))
    assert_problem(response, 404)


async def test_admin_adds_someone_to_a_project_outside_it(api, team, root, cy):
    response = await api.post(members_url(team), json={"user": cy.pk}, headers=auth(root))
    assert response.status_code == 201, response.text


async def test_two_adds_of_the_same_person_at_once_make_one_member(api, team, ana, cy):
    responses = await asyncio.gather(
        *(api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana)) for _ in range(2))
    )
    assert sorted(response.status_code for response in responses) == [201, 409]


# --- Change a role ----------------------------------------------------------------------


async def test_owner_changes_a_role(api, team, ana, bob):
    response = await api.patch(members_url(team, bob.pk), json={"role": "owner"}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert (response.json()["user"]["id"], response.json()["role"]) == (bob.pk, "owner")


async def test_role_change_sends_member_updated_to_every_member(api, team, ana, bob, vic):
    await api.patch(members_url(team, vic.pk), json={"role": "member"}, headers=auth(ana))
    for person in (ana, bob, vic):
        [event] = await stream(api, person)
        assert (event["type"], event["member"]["role"]) == ("member.updated", "member")


async def test_giving_the_same_role_changes_nothing(api, team, ana, bob):
    response = await api.patch(
        members_url(team, bob.pk), json={"role": "member"}, headers=auth(ana)
    )
    assert response.json()["role"] == "member"
    assert await stream(api, bob) == []


async def test_the_last_owner_cannot_be_demoted(api, team, ana):
    response = await api.patch(
        members_url(team, ana.pk), json={"role": "member"}, headers=auth(ana)
    )
    assert_problem(response, 409)
    assert (await member_roles(api, team, ana))["ana"] == "owner"


async def test_an_owner_may_step_down_when_another_owner_remains(api, team, ana, bob):
    await api.patch(members_url(team, bob.pk), json={"role": "owner"}, headers=auth(ana))
    response = await api.patch(
        members_url(team, ana.pk), json={"role": "member"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text


async def test_member_may_not_change_roles(api, team, bob):
    response = await api.patch(members_url(team, bob.pk), json={"role": "owner"}, headers=auth(bob))
    assert_problem(response, 403)


async def test_stranger_changing_a_role_gets_404(api, team, eve, bob):
    response = await api.patch(members_url(team, bob.pk), json={"role": "owner"}, headers=auth(eve))
    assert_problem(response, 404)


async def test_admin_changes_a_role_in_a_project_outside_it(api, team, root, vic):
    response = await api.patch(
        members_url(team, vic.pk), json={"role": "member"}, headers=auth(root)
    )
    assert response.status_code == 200, response.text


async def test_changing_the_role_of_a_non_member_is_404(api, team, ana, eve):
    response = await api.patch(members_url(team, eve.pk), json={"role": "owner"}, headers=auth(ana))
    assert_problem(response, 404)


async def test_user_id_that_is_not_a_number_is_404(api, team, ana):
    response = await api.patch(members_url(team, "bob"), json={"role": "owner"}, headers=auth(ana))
    assert_problem(response, 404)


async def test_role_change_without_a_role_is_400(api, team, ana, bob):
    response = await api.patch(members_url(team, bob.pk), json={}, headers=auth(ana))
    assert "role" in assert_problem(response, 400)["errors"]


async def test_role_change_with_an_unknown_role_is_400(api, team, ana, bob):
    response = await api.patch(members_url(team, bob.pk), json={"role": "boss"}, headers=auth(ana))
    assert "role" in assert_problem(response, 400)["errors"]


# --- Remove and leave -------------------------------------------------------------------


async def test_owner_removes_a_member(api, team, ana, bob):
    response = await api.delete(members_url(team, bob.pk), headers=auth(ana))
    assert response.status_code == 204, response.text
    assert "bob" not in await member_roles(api, team, ana)


async def test_removed_member_no_longer_sees_the_project(api, team, ana, bob):
    await api.delete(members_url(team, bob.pk), headers=auth(ana))
    assert_problem(await api.get(project_url(team.pk), headers=auth(bob)), 404)


async def test_removed_member_gets_member_removed_as_a_last_event(api, team, ana, bob, vic):
    await api.delete(members_url(team, bob.pk), headers=auth(ana))
    for person in (ana, bob, vic):
        [event] = await stream(api, person)
        assert (event["type"], event["member"]["user"]["id"]) == ("member.removed", bob.pk)


async def test_removed_member_receives_nothing_of_later_changes(api, team, ana, bob, make_task):
    task = await in_db(make_task, ana, project_id=team.pk)
    await api.delete(members_url(team, bob.pk), headers=auth(ana))
    await api.patch(task_url(task["id"]), json={"title": "Later"}, headers=auth(ana))
    await api.patch(project_url(team.pk), json={"name": "Later"}, headers=auth(ana))
    assert await event_types(api, bob) == ["task.created", "member.removed"]


async def test_added_member_receives_later_changes_of_the_projects_tasks(
    api, team, ana, cy, make_task
):
    task = await in_db(make_task, ana, project_id=team.pk)
    await api.post(members_url(team), json={"user": cy.pk}, headers=auth(ana))
    await api.patch(task_url(task["id"]), json={"title": "Later"}, headers=auth(ana))
    assert await event_types(api, cy) == ["member.added", "task.updated"]


async def test_member_leaves_by_removing_themself(api, team, bob):
    assert (await api.delete(members_url(team, bob.pk), headers=auth(bob))).status_code == 204


async def test_viewer_leaves_by_removing_themself(api, team, vic):
    assert (await api.delete(members_url(team, vic.pk), headers=auth(vic))).status_code == 204


async def test_member_may_not_remove_someone_else(api, team, bob, vic):
    assert_problem(await api.delete(members_url(team, vic.pk), headers=auth(bob)), 403)


async def test_stranger_removing_gets_404(api, team, eve, bob):
    assert_problem(await api.delete(members_url(team, bob.pk), headers=auth(eve)), 404)


async def test_admin_removes_a_member_of_a_project_outside_it(api, team, root, bob):
    assert (await api.delete(members_url(team, bob.pk), headers=auth(root))).status_code == 204


async def test_the_last_owner_cannot_leave(api, team, ana):
    assert_problem(await api.delete(members_url(team, ana.pk), headers=auth(ana)), 409)


async def test_the_last_owner_cannot_be_removed_by_an_admin(api, team, root, ana):
    assert_problem(await api.delete(members_url(team, ana.pk), headers=auth(root)), 409)


async def test_an_owner_leaves_when_another_owner_remains(api, team, ana, bob):
    await api.patch(members_url(team, bob.pk), json={"role": "owner"}, headers=auth(ana))
    assert (await api.delete(members_url(team, ana.pk), headers=auth(ana))).status_code == 204
    assert await member_roles(api, team, bob) == {"bob": "owner", "vic": "viewer"}


async def test_removing_a_non_member_is_404(api, team, ana, eve):
    assert_problem(await api.delete(members_url(team, eve.pk), headers=auth(ana)), 404)


async def test_members_are_managed_in_an_archived_project(api, team, ana, bob):
    await api.post(project_url(team.pk, "archive"), headers=auth(ana))
    assert (await api.delete(members_url(team, bob.pk), headers=auth(bob))).status_code == 204


# --- A membership change and a task change at once --------------------------------------


def test_task_change_waiting_on_a_removal_does_not_reach_the_removed_member(
    team, ana, bob, make_task
):
    """The removal holds the project row FOR UPDATE until it commits; the task change
    waits for it when it records its event, then sees the members without bob. Without
    the lock it would have read bob's uncommitted membership and sent him the event."""
    task = make_task(ana, project_id=team.pk)
    removed, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def remove_bob():
        try:
            with transaction.atomic():
                project_services.member_remove(project_id=team.pk, actor=ana, user_id=bob.pk)
                removed.set()
                assert commit.wait(10)
        except BaseException as exc:
            errors.append(exc)
            removed.set()
        finally:
            connections.close_all()

    def rename_task():
        try:
            services.task_update(task_id=task["id"], actor=ana, data={"title": "Meanwhile"})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    remover = threading.Thread(target=remove_bob)
    remover.start()
    assert removed.wait(10)
    renamer = threading.Thread(target=rename_task)
    renamer.start()
    _wait_until_a_lock_is_awaited()
    commit.set()
    for thread in (remover, renamer):
        thread.join(10)
    assert errors == []
    updated = TaskEvent.objects.get(task_id=task["id"], type=EventType.UPDATED)
    recipients = set(StreamEntry.objects.filter(event=updated).values_list("user_id", flat=True))
    assert bob.pk not in recipients


def _while_held(hold, then) -> list[BaseException]:
    """Run `hold` in a transaction left open, then `then` in another thread while it is;
    commit `hold` once `then` waits for a lock. Returns what either raised."""
    held, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    outcome: list[object] = []

    def holder():
        try:
            with transaction.atomic():
                hold()
                held.set()
                assert commit.wait(10)
        except BaseException as exc:
            errors.append(exc)
            held.set()
        finally:
            connections.close_all()

    def follower():
        try:
            outcome.append(then())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=follower)
    second.start()
    _wait_until_a_lock_is_awaited()
    commit.set()
    for thread in (first, second):
        thread.join(10)
    return errors


def test_a_task_added_while_its_project_is_deleted_is_refused_not_a_500(ana, make_project):
    """The deletion holds the project row until it commits; the creation checks the
    project under a share lock, so it waits and then finds no project: a 400, where it
    used to insert the task and fail on the foreign key at COMMIT (a 500)."""
    doomed = make_project(ana, name="Doomed")
    errors = _while_held(
        lambda: project_services.project_delete(project_id=doomed.pk, actor=ana),
        lambda: services.task_create(
            actor=ana, data={"title": "Too late", "project_id": doomed.pk}
        ),
    )
    assert [type(error) for error in errors] == [InvalidInput], errors
    assert "project" in errors[0].errors
    assert not Task.objects.filter(title="Too late").exists()


def test_assigning_someone_being_removed_waits_and_is_refused(team, ana, bob, make_task):
    """The assignee's membership is checked under the project's share lock: an
    assignment racing bob's removal waits for it and then finds him gone (400), instead
    of assigning the task to someone outside the project."""
    task = make_task(ana, project_id=team.pk)
    errors = _while_held(
        lambda: project_services.member_remove(project_id=team.pk, actor=ana, user_id=bob.pk),
        lambda: services.task_update(task_id=task["id"], actor=ana, data={"assignee": bob}),
    )
    assert [type(error) for error in errors] == [InvalidInput], errors
    assert "assignee" in errors[0].errors
    assert Task.objects.get(pk=task["id"]).assignee_id is None


def test_a_change_by_someone_being_made_a_viewer_waits_and_is_refused(team, ana, bob, make_task):
    """The actor's role is read under the project's share lock: bob's edit racing his
    demotion waits for it and is then refused (403), instead of committing a member's
    change after the `member.updated` that made him a viewer."""
    task = make_task(ana, project_id=team.pk)
    errors = _while_held(
        lambda: project_services.member_update(
            project_id=team.pk, actor=ana, user_id=bob.pk, role="viewer"
        ),
        lambda: services.task_update(task_id=task["id"], actor=bob, data={"title": "Late"}),
    )
    assert [type(error) for error in errors] == [NotAllowed], errors
    assert Task.objects.get(pk=task["id"]).title != "Late"


def test_a_comment_by_someone_being_made_a_viewer_waits_and_is_refused(team, ana, bob, make_task):
    task = make_task(ana, project_id=team.pk)
    errors = _while_held(
        lambda: project_services.member_update(
            project_id=team.pk, actor=ana, user_id=bob.pk, role="viewer"
        ),
        lambda: comment_services.comment_create(task_id=task["id"], actor=bob, body="Late"),
    )
    assert [type(error) for error in errors] == [NotAllowed], errors
    assert not Comment.objects.filter(task_id=task["id"]).exists()


def test_a_change_by_someone_being_removed_waits_and_finds_no_task(team, ana, bob, make_task):
    """bob sees ana's task only through the project: once his removal commits, the task
    his racing edit waited for is not his to see (404), and nothing changes."""
    task = make_task(ana, project_id=team.pk)
    errors = _while_held(
        lambda: project_services.member_remove(project_id=team.pk, actor=ana, user_id=bob.pk),
        lambda: services.task_update(task_id=task["id"], actor=bob, data={"title": "Late"}),
    )
    assert [type(error) for error in errors] == [NotFound], errors
    assert Task.objects.get(pk=task["id"]).title != "Late"


def _wait_until_a_lock_is_awaited(timeout: float = 10) -> None:
    """Return once some session of this database waits for a lock."""
    with connection.cursor() as cursor:
        for _attempt in range(int(timeout / 0.05)):
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE NOT l.granted AND a.datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.05)
    raise AssertionError("no session waited for a lock")

"""Comments on tasks: who may read, write, edit and delete them (every relation a user can
have to a project task), their input, pagination, archiving, and their events in each
recipient's stream and in the task's history."""

import uuid
from datetime import datetime

import pytest
from django.utils import timezone

from apps.tasks import services
from apps.tasks.models import Comment, Membership, Project, ProjectRole
from apps.tests.conftest import MISSING_ID, assert_problem, auth, in_db, task_url

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events/"


def comments_url(task_id, comment_id=None) -> str:
    url = task_url(task_id, "comments")
    return f"{url}{comment_id}/" if comment_id else url


@pytest.fixture
def team(make_user, make_project, ana, bob, eve, root):
    """Everyone's relation to `project_task`: its creator (ana) and assignee (bob), both
    members of its project; the project's owner, a member who writes `comment`, another
    member, a viewer; a stranger (eve) and an admin (root)."""
    people = {
        "creator": ana,
        "assignee": bob,
        "owner": make_user("olga"),
        "author": make_user("mia"),
        "member": make_user("max"),
        "viewer": make_user("vic"),
        "stranger": eve,
        "admin": root,
    }
    roles = {"creator": "member", "assignee": "member", "author": "member", "member": "member"}
    roles["viewer"] = "viewer"
    members = {people[name]: role for name, role in roles.items()}
    people["project"] = make_project(people["owner"], name="Launch", members=members)
    return people


@pytest.fixture
def project_task(make_task, team) -> dict:
    return make_task(
        team["creator"], project_id=team["project"].pk, assignee_id=team["assignee"].pk
    )


@pytest.fixture
def write_comment(django_db_blocker):
    """Add a comment through the service (setup only); returns it as the API shows it."""
    from apps.tasks.comment_services import comment_create
    from apps.tasks.representation import comment_representation

    def write(task: dict, author, body: str = "Looks good") -> dict:
        with django_db_blocker.unblock():
            return comment_representation(
                comment_create(task_id=task["id"], actor=author, body=body)
            )

    return write


@pytest.fixture
def comment(write_comment, project_task, team) -> dict:
    """A comment on `project_task` by a member of its project (mia)."""
    return write_comment(project_task, team["author"], "First!")


async def post_comment(api, task_id, user, body="A note"):
    return await api.post(comments_url(task_id), json={"body": body}, headers=auth(user))


async def list_comments(api, task_id, user, **params) -> dict:
    response = await api.get(comments_url(task_id), params=params, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def stream_types(api, user) -> list[str]:
    response = await api.get(EVENTS, headers=auth(user))
    assert response.status_code == 200, response.text
    return [event["type"] for event in response.json()["results"]]


# --- Rights ---------------------------------------------------------------------------------

EVERYONE = ["creator", "assignee", "owner", "author", "member", "viewer", "stranger", "admin"]


@pytest.mark.parametrize("role", EVERYONE)
async def test_list_comments_by_role(api, team, project_task, comment, role):
    response = await api.get(comments_url(project_task["id"]), headers=auth(team[role]))
    if role == "stranger":
        assert_problem(response, 404)
    else:
        assert response.status_code == 200, response.text
        assert response.json()["results"] == [comment]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("creator", 201),
        ("assignee", 201),
        ("owner", 201),
        ("member", 201),
        ("viewer", 403),
        ("stranger", 404),
        ("admin", 201),
    ],
)
async def test_post_comment_by_role(api, team, project_task, role, expected):
    response = await post_comment(api, project_task["id"], team[role], "On it")
    if expected == 201:
        assert response.status_code == 201, response.text
        assert response.json()["author"] == {"id": team[role].pk, "username": team[role].username}
    else:
        assert_problem(response, expected)
        assert not await in_db(Comment.objects.exists)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("author", 200),
        ("creator", 403),
        ("assignee", 403),
        ("owner", 403),
        ("member", 403),
        ("viewer", 403),
        ("stranger", 404),
        ("admin", 403),
    ],
)
async def test_patch_comment_by_role(api, team, project_task, comment, role, expected):
    response = await api.patch(
        comments_url(project_task["id"], comment["id"]),
        json={"body": "Second thoughts"},
        headers=auth(team[role]),
    )
    if expected == 200:
        assert response.status_code == 200, response.text
        assert response.json()["body"] == "Second thoughts"
    else:
        assert_problem(response, expected)
        body = await in_db(lambda: Comment.objects.get(pk=comment["id"]).body)
        assert body == "First!"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("author", 204),
        ("owner", 204),
        ("admin", 204),
        ("creator", 403),
        ("assignee", 403),
        ("member", 403),
        ("viewer", 403),
        ("stranger", 404),
    ],
)
async def test_delete_comment_by_role(api, team, project_task, comment, role, expected):
    response = await api.delete(
        comments_url(project_task["id"], comment["id"]), headers=auth(team[role])
    )
    exists = await in_db(Comment.objects.filter(pk=comment["id"]).exists)
    if expected == 204:
        assert response.status_code == 204, response.text
        assert not exists
    else:
        assert_problem(response, expected)
        assert exists


async def make_viewer(project: Project, user) -> None:
    await in_db(
        Membership.objects.filter(project=project, user=user).update, role=ProjectRole.VIEWER
    )


async def test_author_since_made_a_viewer_cannot_edit_their_comment(
    api, team, project_task, comment
):
    await make_viewer(team["project"], team["author"])
    response = await api.patch(
        comments_url(project_task["id"], comment["id"]),
        json={"body": "Edited"},
        headers=auth(team["author"]),
    )
    assert_problem(response, 403)


async def test_author_since_made_a_viewer_may_delete_their_comment(
    api, team, project_task, comment
):
    await make_viewer(team["project"], team["author"])
    response = await api.delete(
        comments_url(project_task["id"], comment["id"]), headers=auth(team["author"])
    )
    assert response.status_code == 204, response.text


async def test_creator_and_assignee_of_a_personal_task_comment_on_it(api, task, ana, bob):
    first = await post_comment(api, task["id"], ana, "Please review")
    second = await post_comment(api, task["id"], bob, "Done")
    assert (first.status_code, second.status_code) == (201, 201)


async def test_stranger_cannot_comment_on_a_personal_task(api, task, eve):
    assert_problem(await post_comment(api, task["id"], eve), 404)


async def test_creator_of_a_personal_task_cannot_delete_the_assignees_comment(
    api, task, write_comment, ana, bob
):
    comment = await in_db(write_comment, task, bob)
    response = await api.delete(comments_url(task["id"], comment["id"]), headers=auth(ana))
    assert_problem(response, 403)


async def test_unauthenticated_request_is_refused(api, project_task):
    response = await api.get(comments_url(project_task["id"]))
    assert_problem(response, 401)


# --- Create and read ------------------------------------------------------------------------


async def test_created_comment_has_the_contract_shape_and_a_location(api, task, ana):
    before = timezone.now()
    response = await post_comment(api, task["id"], ana, "Ship it")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "task", "author", "body", "created_at", "updated_at", "edited"}
    assert (body["task"], body["author"], body["body"], body["edited"]) == (
        task["id"],
        {"id": ana.pk, "username": "ana"},
        "Ship it",
        False,
    )
    assert before <= datetime.fromisoformat(body["created_at"]) <= timezone.now()
    location = response.headers["Location"]
    assert location == f"http://testserver{comments_url(task['id'], body['id'])}"


async def test_location_of_a_new_comment_reads_it_back(api, task, ana):
    created = (await post_comment(api, task["id"], ana, "Ship it")).json()
    response = await api.get(comments_url(task["id"], created["id"]), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == created


async def test_body_is_kept_as_written(api, task, ana):
    body = "  indented\n\tcode  \n"
    response = await post_comment(api, task["id"], ana, body)
    assert response.status_code == 201, response.text
    assert response.json()["body"] == body


async def test_body_of_ten_thousand_characters_is_accepted(api, task, ana):
    response = await post_comment(api, task["id"], ana, "é" * 10_000)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "payload",
    [
        {"body": ""},
        {"body": " \n\t "},
        {"body": "x" * 10_001},
        {"body": 5},
        {"body": ["a"]},
        {"body": None},
        {},
    ],
    ids=["empty", "blank", "too-long", "number", "list", "null", "missing"],
)
async def test_bad_body_is_a_400_naming_the_field(api, task, ana, payload):
    response = await api.post(comments_url(task["id"]), json=payload, headers=auth(ana))
    assert "body" in assert_problem(response, 400)["errors"]
    assert not await in_db(Comment.objects.exists)


async def test_nul_character_in_the_body_is_a_400(api, task, ana):
    response = await post_comment(api, task["id"], ana, "before\x00after")
    assert_problem(response, 400)
    assert not await in_db(Comment.objects.exists)


async def test_unknown_field_is_a_400(api, task, ana):
    response = await api.post(
        comments_url(task["id"]),
        json={"body": "Hi", "author": 9, "pinned": True},
        headers=auth(ana),
    )
    assert set(assert_problem(response, 400)["errors"]) == {"pinned"}


async def test_body_that_is_not_an_object_is_a_400(api, task, ana):
    response = await api.post(comments_url(task["id"]), json=["Hi"], headers=auth(ana))
    assert_problem(response, 400)


async def test_body_that_is_not_json_is_a_415(api, task, ana):
    response = await api.post(
        comments_url(task["id"]),
        content="body=Hi",
        headers={**auth(ana), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


@pytest.mark.parametrize("task_id", ["not-a-uuid", MISSING_ID])
async def test_comments_of_an_unknown_task_are_a_404(api, ana, task_id):
    assert_problem(await api.get(comments_url(task_id), headers=auth(ana)), 404)
    assert_problem(await post_comment(api, task_id, ana), 404)


async def test_comments_are_listed_oldest_first_a_page_at_a_time(api, task, write_comment, ana):
    written = [await in_db(write_comment, task, ana, f"Note {number}") for number in range(5)]
    first = await list_comments(api, task["id"], ana, limit=2)
    assert first["results"] == written[:2]
    assert first["previous"] is None
    second = (await api.get(first["next"], headers=auth(ana))).json()
    assert second["results"] == written[2:4]
    third = (await api.get(second["next"], headers=auth(ana))).json()
    assert (third["results"], third["next"]) == (written[4:], None)
    back = (await api.get(third["previous"], headers=auth(ana))).json()
    assert back["results"] == written[2:4]


async def test_a_task_without_comments_lists_none(api, task, ana):
    assert await list_comments(api, task["id"], ana) == {
        "results": [],
        "next": None,
        "previous": None,
    }


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "201"}, {"cursor": "garbage"}, {"order": "newest"}],
    ids=["limit-0", "limit-too-big", "bad-cursor", "unknown-param"],
)
async def test_bad_list_parameters_are_a_400(api, task, write_comment, ana, params):
    await in_db(write_comment, task, ana)
    response = await api.get(comments_url(task["id"]), params=params, headers=auth(ana))
    assert_problem(response, 400)


async def test_a_cursor_of_another_list_is_a_400(api, task, write_comment, change_task, ana):
    await in_db(change_task, services.task_update, task, ana, data={"title": "Again"})
    history = await api.get(task_url(task["id"], "history"), params={"limit": 1}, headers=auth(ana))
    cursor = history.json()["next"].split("cursor=")[1]
    response = await api.get(comments_url(task["id"]), params={"cursor": cursor}, headers=auth(ana))
    assert_problem(response, 400)


# --- Edit -----------------------------------------------------------------------------------


async def test_author_edits_a_comment_which_is_marked_edited(api, task, write_comment, ana):
    comment = await in_db(write_comment, task, ana, "Frist")
    response = await api.patch(
        comments_url(task["id"], comment["id"]), json={"body": "First"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["body"], body["edited"], body["created_at"]) == (
        "First",
        True,
        comment["created_at"],
    )
    assert body["updated_at"] > comment["updated_at"]


async def test_patch_with_the_same_body_changes_and_records_nothing(api, task, write_comment, ana):
    comment = await in_db(write_comment, task, ana, "Same")
    history_before = await api.get(task_url(task["id"], "history"), headers=auth(ana))
    response = await api.patch(
        comments_url(task["id"], comment["id"]), json={"body": "Same"}, headers=auth(ana)
    )
    assert response.status_code == 200, response.text
    assert response.json() == comment
    history_after = await api.get(task_url(task["id"], "history"), headers=auth(ana))
    assert history_after.json() == history_before.json()


@pytest.mark.parametrize(
    "payload",
    [{"body": ""}, {"body": " "}, {"body": "x" * 10_001}, {"body": 1}, {"body": "ok", "x": 1}],
    ids=["empty", "blank", "too-long", "number", "unknown-field"],
)
async def test_bad_edit_is_a_400(api, task, write_comment, ana, payload):
    comment = await in_db(write_comment, task, ana)
    response = await api.patch(
        comments_url(task["id"], comment["id"]), json=payload, headers=auth(ana)
    )
    assert_problem(response, 400)


async def test_empty_patch_changes_and_records_nothing(api, task, write_comment, ana):
    comment = await in_db(write_comment, task, ana, "Same")
    history_before = await api.get(task_url(task["id"], "history"), headers=auth(ana))
    response = await api.patch(comments_url(task["id"], comment["id"]), json={}, headers=auth(ana))
    assert response.status_code == 200, response.text
    assert response.json() == comment
    history_after = await api.get(task_url(task["id"], "history"), headers=auth(ana))
    assert history_after.json() == history_before.json()


async def test_empty_patch_by_someone_else_is_still_a_403(api, task, write_comment, ana, bob):
    comment = await in_db(write_comment, task, ana)
    response = await api.patch(comments_url(task["id"], comment["id"]), json={}, headers=auth(bob))
    assert_problem(response, 403)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
async def test_comment_id_that_is_not_a_uuid_is_a_404(api, task, ana, method):
    response = await api.request(
        method, comments_url(task["id"], "42"), json={"body": "x"}, headers=auth(ana)
    )
    assert_problem(response, 404)


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
async def test_comment_of_another_task_is_a_404(api, make_task, write_comment, ana, method):
    one, other = (
        await in_db(make_task, ana, title="One"),
        await in_db(make_task, ana, title="Other"),
    )
    comment = await in_db(write_comment, one, ana)
    response = await api.request(
        method, comments_url(other["id"], comment["id"]), json={"body": "x"}, headers=auth(ana)
    )
    assert_problem(response, 404)
    assert await in_db(Comment.objects.filter(pk=comment["id"], body=comment["body"]).exists)


async def test_unknown_comment_id_is_a_404(api, task, ana):
    response = await api.delete(comments_url(task["id"], uuid.uuid4()), headers=auth(ana))
    assert_problem(response, 404)


# --- Archived tasks and projects ------------------------------------------------------------


async def test_commenting_on_an_archived_task_is_a_409(api, archived_task, ana):
    response = await post_comment(api, archived_task["id"], ana)
    assert assert_problem(response, 409)["code"] == "task_archived"


async def test_editing_a_comment_of_an_archived_task_is_a_409(
    api, task, write_comment, change_task, ana
):
    comment = await in_db(write_comment, task, ana, "Before")
    await in_db(change_task, services.task_archive, task, ana)
    response = await api.patch(
        comments_url(task["id"], comment["id"]), json={"body": "After"}, headers=auth(ana)
    )
    assert assert_problem(response, 409)["code"] == "task_archived"


async def test_a_comment_of_an_archived_task_may_be_deleted(
    api, task, write_comment, change_task, ana
):
    comment = await in_db(write_comment, task, ana)
    await in_db(change_task, services.task_archive, task, ana)
    response = await api.delete(comments_url(task["id"], comment["id"]), headers=auth(ana))
    assert response.status_code == 204, response.text


async def test_comments_of_an_archived_task_are_still_listed(
    api, task, write_comment, change_task, ana
):
    comment = await in_db(write_comment, task, ana)
    await in_db(change_task, services.task_archive, task, ana)
    assert (await list_comments(api, task["id"], ana))["results"] == [comment]


async def archive_project(project: Project) -> None:
    await in_db(Project.objects.filter(pk=project.pk).update, archived_at=timezone.now())


async def test_commenting_in_an_archived_project_is_a_409(api, team, project_task):
    await archive_project(team["project"])
    response = await post_comment(api, project_task["id"], team["member"])
    assert assert_problem(response, 409)["code"] == "project_archived"


async def test_deleting_a_comment_in_an_archived_project_is_a_409(api, team, project_task, comment):
    await archive_project(team["project"])
    response = await api.delete(
        comments_url(project_task["id"], comment["id"]), headers=auth(team["owner"])
    )
    assert assert_problem(response, 409)["code"] == "project_archived"


# --- Events ---------------------------------------------------------------------------------

SEES_THE_TASK = ["creator", "assignee", "owner", "author", "member", "viewer", "admin"]


@pytest.mark.parametrize("role", EVERYONE)
async def test_comment_events_reach_everyone_who_sees_the_task(
    api, team, project_task, comment, role
):
    url = comments_url(project_task["id"], comment["id"])
    edited = await api.patch(url, json={"body": "Edited"}, headers=auth(team["author"]))
    deleted = await api.delete(url, headers=auth(team["author"]))
    assert (edited.status_code, deleted.status_code) == (200, 204)
    types = [kind for kind in await stream_types(api, team[role]) if kind.startswith("comment.")]
    if role in SEES_THE_TASK:
        assert types == ["comment.created", "comment.updated", "comment.deleted"]
    else:
        assert types == []


async def test_comment_created_event_carries_the_task_and_the_comment(
    api, team, project_task, comment
):
    [event] = [
        event
        for event in (await api.get(EVENTS, headers=auth(team["viewer"]))).json()["results"]
        if event["type"] == "comment.created"
    ]
    assert event["comment"] == comment
    assert event["task"]["id"] == project_task["id"]
    assert event["actor"] == {"id": team["author"].pk, "username": "mia"}


async def test_comment_updated_event_carries_the_comment_as_edited(
    api, task, write_comment, ana, bob
):
    comment = await in_db(write_comment, task, ana, "Before")
    edited = await api.patch(
        comments_url(task["id"], comment["id"]), json={"body": "After"}, headers=auth(ana)
    )
    events = (await api.get(EVENTS, headers=auth(bob))).json()["results"]
    assert events[-1]["type"] == "comment.updated"
    assert events[-1]["comment"] == edited.json()


async def test_comment_deleted_event_carries_only_its_id_and_task(
    api, task, write_comment, ana, bob
):
    comment = await in_db(write_comment, task, ana, "Oops, my password")
    await api.delete(comments_url(task["id"], comment["id"]), headers=auth(ana))
    events = (await api.get(EVENTS, headers=auth(bob))).json()["results"]
    assert events[-1]["type"] == "comment.deleted"
    assert events[-1]["comment"] == {"id": comment["id"], "task": task["id"]}
    assert events[-1]["actor"] == {"id": ana.pk, "username": "ana"}


async def test_refused_comment_records_no_event(api, team, project_task):
    before = await stream_types(api, team["owner"])
    assert_problem(await post_comment(api, project_task["id"], team["viewer"]), 403)
    assert await stream_types(api, team["owner"]) == before


async def test_task_history_includes_its_comment_events_in_order(
    api, task, write_comment, ana, bob
):
    comment = await in_db(write_comment, task, bob, "Started")
    url = comments_url(task["id"], comment["id"])
    await api.patch(url, json={"body": "Started today"}, headers=auth(bob))
    await api.delete(url, headers=auth(bob))
    response = await api.get(task_url(task["id"], "history"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert [event["type"] for event in response.json()["results"]] == [
        "task.created",
        "comment.created",
        "comment.updated",
        "comment.deleted",
    ]
    assert response.json()["results"][1]["comment"]["body"] == "Started"

"""The authorization matrix of projects: every role against every project, member, task
and comment endpoint, and against the live stream.

The roles: the project's owner, a member, a viewer, an assignee outside the project (was
a member when assigned, then removed), a former member, a stranger, and an admin who is
not a member. Each cell runs against a fresh project, so no cell depends on another.
"""

from contextlib import AsyncExitStack

import pytest
from django.utils import timezone

from apps.tasks import services
from apps.tasks.models import Comment, Membership
from apps.tests.conftest import PROJECTS, TASKS, auth, project_url, run_relay_once, task_url
from apps.tests.test_realtime_consumer import assert_silent, receive_events, stream_of

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("owner", "member", "viewer", "assignee", "former", "stranger", "admin")


@pytest.fixture
def world(make_user, make_project, root, django_db_blocker):
    """The project "Team" and one person in each role; its task (by the owner, assigned to
    the assignee) with a comment by the owner and one by the member."""
    owner, member, viewer = make_user("olive"), make_user("mel"), make_user("vic")
    assignee, former, stranger = make_user("asa"), make_user("fay"), make_user("sid")
    project = make_project(
        owner,
        name="Team",
        members={member: "member", viewer: "viewer", assignee: "member", former: "member"},
    )
    with django_db_blocker.unblock():
        task = services.task_create(
            actor=owner, data={"title": "Shared", "project_id": project.pk, "assignee": assignee}
        ).body
        Membership.objects.filter(project=project, user__in=[assignee, former]).delete()
        now = timezone.now()
        comments = {
            person.pk: Comment.objects.create(
                task_id=task["id"], author=person, body=f"By {person.username}", created_at=now
            )
            for person in (owner, member)
        }
    people = {
        "owner": owner,
        "member": member,
        "viewer": viewer,
        "assignee": assignee,
        "former": former,
        "stranger": stranger,
        "admin": root,
    }
    newcomer = make_user("newbie")
    return {
        "project": project,
        "task": task,
        "comments": comments,
        "people": people,
        "newcomer": newcomer,
    }


def others_comment(world, actor):
    """A comment on the task that `actor` did not write."""
    owner = world["people"]["owner"]
    author = world["people"]["member"] if actor == owner else owner
    return world["comments"][author.pk]


def other_member(world, actor):
    """A member of the project other than `actor`: the viewer, or the member for the viewer."""
    people = world["people"]
    return people["member"] if actor == people["viewer"] else people["viewer"]


def comment_url(world, comment) -> str:
    return f"{task_url(world['task']['id'])}comments/{comment.pk}/"


# Each operation: (method, path, body) built from the world and the actor.
OPERATIONS = {
    "project.read": lambda w, a: ("GET", project_url(w["project"].pk), None),
    "project.rename": lambda w, a: ("PATCH", project_url(w["project"].pk), {"name": "Renamed"}),
    "project.archive": lambda w, a: ("POST", project_url(w["project"].pk, "archive"), None),
    "project.restore": lambda w, a: ("POST", project_url(w["project"].pk, "restore"), None),
    # The project has a task, so even its owner may not delete it.
    "project.delete": lambda w, a: ("DELETE", project_url(w["project"].pk), None),
    "members.list": lambda w, a: ("GET", project_url(w["project"].pk, "members"), None),
    "members.add": lambda w, a: (
        "POST",
        project_url(w["project"].pk, "members"),
        {"user": w["newcomer"].pk, "role": "member"},
    ),
    "members.change_role": lambda w, a: (
        "PATCH",
        f"{project_url(w['project'].pk, 'members')}{other_member(w, a).pk}/",
        {"role": "member"},
    ),
    "members.remove_other": lambda w, a: (
        "DELETE",
        f"{project_url(w['project'].pk, 'members')}{other_member(w, a).pk}/",
        None,
    ),
    # The owner is the only owner, so it may not leave; an admin who is not a member has
    # no membership to end.
    "members.leave": lambda w, a: (
        "DELETE",
        f"{project_url(w['project'].pk, 'members')}{a.pk}/",
        None,
    ),
    "task.read": lambda w, a: ("GET", task_url(w["task"]["id"]), None),
    "task.history": lambda w, a: ("GET", task_url(w["task"]["id"], "history"), None),
    "task.rename": lambda w, a: ("PATCH", task_url(w["task"]["id"]), {"title": "Renamed"}),
    "task.set_status": lambda w, a: ("PATCH", task_url(w["task"]["id"]), {"status": "done"}),
    "task.archive": lambda w, a: ("POST", task_url(w["task"]["id"], "archive"), None),
    "task.delete": lambda w, a: ("DELETE", task_url(w["task"]["id"]), None),
    "task.create_in_project": lambda w, a: (
        "POST",
        TASKS,
        {"title": "New", "project": str(w["project"].pk)},
    ),
    "comments.list": lambda w, a: ("GET", task_url(w["task"]["id"], "comments"), None),
    "comments.add": lambda w, a: ("POST", task_url(w["task"]["id"], "comments"), {"body": "Hi"}),
    "comments.edit_others": lambda w, a: (
        "PATCH",
        comment_url(w, others_comment(w, a)),
        {"body": "Changed"},
    ),
    "comments.delete_others": lambda w, a: ("DELETE", comment_url(w, others_comment(w, a)), None),
}

# The status each role gets, in ROLES order:
#          owner member viewer assignee former stranger admin
EXPECTED = {
    "project.read": (200, 200, 200, 404, 404, 404, 200),
    "project.rename": (200, 403, 403, 404, 404, 404, 200),
    "project.archive": (200, 403, 403, 404, 404, 404, 200),
    "project.restore": (200, 403, 403, 404, 404, 404, 200),
    "project.delete": (409, 403, 403, 404, 404, 404, 409),
    "members.list": (200, 200, 200, 404, 404, 404, 200),
    "members.add": (201, 403, 403, 404, 404, 404, 201),
    "members.change_role": (200, 403, 403, 404, 404, 404, 200),
    "members.remove_other": (204, 403, 403, 404, 404, 404, 204),
    "members.leave": (409, 204, 204, 404, 404, 404, 404),
    "task.read": (200, 200, 200, 200, 404, 404, 200),
    "task.history": (200, 200, 200, 200, 404, 404, 200),
    "task.rename": (200, 200, 403, 403, 404, 404, 200),
    "task.set_status": (200, 200, 403, 200, 404, 404, 200),
    "task.archive": (200, 200, 403, 403, 404, 404, 200),
    "task.delete": (204, 204, 403, 403, 404, 404, 204),
    "task.create_in_project": (201, 201, 403, 400, 400, 400, 201),
    "comments.list": (200, 200, 200, 200, 404, 404, 200),
    "comments.add": (201, 201, 403, 201, 404, 404, 201),
    "comments.edit_others": (403, 403, 403, 403, 404, 404, 403),
    "comments.delete_others": (204, 403, 403, 403, 404, 404, 204),
}

CELLS = [
    pytest.param(operation, role, EXPECTED[operation][index], id=f"{operation}-{role}")
    for operation in OPERATIONS
    for index, role in enumerate(ROLES)
]


def test_the_matrix_covers_every_operation():
    assert set(EXPECTED) == set(OPERATIONS)


@pytest.mark.parametrize(("operation", "role", "expected"), CELLS)
async def test_role_against_endpoint(api, world, operation, role, expected):
    actor = world["people"][role]
    method, path, body = OPERATIONS[operation](world, actor)
    response = await api.request(method, path, json=body, headers=auth(actor))
    assert response.status_code == expected, (operation, role, response.text)
    if expected >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_project_list_shows_the_project_to_members_and_admins_only(api, world):
    for index, role in enumerate(ROLES):
        response = await api.get(PROJECTS, headers=auth(world["people"][role]))
        assert response.status_code == 200, response.text
        listed = str(world["project"].pk) in {row["id"] for row in response.json()["results"]}
        assert listed == (EXPECTED["project.read"][index] == 200), role


async def test_the_task_list_shows_the_task_to_whoever_may_read_it(api, world):
    for index, role in enumerate(ROLES):
        response = await api.get(TASKS, headers=auth(world["people"][role]))
        listed = world["task"]["id"] in {row["id"] for row in response.json()["results"]}
        assert listed == (EXPECTED["task.read"][index] == 200), role


# --- The live stream --------------------------------------------------------------------------

#            owner  member viewer assignee former stranger admin
HEARS = {
    "task.updated": (True, True, True, True, False, False, True),
    "comment.created": (True, True, True, True, False, False, True),
    "project.updated": (True, True, True, False, False, False, True),
    "member.added": (True, True, True, False, False, False, True),
}


async def stream_types(api, user) -> set[str]:
    response = await api.get("/api/v1/events/", params={"limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return {event["type"] for event in response.json()["results"]}


def change_of_kind(world, kind) -> tuple[str, str, dict]:
    """The owner's request that records one event of `kind`."""
    project, task = world["project"], world["task"]
    return {
        "task.updated": ("PATCH", task_url(task["id"]), {"title": "Heard"}),
        "comment.created": ("POST", task_url(task["id"], "comments"), {"body": "Heard"}),
        "project.updated": ("PATCH", project_url(project.pk), {"name": "Heard"}),
        "member.added": (
            "POST",
            project_url(project.pk, "members"),
            {"user": world["newcomer"].pk, "role": "viewer"},
        ),
    }[kind]


@pytest.mark.parametrize("kind", list(HEARS))
async def test_who_hears_each_kind_of_event(api, world, kind):
    method, path, body = change_of_kind(world, kind)
    response = await api.request(method, path, json=body, headers=auth(world["people"]["owner"]))
    assert response.status_code in (200, 201), response.text
    for index, role in enumerate(ROLES):
        heard = kind in await stream_types(api, world["people"][role])
        assert heard == HEARS[kind][index], (kind, role)


@pytest.mark.parametrize("kind", list(HEARS))
async def test_whose_socket_receives_each_kind_of_event(api, world, kind):
    """The same table over the WebSocket: every role connected at once, one change."""
    async with AsyncExitStack() as stack:
        sockets = {}
        for role in ROLES:
            socket, _ = await stack.enter_async_context(stream_of(world["people"][role]))
            sockets[role] = socket
        method, path, body = change_of_kind(world, kind)
        owner = world["people"]["owner"]
        response = await api.request(method, path, json=body, headers=auth(owner))
        assert response.status_code in (200, 201), response.text
        await run_relay_once()
        for index, role in enumerate(ROLES):
            if HEARS[kind][index]:
                (event,) = await receive_events(sockets[role], 1)
                assert event["type"] == kind, (role, event)
            else:
                await assert_silent(sockets[role])

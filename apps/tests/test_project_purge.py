"""The daily purge of projects archived longer than ARCHIVE_RETENTION_DAYS: they go with
the tasks they still hold, each task with its `task.deleted` and then the project with
its `project.deleted`, to the people who could see them; projects archived more
recently, restored or never archived stay."""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from apps.tasks import jobs, services, upkeep
from apps.tasks.models import Project, Task
from apps.tests.conftest import assert_problem, auth, in_db, project_url

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events/"


async def stream(api, user) -> list[dict]:
    """Every event in the user's stream, oldest first."""
    response = await api.get(EVENTS, params={"limit": 200}, headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()["results"]


def archived_days_ago(project: Project, days: int) -> None:
    Project.objects.filter(pk=project.pk).update(archived_at=timezone.now() - timedelta(days=days))


def purge() -> int:
    return jobs.purge_archived_tasks()


@pytest.fixture
def team(make_project, ana, bob):
    """ana's project with bob a member."""
    return make_project(ana, name="Team", members={bob: "member"})


@pytest.fixture
def team_tasks(team, make_task, change_task, ana):
    """Two tasks of `team`: one live, one archived yesterday (too recently for the task
    purge)."""
    live = make_task(ana, title="Live", project_id=team.pk)
    archived = make_task(ana, title="Archived", project_id=team.pk)
    change_task(services.task_archive, archived, ana)
    return [live, archived]


async def archive(api, project, user) -> None:
    response = await api.post(project_url(project.pk, "archive"), headers=auth(user))
    assert response.status_code == 200, response.text


async def test_project_archived_before_the_retention_is_deleted_with_its_tasks(
    api, team, team_tasks, ana
):
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 31)
    assert await in_db(purge) == 3
    assert_problem(await api.get(project_url(team.pk), headers=auth(ana)), 404)
    assert not await in_db(Task.objects.filter(project_id=team.pk).exists)


async def test_members_hear_of_each_task_and_then_of_the_project(api, team, team_tasks, ana, bob):
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 31)
    await in_db(purge)
    purged = (await stream(api, bob))[-3:]
    assert [event["type"] for event in purged] == [
        "task.deleted",
        "task.deleted",
        "project.deleted",
    ]
    assert {event["task"]["id"] for event in purged[:2]} == {task["id"] for task in team_tasks}
    assert purged[2]["project"]["id"] == str(team.pk)
    assert {event["actor"] for event in purged} == {None}


async def test_admin_hears_of_the_purge_and_a_stranger_does_not(api, team, ana, root, eve):
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 31)
    await in_db(purge)
    assert [event["type"] for event in await stream(api, root)] == [
        "project.archived",
        "project.deleted",
    ]
    assert await stream(api, eve) == []


async def test_project_archived_within_the_retention_is_kept(api, team, ana):
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 29)
    assert await in_db(purge) == 0
    assert (await api.get(project_url(team.pk), headers=auth(ana))).status_code == 200


async def test_restored_project_is_kept(api, team, ana):
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 31)
    response = await api.post(project_url(team.pk, "restore"), headers=auth(ana))
    assert response.status_code == 200, response.text
    assert await in_db(purge) == 0
    assert (await api.get(project_url(team.pk), headers=auth(ana))).status_code == 200


async def test_live_project_is_kept_however_old(api, team, ana):
    await in_db(
        Project.objects.filter(pk=team.pk).update, created_at=timezone.now() - timedelta(days=400)
    )
    assert await in_db(purge) == 0
    assert (await api.get(project_url(team.pk), headers=auth(ana))).status_code == 200


async def test_project_with_more_tasks_than_a_batch_is_purged_over_batches(
    api, team, ana, make_task, monkeypatch
):
    monkeypatch.setattr(jobs, "PURGE_BATCH_SIZE", 2)
    for index in range(5):
        await in_db(make_task, ana, title=f"Task {index}", project_id=team.pk)
    await archive(api, team, ana)
    await in_db(archived_days_ago, team, 31)
    assert await in_db(purge) == 6
    assert not await in_db(Project.objects.filter(pk=team.pk).exists)


def test_project_locked_by_a_change_is_left_for_a_later_run(team):
    """A project row that a change holds (FOR UPDATE) is skipped, not waited for."""
    archived_days_ago(team, 31)
    locked, release = threading.Event(), threading.Event()

    def hold_the_project():
        try:
            with transaction.atomic():
                Project.objects.select_for_update().get(pk=team.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_project)
    holder.start()
    try:
        assert locked.wait(10)
        cutoff = timezone.now() - timedelta(days=30)
        assert upkeep.purge_archived_projects(archived_before=cutoff, batch_size=10) == 0
    finally:
        release.set()
        holder.join(10)
    assert Project.objects.filter(pk=team.pk).exists()

"""Requests authenticate without reading the user, and still see every change to the user
at once: a deactivation, a role change, a deletion, however it was made."""

import asyncio
import os
import time

import pytest

from apps.tests.conftest import assert_problem, auth, in_db, queries_on_every_new_connection
from apps.tests.processes import base_env, database_url_for_subprocess, live_relay
from apps.users.models import Role, User

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = "/api/v1/tasks/"
ME = "/api/v1/auth/me/"


def save(user: User, **changes) -> None:
    for name, value in changes.items():
        setattr(user, name, value)
    user.save(update_fields=list(changes))


async def test_an_authenticated_request_does_not_read_the_user(api, ana):
    headers = auth(ana)
    assert (await api.get(TASKS, headers=headers)).status_code == 200  # fills the state
    with queries_on_every_new_connection() as executed:
        response = await api.get(TASKS, headers=headers)
    assert response.status_code == 200
    assert executed, "the list query itself should have been seen"
    assert not [sql for sql in executed if 'FROM "users_user"' in sql], executed


async def test_a_deactivated_user_is_refused_on_the_next_request(api, ana):
    headers = auth(ana)
    assert (await api.get(TASKS, headers=headers)).status_code == 200
    await in_db(save, ana, is_active=False)
    body = assert_problem(await api.get(TASKS, headers=headers), 401)
    assert body["code"] == "user_inactive"
    await in_db(save, ana, is_active=True)
    assert (await api.get(TASKS, headers=headers)).status_code == 200


async def test_a_deleted_user_is_refused_on_the_next_request(api, ana):
    headers = auth(ana)
    assert (await api.get(ME, headers=headers)).status_code == 200
    await in_db(ana.delete)
    body = assert_problem(await api.get(ME, headers=headers), 401)
    assert body["code"] == "user_not_found"


async def test_a_role_change_takes_effect_on_the_next_request(api, ana, bob):
    response = await api.post(TASKS, json={"title": "bob's own"}, headers=auth(bob))
    assert response.status_code == 201
    task_url = f"{TASKS}{response.json()['id']}/"
    headers = auth(ana)
    assert_problem(await api.get(task_url, headers=headers), 404)
    await in_db(save, ana, role=Role.ADMIN)
    assert (await api.get(task_url, headers=headers)).status_code == 200
    assert (await api.get(ME, headers=headers)).json()["role"] == "admin"
    await in_db(save, ana, role=Role.MEMBER)
    assert_problem(await api.get(task_url, headers=headers), 404)


@pytest.mark.e2e  # starts processes
async def test_a_change_behind_the_orm_reaches_requests_through_the_relay(api, ana):
    """`QuerySet.update` sends no signal: the database's trigger tells the live relay
    (a real process), which stores the new state."""
    headers = auth(ana)
    assert (await api.get(ME, headers=headers)).status_code == 200
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        DJANGO_SETTINGS_MODULE="project.settings",
    )
    with live_relay(env=env):
        await in_db(User.objects.filter(pk=ana.pk).update, is_active=False)
        deadline = time.monotonic() + 2
        while (await api.get(ME, headers=headers)).status_code == 200:
            assert time.monotonic() < deadline, "still authenticated 2 s after deactivation"
            await asyncio.sleep(0.02)
        assert_problem(await api.get(ME, headers=headers), 401)

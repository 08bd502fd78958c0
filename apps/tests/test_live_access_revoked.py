"""A user who loses access loses their open sockets at once: a deactivation or a deletion,
however it was made, closes every socket of theirs with 4401, and nothing more is sent on
them. Other users' sockets stay open."""

import os

import pytest
from asgiref.sync import sync_to_async

from apps.tests.conftest import auth, run_relay_once
from apps.tests.processes import base_env, database_url_for_subprocess, live_relay
from apps.tests.test_realtime_consumer import (
    assert_closed_with,
    assert_still_open,
    create_task,
    stream_of,
)
from apps.users.models import User
from apps.users.state import arefresh_user_states
from realtime.consumers import CLOSE_UNAUTHORIZED
from realtime.relay import EventRelay, connect_database

pytestmark = pytest.mark.django_db(transaction=True)


def save(user: User, **changes) -> None:
    for name, value in changes.items():
        setattr(user, name, value)
    user.save(update_fields=list(changes))


async def test_deactivation_closes_every_socket_of_the_user(ana, bob):
    async with (
        stream_of(ana) as (first, _),
        stream_of(ana) as (second, _),
        stream_of(bob) as (bobs, _),
    ):
        await sync_to_async(save)(ana, is_active=False)
        await assert_closed_with(first, CLOSE_UNAUTHORIZED)
        await assert_closed_with(second, CLOSE_UNAUTHORIZED)
        await assert_still_open(bobs)


async def test_deletion_closes_every_socket_of_the_user(ana, bob):
    async with stream_of(ana) as (anas, _), stream_of(bob) as (bobs, _):
        await sync_to_async(ana.delete)()
        await assert_closed_with(anas, CLOSE_UNAUTHORIZED)
        await assert_still_open(bobs)


async def test_nothing_is_sent_after_the_revocation(api, ana, bob):
    """Bob's task is assigned to Ana: its later events would reach her stream, but her
    socket is closed first and gets none of them."""
    response = await api.post(
        "/api/v1/tasks/",
        json={"title": "shared", "assignee": ana.pk},
        headers=auth(bob),
    )
    assert response.status_code == 201, response.text
    await run_relay_once()
    async with stream_of(ana) as (anas, _):
        await sync_to_async(save)(ana, is_active=False)
        await create_task(api, bob, "after the deactivation")
        await run_relay_once()
        await assert_closed_with(anas, CLOSE_UNAUTHORIZED)  # and nothing follows


async def test_the_relay_closes_the_sockets_of_a_user_deactivated_behind_the_orm(ana, bob):
    """`QuerySet.update` sends no signal: the database's trigger tells the relay (here in
    this process), which sends the notice."""
    async with stream_of(ana) as (anas, _), stream_of(bob) as (bobs, _):
        await sync_to_async(User.objects.filter(pk=ana.pk).update)(is_active=False)
        relay = EventRelay()
        try:
            async with await connect_database() as connection:
                revoked = await arefresh_user_states(connection, [ana.pk])
                assert revoked == [ana.pk]
                await relay.send_revoked(revoked)
        finally:
            await relay.close()
        await assert_closed_with(anas, CLOSE_UNAUTHORIZED)
        await assert_still_open(bobs)


@pytest.mark.e2e  # starts processes
async def test_a_live_relay_process_closes_the_sockets_of_a_user_deactivated_by_sql(ana):
    """The whole path with a real relay process: raw SQL, the trigger's NOTIFY, the relay,
    Redis, the socket."""
    env = base_env(
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=os.environ["REDIS_URL"],
        DJANGO_SETTINGS_MODULE="project.settings",
    )
    with live_relay(env=env):
        async with stream_of(ana) as (anas, _):
            await sync_to_async(User.objects.filter(pk=ana.pk).update)(is_active=False)
            await assert_closed_with(anas, CLOSE_UNAUTHORIZED)

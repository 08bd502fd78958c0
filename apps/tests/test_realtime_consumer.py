"""The live stream at /ws/tasks/, driven through the whole ASGI application (origin check,
JWT middleware, router) with the real Redis channel layer and PostgreSQL event log.

No relay process runs here: a test delivers an event the way the relay does, by running
one claim-and-publish of the relay (realtime/relay.py) on the test's own event loop.
"""

import asyncio
import copy
import re
import threading
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
import redis.exceptions
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.tasks import selectors
from apps.tasks.models import StreamEntry, TaskEvent
from apps.tests.conftest import auth, run_relay_once, seqs
from apps.tests.processes import free_port
from realtime import publisher
from realtime.groups import user_stream_group
from realtime.relay import EventRelay, connect_database, stream_message

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/ws/tasks/"
TASKS = "/api/v1/tasks/"
ARRIVES = 5  # seconds to wait for something that should arrive
SILENCE = 0.5  # seconds of quiet that show nothing (more) was sent
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# --- Helpers --------------------------------------------------------------------------------


def token_for(user, *, lifetime: timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def bearer(user) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token_for(user)}".encode())]


@asynccontextmanager
async def stream(path=STREAM, *, headers=None, subprotocols=None):
    """A connection to the full ASGI application; yields (communicator, connected, extra)
    where `extra` is the chosen subprotocol when accepted, the close code when refused."""
    from project.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=headers, subprotocols=subprotocols
    )
    connected, extra = await communicator.connect(timeout=ARRIVES)
    try:
        yield communicator, connected, extra
    finally:
        # A receive that timed out has already cancelled the application.
        if not communicator.future.cancelled():
            await communicator.disconnect(timeout=ARRIVES)


@asynccontextmanager
async def stream_of(user, path=STREAM):
    """An authenticated connection of `user` whose hello was already read; yields
    (communicator, hello)."""
    async with stream(path, headers=bearer(user)) as (communicator, connected, _):
        assert connected
        hello = await communicator.receive_json_from(timeout=ARRIVES)
        assert hello["type"] == "hello", hello
        yield communicator, hello


async def assert_closed_with(communicator, code: int) -> None:
    """The next thing the server sends is a close with `code`, and nothing follows."""
    message = await communicator.receive_output(timeout=ARRIVES)
    assert message == {"type": "websocket.close", "code": code}, message
    assert await communicator.receive_nothing(timeout=SILENCE)


async def receive_events(communicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from(timeout=ARRIVES) for _ in range(count)]


async def assert_silent(communicator) -> None:
    assert await communicator.receive_nothing(timeout=SILENCE)


async def create_task(api, user, title="Task") -> int:
    """Create a task through the REST API; returns the id of its `task.created` event."""
    response = await api.post(TASKS, json={"title": title}, headers=auth(user))
    assert response.status_code == 201, response.text
    return await last_event_id(response.json()["id"])


async def last_event_id(task_id) -> int:
    event = await TaskEvent.objects.filter(task_id=task_id).order_by("-id").afirst()
    assert event is not None, f"task {task_id} has no event"
    return event.pk


async def event_id_at(user, seq: int) -> int:
    entry = await StreamEntry.objects.aget(user=user, seq=seq)
    return entry.event_id


async def publish(event_id: int) -> None:
    """Deliver this one event to the channel layer as the relay does after its commit
    (again, if it was published already; the others count as published)."""
    await TaskEvent.objects.exclude(pk=event_id).aupdate(published_at=timezone.now())
    await TaskEvent.objects.filter(pk=event_id).aupdate(published_at=None)
    await run_relay_once()


async def create_tasks(api, user, count: int) -> list[int]:
    return [await create_task(api, user, f"Task {n}") for n in range(1, count + 1)]


# --- Authentication -------------------------------------------------------------------------


async def test_connection_without_token_is_closed_with_4401():
    async with stream() as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_garbage_token_is_closed_with_4401():
    async with stream(headers=[(b"authorization", b"Bearer not.a.token")]) as (
        communicator,
        connected,
        _,
    ):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_garbage_token_in_subprotocol_is_closed_with_4401():
    async with stream(subprotocols=["bearer", "not.a.token"]) as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_expired_token_is_closed_with_4401(ana):
    token = token_for(ana, lifetime=timedelta(seconds=-60))
    async with stream(headers=[(b"authorization", f"Bearer {token}".encode())]) as (
        communicator,
        connected,
        _,
    ):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_refresh_token_used_as_access_token_is_closed_with_4401(ana):
    refresh = str(await sync_to_async(RefreshToken.for_user)(ana))
    async with stream(subprotocols=["bearer", refresh]) as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_token_of_inactive_user_is_closed_with_4401(make_user):
    dormant = await sync_to_async(make_user)("dormant", is_active=False)
    async with stream(headers=bearer(dormant)) as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_token_in_query_string_is_not_accepted(ana):
    async with stream(f"{STREAM}?token={token_for(ana)}") as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4401)


async def test_token_in_subprotocol_is_accepted_with_bearer_subprotocol(ana):
    async with stream(subprotocols=["bearer", token_for(ana)]) as (communicator, connected, sub):
        assert connected
        assert sub == "bearer"
        hello = await communicator.receive_json_from(timeout=ARRIVES)
        assert hello["type"] == "hello"


async def test_token_in_authorization_header_is_accepted(ana):
    async with stream(headers=bearer(ana)) as (communicator, connected, sub):
        assert connected
        assert sub is None
        hello = await communicator.receive_json_from(timeout=ARRIVES)
        assert hello["type"] == "hello"


async def test_connection_is_closed_with_4401_when_token_expires(ana):
    token = token_for(ana, lifetime=timedelta(seconds=2))
    async with stream(subprotocols=["bearer", token]) as (communicator, connected, _):
        assert connected
        assert (await communicator.receive_json_from(timeout=ARRIVES))["type"] == "hello"
        message = await communicator.receive_output(timeout=10)
        assert message == {"type": "websocket.close", "code": 4401}


# --- Origin ---------------------------------------------------------------------------------


async def test_origin_outside_allowed_hosts_is_refused(ana):
    headers = [(b"origin", b"http://evil.example"), *bearer(ana)]
    async with stream(headers=headers) as (_, connected, _):
        assert connected is False


async def test_allowed_origin_is_accepted(ana):
    headers = [(b"origin", b"http://localhost"), *bearer(ana)]
    async with stream(headers=headers) as (communicator, connected, _):
        assert connected
        assert (await communicator.receive_json_from(timeout=ARRIVES))["type"] == "hello"


async def test_client_without_origin_is_accepted(ana):
    async with stream(headers=bearer(ana)) as (communicator, connected, _):
        assert connected
        assert (await communicator.receive_json_from(timeout=ARRIVES))["type"] == "hello"


# --- Paths and query ------------------------------------------------------------------------


async def test_unknown_ws_path_is_closed_with_4404(ana):
    async with stream("/ws/nope/", headers=bearer(ana)) as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4404)


async def test_malformed_after_is_closed_with_4400(ana):
    async with stream(f"{STREAM}?after=abc", headers=bearer(ana)) as (communicator, connected, _):
        assert connected
        await assert_closed_with(communicator, 4400)


# --- Hello ----------------------------------------------------------------------------------


async def test_hello_of_new_user_has_last_seq_zero(ana):
    async with stream_of(ana) as (communicator, hello):
        assert hello == {"type": "hello", "user": {"id": ana.pk, "username": "ana"}, "last_seq": 0}
        await assert_silent(communicator)


async def test_hello_carries_last_seq_of_users_stream(api, ana):
    await create_tasks(api, ana, 3)
    async with stream_of(ana) as (communicator, hello):
        assert hello == {"type": "hello", "user": {"id": ana.pk, "username": "ana"}, "last_seq": 3}
        await assert_silent(communicator)


# --- Live delivery --------------------------------------------------------------------------


async def test_published_event_arrives_live(api, ana):
    async with stream_of(ana) as (communicator, _):
        event_id = await create_task(api, ana, "Live one")
        await publish(event_id)
        event = await communicator.receive_json_from(timeout=ARRIVES)
        assert event["type"] == "task.created"
        assert event["seq"] == 1
        assert event["task"]["title"] == "Live one"
        assert event["actor"] == {"id": ana.pk, "username": "ana"}


async def test_live_events_name_the_assignee_and_follow_a_reassignment(api, ana, bob, eve):
    async with stream_of(ana) as (communicator, _):
        response = await api.post(
            TASKS, json={"title": "Named", "assignee": bob.pk}, headers=auth(ana)
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        await publish(await last_event_id(task_id))
        created = await communicator.receive_json_from(timeout=ARRIVES)
        assert created["task"]["assignee_user"] == {"id": bob.pk, "username": "bob"}
        for assignee, named in ((eve.pk, {"id": eve.pk, "username": "eve"}), (None, None)):
            response = await api.patch(
                f"{TASKS}{task_id}/", json={"assignee": assignee}, headers=auth(ana)
            )
            assert response.status_code == 200, response.text
            await publish(await last_event_id(task_id))
            updated = await communicator.receive_json_from(timeout=ARRIVES)
            assert updated["type"] == "task.updated"
            assert (updated["task"]["assignee"], updated["task"]["assignee_user"]) == (
                assignee,
                named,
            )


async def test_a_task_without_assignee_arrives_with_null_assignee_user(api, ana):
    async with stream_of(ana) as (communicator, _):
        await publish(await create_task(api, ana))
        event = await communicator.receive_json_from(timeout=ARRIVES)
        assert (event["task"]["assignee"], event["task"]["assignee_user"]) == (None, None)


async def test_stranger_receives_nothing_of_anothers_task(api, ana, eve):
    async with stream_of(eve) as (communicator, _):
        await publish(await create_task(api, ana))
        await assert_silent(communicator)


async def test_live_event_is_json_ready_after_the_redis_layer(api, ana):
    async with stream_of(ana) as (communicator, _):
        await publish(await create_task(api, ana))
        event = await communicator.receive_json_from(timeout=ARRIVES)
    task = event["task"]
    assert isinstance(task["id"], str)
    for moment in (event["at"], task["created_at"], task["updated_at"]):
        assert isinstance(moment, str), moment
        assert RFC3339.match(moment), moment
        assert datetime.fromisoformat(moment.replace("Z", "+00:00")).tzinfo is not None


async def test_event_published_twice_is_delivered_once(api, ana):
    async with stream_of(ana) as (communicator, _):
        event_id = await create_task(api, ana)
        await publish(event_id)
        await publish(event_id)
        assert seqs(await receive_events(communicator, 1)) == [1]
        await assert_silent(communicator)


async def test_gap_in_live_events_is_filled_from_the_log(api, ana):
    await create_task(api, ana)
    async with stream_of(ana) as (communicator, hello):
        assert hello["last_seq"] == 1
        await create_tasks(api, ana, 2)
        await publish(await event_id_at(ana, 3))
        assert seqs(await receive_events(communicator, 2)) == [2, 3]
        await publish(await event_id_at(ana, 2))
        await assert_silent(communicator)


async def test_socket_that_missed_a_live_event_catches_up_on_the_stream_head(api, ana):
    """A live message lost on the way (the socket's process was reconnecting to Redis)
    is repaired by the relay's periodic word on the stream's last seq."""
    async with stream_of(ana) as (communicator, _):
        await publish(await create_task(api, ana))
        assert seqs(await receive_events(communicator, 1)) == [1]
        lost = await create_task(api, ana, "Lost on the way")
        await TaskEvent.objects.filter(pk=lost).aupdate(published_at=timezone.now())
        await assert_silent(communicator)
        relay = EventRelay()
        relay.remember_heads([(lost, ana.pk, 2)])
        try:
            await relay.send_heads()
        finally:
            await relay.close()
        [event] = await receive_events(communicator, 1)
        assert (event["seq"], event["task"]["title"]) == (2, "Lost on the way")
        await assert_silent(communicator)


async def test_relay_leaves_events_unpublished_while_redis_is_away(api, ana, settings):
    """A batch whose messages Redis refused is rolled back: the events stay in the
    outbox, and the next round publishes them."""
    await create_tasks(api, ana, 2)
    working = settings.CHANNEL_LAYERS
    layers = copy.deepcopy(working)
    layers["default"]["CONFIG"]["hosts"] = [{"address": f"redis://127.0.0.1:{free_port()}/0"}]
    settings.CHANNEL_LAYERS = layers
    relay = EventRelay()
    try:
        async with await connect_database() as connection:
            with pytest.raises(redis.exceptions.ConnectionError):
                await relay.publish_pending(connection)
    finally:
        await relay.close()
    assert await TaskEvent.objects.filter(published_at__isnull=True).acount() == 2
    settings.CHANNEL_LAYERS = working
    assert await run_relay_once() == 2
    assert await TaskEvent.objects.filter(published_at__isnull=True).acount() == 0


async def test_idle_socket_runs_no_task_besides_its_application(ana):
    async with stream_of(ana):  # the first socket starts the layer's Redis reader
        before = len(asyncio.all_tasks())
        async with stream_of(ana):
            await asyncio.sleep(SILENCE)
            assert len(asyncio.all_tasks()) == before + 1


async def test_handshake_headers_and_token_are_not_kept_after_connect(ana):
    headers = bearer(ana)
    subprotocols = ["bearer", token_for(ana)]
    async with stream(headers=headers, subprotocols=subprotocols) as (communicator, connected, _):
        assert connected
        await communicator.receive_json_from(timeout=ARRIVES)
        assert headers == []
        assert subprotocols == []


async def test_live_event_leaves_no_task_running_after_its_delivery(api, ana):
    async with stream_of(ana) as (communicator, _):
        await asyncio.sleep(SILENCE)
        idle = len(asyncio.all_tasks())
        await publish(await create_task(api, ana))
        await receive_events(communicator, 1)
        await asyncio.sleep(SILENCE)
        assert len(asyncio.all_tasks()) == idle


# --- Resume ---------------------------------------------------------------------------------


async def test_resume_with_after_in_query_replays_then_continues_live(api, ana):
    await create_tasks(api, ana, 3)
    async with stream_of(ana, f"{STREAM}?after=1") as (communicator, hello):
        assert hello["last_seq"] == 3
        assert seqs(await receive_events(communicator, 2)) == [2, 3]
        await assert_silent(communicator)
        await publish(await create_task(api, ana))
        assert seqs(await receive_events(communicator, 1)) == [4]


async def test_resume_with_after_zero_replays_everything(api, ana):
    await create_tasks(api, ana, 3)
    async with stream_of(ana, f"{STREAM}?after=0") as (communicator, _):
        events = await receive_events(communicator, 3)
        assert seqs(events) == [1, 2, 3]
        assert [event["task"]["title"] for event in events] == ["Task 1", "Task 2", "Task 3"]
        await assert_silent(communicator)


async def test_resume_message_replays_then_continues_live(api, ana):
    await create_tasks(api, ana, 3)
    async with stream_of(ana) as (communicator, _):
        await communicator.send_json_to({"type": "resume", "after": 1})
        assert seqs(await receive_events(communicator, 2)) == [2, 3]
        await assert_silent(communicator)
        await publish(await create_task(api, ana))
        assert seqs(await receive_events(communicator, 1)) == [4]


async def test_replayed_event_is_not_delivered_again_live(api, ana):
    await create_tasks(api, ana, 2)
    async with stream_of(ana, f"{STREAM}?after=0") as (communicator, _):
        assert seqs(await receive_events(communicator, 2)) == [1, 2]
        await publish(await event_id_at(ana, 2))
        await assert_silent(communicator)


async def test_resume_past_pruned_entries_requires_resync(api, ana):
    await create_tasks(api, ana, 3)
    await StreamEntry.objects.filter(user=ana, seq__lte=2).adelete()
    async with stream_of(ana, f"{STREAM}?after=0") as (communicator, _):
        assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "resync_required"}
        await assert_silent(communicator)


async def test_resume_message_past_pruned_entries_requires_resync(api, ana):
    await create_tasks(api, ana, 3)
    await StreamEntry.objects.filter(user=ana, seq__lte=2).adelete()
    async with stream_of(ana) as (communicator, _):
        await communicator.send_json_to({"type": "resume", "after": 1})
        assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "resync_required"}
        await assert_silent(communicator)


async def test_resume_after_pruned_entries_continues_live(api, ana):
    await create_tasks(api, ana, 3)
    await StreamEntry.objects.filter(user=ana, seq__lte=2).adelete()
    async with stream_of(ana, f"{STREAM}?after=0") as (communicator, _):
        assert (await communicator.receive_json_from(timeout=ARRIVES))["type"] == "resync_required"
        await publish(await create_task(api, ana))
        assert seqs(await receive_events(communicator, 1)) == [4]


async def test_resume_beyond_last_seq_requires_resync(api, ana):
    await create_tasks(api, ana, 2)
    async with stream_of(ana, f"{STREAM}?after=9") as (communicator, _):
        assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "resync_required"}
        await assert_silent(communicator)


async def test_resume_beyond_last_seq_continues_live(api, ana):
    await create_tasks(api, ana, 2)
    async with stream_of(ana, f"{STREAM}?after=9") as (communicator, _):
        assert (await communicator.receive_json_from(timeout=ARRIVES))["type"] == "resync_required"
        await publish(await create_task(api, ana))
        assert seqs(await receive_events(communicator, 1)) == [3]


# --- Client messages ------------------------------------------------------------------------


async def assert_still_open(communicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "pong"}


async def test_ping_gets_pong(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "pong"}


async def test_unknown_message_type_gets_error_and_connection_stays_open(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_json_to({"type": "subscribe"})
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert reply["detail"]
        await assert_still_open(communicator)


async def test_non_json_text_gets_error_and_connection_stays_open(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_to(text_data="this is {not json")
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert reply["detail"]
        await assert_still_open(communicator)


@pytest.mark.parametrize("after", ["3", -1, True, None, 1.5])
async def test_resume_with_bad_after_gets_error_and_connection_stays_open(ana, after):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_json_to({"type": "resume", "after": after})
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert reply["detail"]
        await assert_still_open(communicator)


# --- Sync publisher (outside the web process) ----------------------------------------


async def test_sync_publisher_reuses_one_event_loop_across_calls(api, ana):
    async with stream_of(ana) as (communicator, _):
        await create_tasks(api, ana, 3)
        events = await sync_to_async(selectors.stream_events_after)(user=ana, after=0, limit=10)
        # Sync callers use send_to_groups from plain threads that run no event loop.
        loop_threads = []
        for event in events:
            message = stream_message(event["seq"], event)
            await asyncio.to_thread(
                publisher.send_to_groups, [(user_stream_group(ana.pk), message)]
            )
            loop_threads.append(
                {t.ident for t in threading.enumerate() if t.name == "channel-layer-loop"}
            )
        assert len(loop_threads[0]) == 1
        assert loop_threads == [loop_threads[0]] * 3
        assert seqs(await receive_events(communicator, 3)) == [1, 2, 3]


# --- Bad input -------------------------------------------------------------------------


async def test_binary_frame_gets_error_and_is_closed_with_1003(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_to(bytes_data=b"\x00\x01 not text")
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert "Binary" in reply["detail"]
        message = await communicator.receive_output(timeout=ARRIVES)
        assert message["type"] == "websocket.close", message
        assert message["code"] == 1003, message


async def test_json_nested_too_deep_gets_error_and_connection_stays_open(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_to(text_data="[" * 100_000 + "]" * 100_000)
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert reply["detail"]
        await assert_still_open(communicator)


async def test_empty_text_frame_gets_error_and_connection_stays_open(ana):
    async with stream_of(ana) as (communicator, _):
        await communicator.send_input({"type": "websocket.receive", "text": ""})
        reply = await communicator.receive_json_from(timeout=ARRIVES)
        assert reply["type"] == "error"
        assert reply["detail"]
        await assert_still_open(communicator)


async def test_a_flood_of_messages_is_cut_off_with_1008(ana):
    """The burst allowance is answered; past it the socket gets an error and a close."""
    from realtime.consumers import MESSAGE_BURST

    async with stream_of(ana) as (communicator, _):
        for _ in range(MESSAGE_BURST * 5):
            await communicator.send_json_to({"type": "ping"})
        replies = []
        while True:
            message = await communicator.receive_output(timeout=ARRIVES)
            if message["type"] == "websocket.close":
                break
            replies.append(message["text"])
        assert message["code"] == 1008, message
        pongs = [reply for reply in replies if '"pong"' in reply]
        assert MESSAGE_BURST <= len(pongs) < MESSAGE_BURST * 2, len(pongs)
        assert '"error"' in replies[-1], replies[-1]
        assert await communicator.receive_nothing(timeout=SILENCE)


async def test_a_steady_client_is_never_cut_off(ana):
    """Pings at the allowed rate, after the burst was spent, are all answered."""
    from realtime import consumers

    async with stream_of(ana) as (communicator, _):
        for _ in range(consumers.MESSAGE_BURST):
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "pong"}
        for _ in range(5):
            await asyncio.sleep(1.2 / consumers.MESSAGES_PER_SECOND)
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from(timeout=ARRIVES) == {"type": "pong"}

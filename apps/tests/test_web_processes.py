"""The web tier with several daphne processes on one port, as compose/django/start runs it:
under supervisord, each daphne listens on the port with its own socket (SO_REUSEPORT), and
the kernel spreads the connections over them.

Which daphne holds a connection is read from /proc: the server side of the connection in
/proc/net/tcp names a socket inode, and exactly one daphne has that inode among its file
descriptors. Events reach every socket of a user through the Redis channel layer, whichever
process holds it, published by the real live relay after a change made over REST.
"""

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import ClientConnection, connect

from apps.tests.conftest import assert_problem, auth
from apps.tests.processes import (
    REPO,
    base_env,
    database_url_for_subprocess,
    live_relay,
    serves_healthz,
    web_tier,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARRIVES = 10  # seconds to wait for something that should arrive
# Connections opened, at most, to find one on each daphne; the kernel hands each to one
# of them by a hash of its addresses, so a handful is normally enough.
MAX_CONNECTIONS = 40
BURST = 32  # connections opened at once
ESTABLISHED = "01"  # the connection state in /proc/net/tcp


def _tier_env(**extra: str) -> dict:
    return base_env(
        DATABASE_URL=database_url_for_subprocess(),
        AUTH_THROTTLE_RATE="1000/min",
        **extra,
    )


@pytest.fixture(scope="module")
def tier(django_db_setup):
    """Two daphnes on one port against the test database and the suite's Redis."""
    env = _tier_env(REDIS_URL=os.environ["REDIS_URL"], WEB_CONCURRENCY="2")
    with web_tier(env=env, processes=2) as tier:
        yield tier


@pytest.fixture(scope="module")
def relay(django_db_setup):
    """The live relay, which publishes each committed event to the channel layer."""
    env = base_env(DATABASE_URL=database_url_for_subprocess(), REDIS_URL=os.environ["REDIS_URL"])
    with live_relay(env=env) as relay:
        yield relay


# --- Which daphne holds a connection -----------------------------------------------------


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the connection from `client_port` to `server_port`
    on 127.0.0.1, from /proc/net/tcp (addresses are hex "IP:PORT")."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if (
            state == ESTABLISHED
            and int(local.rsplit(":", 1)[1], 16) == server_port
            and int(remote.rsplit(":", 1)[1], 16) == client_port
        ):
            return inode
    return None


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets that process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def holder(tier, socket: ClientConnection) -> int:
    """The pid of the daphne that holds this client's connection."""
    return holder_of(tier, socket.local_address[1])


def holder_of(tier, client_port: int) -> int:
    """The pid of the daphne that holds the connection from this client port."""
    server_port = int(tier.base_url.rsplit(":", 1)[1])
    inode = _server_socket_inode(server_port, client_port)
    assert inode is not None, f"no connection from port {client_port} in /proc/net/tcp"
    holders = [pid for pid in tier.daphnes() if inode in _socket_inodes(pid)]
    assert len(holders) == 1, f"socket {inode} is held by {holders} of {tier.daphnes()}"
    return holders[0]


# --- Clients ----------------------------------------------------------------------------------


async def receive(socket: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), ARRIVES))


@contextlib.asynccontextmanager
async def stream_on_every_daphne(tier, user):
    """`user`'s connections to /ws/tasks/, one held by each daphne of the tier (each past
    its hello); yields {daphne pid: connection}. Connections are opened until every
    daphne holds one; the extra ones are closed at once."""
    url = tier.base_url.replace("http://", "ws://", 1) + "/ws/tasks/"
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
    daphnes = set(tier.daphnes())
    held: dict[int, ClientConnection] = {}
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_CONNECTIONS):
            socket = await connect(url, open_timeout=ARRIVES, additional_headers=headers)
            hello = await receive(socket)
            assert hello["type"] == "hello", hello
            pid = holder(tier, socket)
            if pid in held:
                await socket.close()
                continue
            held[pid] = socket
            stack.push_async_callback(socket.close)
            if set(held) == daphnes:
                break
        assert set(held) == daphnes, (
            f"{MAX_CONNECTIONS} connections all went to {sorted(held)} of {sorted(daphnes)}"
        )
        yield held


# --- Tests ------------------------------------------------------------------------------------


async def test_connections_to_the_one_port_are_served_by_both_daphnes(tier, ana):
    async with stream_on_every_daphne(tier, ana) as held:
        assert len(held) == 2
        for socket in held.values():
            await socket.send(json.dumps({"type": "ping"}))
            assert await receive(socket) == {"type": "pong"}


async def test_connections_opened_all_at_once_are_spread_over_both_daphnes(tier):
    """A client opening its connections at once (as wrk and browsers with many tabs do)
    gets both processes: with one shared socket, the first daphne to wake took them all."""
    host, port = "127.0.0.1", int(tier.base_url.rsplit(":", 1)[1])
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(BURST)),
    )
    try:
        holders = collections.Counter(
            holder_of(tier, writer.get_extra_info("sockname")[1]) for _, writer in opened
        )
    finally:
        for _, writer in opened:
            writer.close()
    assert set(holders) == set(tier.daphnes()), holders
    assert min(holders.values()) >= BURST // 8, holders


def test_a_second_tier_on_a_served_port_is_refused(tier):
    """SO_REUSEPORT would let a second web tier join the port and take half its
    connections; compose/django/start refuses the port instead, before starting anything."""
    port = tier.base_url.rsplit(":", 1)[1]
    env = _tier_env(
        REDIS_URL=os.environ["REDIS_URL"], WEB_CONCURRENCY="2", WEB_HOST="127.0.0.1", PORT=port
    )
    result = subprocess.run(
        [str(REPO / "compose/django/start")],
        cwd=REPO,
        env={**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: cannot serve 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Web tier:" not in result.stdout
    assert serves_healthz(tier.base_url)


async def test_a_users_sockets_on_different_daphnes_each_receive_their_event(tier, relay, ana):
    async with (
        stream_on_every_daphne(tier, ana) as held,
        httpx.AsyncClient(base_url=tier.base_url, timeout=ARRIVES) as web,
    ):
        response = await web.post(
            "/api/v1/tasks/", headers=auth(ana), json={"title": "Seen everywhere"}
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        received = {pid: await receive(socket) for pid, socket in held.items()}
    assert len(received) == 2
    for event in received.values():
        assert event["type"] == "task.created", received
        assert event["task"]["id"] == task_id
    assert len({event["seq"] for event in received.values()}) == 1, received


async def test_a_killed_daphne_is_started_again_and_the_port_keeps_serving(tier, ana):
    victim, survivor = tier.daphnes()
    started = tier.listening_daphnes()
    os.kill(victim, signal.SIGKILL)
    # The survivor's socket still listens: nothing is refused meanwhile.
    deadline = time.monotonic() + ARRIVES
    while len(daphnes := tier.daphnes()) < 2 or victim in daphnes:
        assert await asyncio.to_thread(serves_healthz, tier.base_url)
        assert time.monotonic() < deadline, f"no daphne took {victim}'s place: {daphnes}"
        await asyncio.sleep(0.1)
    assert survivor in daphnes
    # The new daphne joins the port once it has loaded the project.
    tier.wait_for("the new daphne listening", lambda: tier.listening_daphnes() > started)
    async with stream_on_every_daphne(tier, ana) as held:
        assert set(held) == set(daphnes)


def test_embedded_mode_runs_one_daphne_whatever_web_concurrency_says(django_db_setup):
    with web_tier(env=_tier_env(WEB_CONCURRENCY="3"), processes=1) as tier:
        assert len(tier.daphnes()) == 1
        assert "Embedded mode (no REDIS_URL): one web process, not WEB_CONCURRENCY=3." in (
            tier.log()
        )
        assert "spawned: 'daphne-1'" not in tier.log()


def test_sigterm_stops_supervisord_and_every_daphne(django_db_setup):
    env = _tier_env(REDIS_URL=os.environ["REDIS_URL"], WEB_CONCURRENCY="2")
    with web_tier(env=env, processes=2) as tier:
        daphnes = tier.daphnes()
        assert tier.stop() == 0
    for pid in daphnes:
        assert not Path(f"/proc/{pid}").exists(), f"daphne {pid} outlived supervisord"


def test_a_web_concurrency_that_is_not_a_count_is_refused():
    env = base_env(REDIS_URL=os.environ["REDIS_URL"], WEB_CONCURRENCY="all")
    result = subprocess.run(
        [str(REPO / "compose/django/start")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "WEB_CONCURRENCY must be a whole number" in result.stderr


async def test_a_form_body_is_left_to_the_api_not_parsed_by_twisted(tier, ana):
    """compose/django/daphne turns off twisted's own parsing of form POSTs (daphne hands
    the raw body to Django): a multipart body that twisted cannot parse gets the API's
    answer, not twisted's bare 400 and a dropped connection."""
    async with httpx.AsyncClient(base_url=tier.base_url, timeout=ARRIVES) as web:
        response = await web.post(
            "/api/v1/tasks/",
            headers={**auth(ana), "Content-Type": "multipart/form-data; boundary=x"},
            content=b"not a multipart body",
        )
    body = assert_problem(response, 415)
    assert "multipart/form-data" in body["detail"], body


async def test_a_websocket_message_over_the_limit_is_closed_with_1009(tier, ana):
    """The stream's client messages are a few bytes; one over 64 KiB gets a close frame
    with 1009 (message too big), not a dropped connection, and the tier serves on."""
    from websockets.exceptions import ConnectionClosed

    url = tier.base_url.replace("http://", "ws://", 1) + "/ws/tasks/"
    headers = {"Authorization": f"Bearer {AccessToken.for_user(ana)}"}
    async with connect(url, open_timeout=ARRIVES, additional_headers=headers) as socket:
        assert (await receive(socket))["type"] == "hello"
        await socket.send(json.dumps({"type": "ping", "pad": "x" * (1 << 20)}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), ARRIVES)
        assert closed.value.rcvd is not None, "dropped without a close frame"
        assert closed.value.rcvd.code == 1009, closed.value.rcvd
    async with connect(url, open_timeout=ARRIVES, additional_headers=headers) as socket:
        assert (await receive(socket))["type"] == "hello"
        await socket.send(json.dumps({"type": "ping"}))
        assert await receive(socket) == {"type": "pong"}


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([b"\x00\x01"], 1003, id="binary frame: 1003"),
        pytest.param([json.dumps({"type": "ping"})] * 100, 1008, id="flood: 1008"),
    ],
)
async def test_the_consumers_close_codes_reach_the_client_through_daphne(tier, ana, frames, code):
    """autobahn refuses protocol close codes from an application (only 1000 and
    3000-4999); compose/django/daphne sends them, so a binary frame gets 1003 and a flood
    1008 after the `error`, not a traceback and 1011."""
    from websockets.exceptions import ConnectionClosed

    log_from = len(tier.log())
    url = tier.base_url.replace("http://", "ws://", 1) + "/ws/tasks/"
    headers = {"Authorization": f"Bearer {AccessToken.for_user(ana)}"}
    async with connect(url, open_timeout=ARRIVES, additional_headers=headers) as socket:
        assert (await receive(socket))["type"] == "hello"
        for frame in frames:
            await socket.send(frame)
        types = []

        async def receive_until_closed():
            while True:
                types.append((await receive(socket))["type"])

        with pytest.raises(ConnectionClosed) as closed:
            await receive_until_closed()
        assert "error" in types, types
        assert closed.value.rcvd is not None, "dropped without a close frame"
        assert closed.value.rcvd.code == code, closed.value.rcvd
    assert "Traceback" not in tier.log()[log_from:]


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_message_sent_after_the_client_closed_is_dropped_not_raised(state):
    """A live event can go out while the client's close (or a message over the limit) is
    in flight; daphne's protocol, as compose/django/daphne runs it, drops it rather than
    raising autobahn's `Disconnected` through the consumer (scripts/reliability found
    that traceback in the tier's log). The launcher's patches, on the real protocol."""
    import runpy

    runpy.run_path(str(REPO / "compose/django/daphne"), run_name="launcher")
    from daphne import ws_protocol

    protocol = ws_protocol.WebSocketProtocol()
    protocol.client_addr = ["127.0.0.1", 4321]
    protocol.state = getattr(protocol, state)
    protocol.serverSend('{"type": "task.updated"}', False)  # no Disconnected

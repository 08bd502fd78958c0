"""An open-loop HTTP/1.1 load generator: requests go out on a fixed schedule whether or
not earlier ones have been answered, and each latency is measured from the request's
scheduled time, so a server that stalls is charged for the requests it kept waiting
(no coordinated omission, which a closed-loop client such as wrk has).

Raw asyncio streams rather than an HTTP client library: the client shares the cores with
the servers it measures, so it should cost as little per request as it can.
"""

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class OpenLoopResult:
    rate: float
    sent: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    late_sends: int = 0


class _Connections:
    """Keep-alive connections to one server, opened on demand up to `limit`; a request
    that finds none idle and the limit reached waits for one (its wait counts)."""

    def __init__(self, host: str, port: int, limit: int):
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def take(self):
        """(connection, whether it was kept from an earlier request)."""
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop(), True
            self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port), False
        except OSError:
            await self.drop(None)
            raise

    async def give_back(self, connection) -> None:
        async with self.freed:
            self.idle.append(connection)
            self.freed.notify()

    async def drop(self, connection) -> None:
        if connection is not None:
            connection[1].close()
        async with self.freed:
            self.opened -= 1
            self.freed.notify()

    def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()


class _ServerClosed(ConnectionError):
    """The server closed the connection before answering a word."""


async def _exchange(
    reader: asyncio.StreamReader, writer, request: bytes
) -> tuple[int, bool, bytes]:
    """Send one request and read its whole response; returns (status, keep-alive, body)."""
    writer.write(request)
    try:
        status_line = await reader.readline()
    except ConnectionResetError as error:
        raise _ServerClosed("the server closed the connection") from error
    if not status_line:
        raise _ServerClosed("the server closed the connection")
    status = int(status_line.split()[1])
    length, chunked, keep_alive = 0, False, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep_alive = False
    body = b""
    if chunked:
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readline()
    elif length:
        body = await reader.readexactly(length)
    return status, keep_alive, body


def build_request(
    method: str, path: str, host: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class KeepAliveClient:
    """Requests to one server over keep-alive connections, for benchmark clients that
    send many requests at once: an HTTP client library's pool (httpx's) costs the client
    more CPU per request the more requests wait, and a client that falls behind then
    measures itself (live_e2e at 100 changes/s: its PATCHes waited seconds in httpx while
    daphne idled)."""

    def __init__(self, base_url: str, max_connections: int = 256):
        parts = urlsplit(base_url)
        self.host = parts.netloc  # the Host header's value
        self._pool = _Connections(parts.hostname, parts.port, max_connections)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request and return (status, body); raises OSError and the like when
        the connection fails. A kept connection that the server has closed meanwhile
        (daphne closes one idle for a minute) is dropped and the request sent again on a
        new one, as HTTP clients do: the server never read it."""
        return await self.send(build_request(method, path, self.host, headers, body))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """`request` as built by `build_request`; otherwise as `request()`."""
        while True:
            connection, reused = await self._pool.take()
            try:
                status, keep_alive, content = await _exchange(*connection, request)
            except _ServerClosed:
                await self._pool.drop(connection)
                if reused:
                    continue
                raise
            except BaseException:
                await self._pool.drop(connection)
                raise
            if keep_alive:
                await self._pool.give_back(connection)
            else:
                await self._pool.drop(connection)
            return status, content

    def close(self) -> None:
        self._pool.close()


async def run_open_loop(
    base_url: str,
    make_request: Callable[[str], bytes],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 256,
) -> OpenLoopResult:
    """Send `rate` requests a second for `seconds` (evenly spaced, with a random phase),
    each built by `make_request(host)`; 2xx answers count as successes."""
    client = KeepAliveClient(base_url, max_connections)
    result = OpenLoopResult(rate=rate, sent=0)
    interval = 1 / rate
    total = int(rate * seconds)

    async def one(scheduled: float) -> None:
        try:
            status, _body = await client.send(make_request(client.host))
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            result.errors += 1
            return
        if 200 <= status < 300:
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        else:
            result.errors += 1

    pending = set()
    start = time.perf_counter() + random.uniform(0, interval)
    for number in range(total):
        scheduled = start + number * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.001:
            result.late_sends += 1
        task = asyncio.create_task(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
        result.sent += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*pending), timeout=60)
    client.close()
    return result

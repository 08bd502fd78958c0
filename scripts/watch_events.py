#!/usr/bin/env python3
"""Watch a user's live task events in the terminal.

Logs in over the REST API, connects to the event stream at /ws/tasks/ and prints one line
per event: when it happened, its seq, its type, the task (id and title), who did it and,
for updates, what changed. If the connection drops it reconnects with `?after=<last seq>`,
so no event is missed or shown twice; when the server closes with 4401 (the access token
expired) it gets a fresh one with the refresh token (which rotates) and carries on.

Usage, from the repository root:

    .venv/bin/python scripts/watch_events.py --url http://localhost:8000 --username ana
    .venv/bin/python scripts/watch_events.py --url https://tasks.example.com \\
        --username ana --after 1040 --json | jq .

Options:
    --url URL          the server's base URL; the socket uses ws:// or wss:// to match
    --username NAME    who to log in as (username or email)
    --password PW      the password; asked for when left out (a password on the command
                       line is visible to other users of the machine)
    --after N          first replay every event after seq N; without it the stream starts
                       at the seq the server's hello names, so only new events show
    --json             print each event as its raw JSON, one object per line

Events go to stdout; connection notices and errors go to stderr. Ctrl-C stops it.
"""

import argparse
import asyncio
import contextlib
import getpass
import json
import signal
import sys
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

CLOSE_UNAUTHORIZED = 4401
FATAL_CLOSES = {
    4400: "the server refused the resume position",
    4404: "there is no event stream at this URL",
}
MAX_BACKOFF_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 15


class WatchError(Exception):
    """Something the watcher cannot recover from; the message says what."""


class Credentials:
    """The REST side: log in, and refresh the access token (refresh tokens rotate)."""

    def __init__(self, http: httpx.AsyncClient, username: str, password: str):
        self.http = http
        self.username = username
        self.password = password
        self.access = ""
        self.refresh_token = ""

    async def log_in(self) -> None:
        """Get a fresh pair of tokens with the password."""
        response = await self._post(
            "/api/v1/auth/login/", {"username": self.username, "password": self.password}
        )
        if response.status_code != 200:
            raise WatchError(f"login as {self.username} failed: {_detail(response)}")
        self._keep(response.json())

    async def refresh(self) -> None:
        """Swap the refresh token for a new pair; log in again if it is no longer valid."""
        response = await self._post("/api/v1/auth/refresh/", {"refresh": self.refresh_token})
        if response.status_code == 200:
            self._keep(response.json())
        else:
            await self.log_in()

    async def _post(self, path: str, body: dict) -> httpx.Response:
        try:
            return await self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise WatchError(f"cannot reach {self.http.base_url}: {exc}") from exc

    def _keep(self, tokens: dict) -> None:
        self.access = tokens["access"]
        self.refresh_token = tokens["refresh"]


class Watcher:
    """Keeps one connection to the stream open and prints what arrives on it."""

    def __init__(self, *, base_url: str, credentials: Credentials, after: int | None, as_json):
        self.base_url = base_url
        self.credentials = credentials
        self.position = after  # the last seq shown (or asked to skip); None: not known yet
        self.as_json = as_json
        self.greeted = False

    async def run(self) -> None:
        """Connect, print, reconnect; returns only by raising WatchError (or cancellation)."""
        await self.credentials.log_in()
        fresh_token = True  # a 4401 right after authenticating means the token is refused
        backoff = 1
        while True:
            code = await self._stream_once()
            if self.greeted:
                backoff, fresh_token = 1, False
            if code == CLOSE_UNAUTHORIZED:
                if fresh_token:
                    raise WatchError("the server refuses a fresh access token (closed 4401)")
                notice("access token expired; refreshing it and reconnecting")
                await self.credentials.refresh()
                fresh_token = True
                continue
            if code in FATAL_CLOSES:
                raise WatchError(f"{FATAL_CLOSES[code]} (closed {code})")
            notice(f"reconnecting in {backoff}s, after seq {self.position}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _stream_once(self) -> int | None:
        """One connection, from handshake to close; returns the close code (None when
        the connection could not be made or ended without one)."""
        self.greeted = False
        headers = {"Authorization": f"Bearer {self.credentials.access}"}
        try:
            async with connect(self._stream_url(), additional_headers=headers) as socket:
                async for raw in socket:
                    self._handle(json.loads(raw))
            code = socket.close_code
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status != 429:
                raise WatchError(f"the server refused the connection: HTTP {status}") from exc
            notice(f"the server answered HTTP {status}")
            return None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            notice(f"cannot connect: {exc or type(exc).__name__}")
            return None
        if code is None:
            notice("connection lost")
        elif code != CLOSE_UNAUTHORIZED:
            notice(f"disconnected (close code {code})")
        return code

    def _stream_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = urlencode({"after": self.position}) if self.position is not None else ""
        path = parts.path.rstrip("/") + "/ws/tasks/"
        return urlunsplit((scheme, parts.netloc, path, query, ""))

    def _handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "hello":
            self.greeted = True
            user = message.get("user", {}).get("username")
            # Without a position yet, the stream starts here: a reconnect then resumes
            # after this seq instead of silently skipping what happened while away.
            if self.position is None:
                self.position = message["last_seq"]
            notice(
                f"connected as {user}; stream at seq {message['last_seq']}, "
                f"showing events after seq {self.position}"
            )
        elif kind == "resync_required":
            notice(
                "events after seq "
                f"{self.position} were already pruned; reload the task list over REST"
            )
        elif kind == "error":
            notice(f"server says: {message.get('detail')}")
        elif kind == "pong":
            pass
        elif isinstance(message.get("seq"), int):
            print(json.dumps(message) if self.as_json else event_line(message), flush=True)
            self.position = max(self.position or 0, message["seq"])
        else:
            notice(f"unexpected message: {json.dumps(message)}")


def event_line(event: dict) -> str:
    """One readable line: time, seq, type, what it is about (the task's id and title, or
    the project's id and name), the member or comment if any, actor, changes."""
    subject = _subject(event)
    # Events of Taskhub's own jobs (reminders, purges) have no actor.
    actor = (event.get("actor") or {}).get("username", "Taskhub")
    parts = [_local_time(event.get("at")), f"#{event['seq']}", event["type"], subject]
    parts.append(f"by {actor}")
    changes = event.get("changes") or {}
    if changes:
        parts.append(
            "; ".join(
                f"{field}: {_short(old)} -> {_short(new)}" for field, (old, new) in changes.items()
            )
        )
    return "  ".join(parts)


def _subject(event: dict) -> str:
    named = event.get("task") or event.get("project") or {}
    subject = str(named.get("id"))
    for name in ("title", "name"):
        if name in named:
            subject += " " + json.dumps(named[name], ensure_ascii=False)
    member = event.get("member")
    if member:
        subject += f" member {member['user']['username']} ({member['role']})"
    comment = event.get("comment")
    if comment and "body" in comment:
        subject += " comment " + _short(comment["body"])
    return subject


def _local_time(at: str | None) -> str:
    try:
        return datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(at)


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail(response: httpx.Response) -> str:
    try:
        return response.json().get("detail") or response.text
    except ValueError:
        return f"HTTP {response.status_code}"


def notice(text: str) -> None:
    print(f"[watch_events] {text}", file=sys.stderr, flush=True)


async def watch(args: argparse.Namespace) -> None:
    # SIGTERM stops the watcher the way Ctrl-C does.
    main_task = asyncio.current_task()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with httpx.AsyncClient(base_url=args.url, timeout=HTTP_TIMEOUT_SECONDS) as http:
        credentials = Credentials(http, args.username, args.password)
        await Watcher(
            base_url=args.url, credentials=credentials, after=args.after, as_json=args.json
        ).run()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Print a user's live task events from /ws/tasks/.",
    )
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://localhost:8000")
    parser.add_argument("--username", required=True, help="username or email to log in with")
    parser.add_argument("--password", help="the password (asked for when left out)")
    parser.add_argument(
        "--after", type=int, metavar="N", help="first replay the events after seq N"
    )
    parser.add_argument("--json", action="store_true", help="print each event as raw JSON")
    args = parser.parse_args(argv)
    if urlsplit(args.url).scheme not in ("http", "https"):
        parser.error("--url must start with http:// or https://")
    if args.after is not None and args.after < 0:
        parser.error("--after must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.password is None:
            args.password = getpass.getpass(f"Password for {args.username}: ")
        asyncio.run(watch(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except WatchError as exc:
        notice(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

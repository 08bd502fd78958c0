"""Who a token's user is, without a query per request.

Every authenticated request needs three things about its user: the username, the role
and whether the account is active. They are kept per user (Redis in the distributed
stack, this process's memory in the embedded one) for `STATE_TTL_SECONDS`, read on the
event loop without a thread hop, and rewritten from the database as soon as a change to
the user commits, so a deactivation or a role change takes effect on the very next
request. Two paths see to that: a `post_save`/`post_delete` receiver
(`refresh_user_state`) for changes made through the ORM's models, and, on PostgreSQL, a
trigger that NOTIFYs `USER_STATE_CHANNEL` on any change to those columns, however it was
made (`QuerySet.update`, raw SQL), which the live relay applies
(`arefresh_user_states`).

Two writers never leave a stale state behind: a request that missed fills the key only if
it is absent (`SET NX`), and a committed change always overwrites it with what it re-read
after the commit. Whichever runs last, the committed state wins. A change made behind the
ORM's back while the relay is down (or in the embedded mode, which has no relay) is seen
when the key expires.

When Redis does not answer, requests read the database instead (one query), and Redis is
left alone for a second before it is tried again.
"""

import asyncio
import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass

import redis
import redis.asyncio
from django.conf import settings

from apps.common.threads import in_thread
from apps.users.models import User

logger = logging.getLogger(__name__)

STATE_TTL_SECONDS = 30
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_BACKOFF_SECONDS = 1.0
KEY_PREFIX = "taskhub:user-state:"
# Notified by the trigger in apps/users/migrations/0002_user_state_notify.py, with the
# user's id as the payload.
USER_STATE_CHANNEL = "taskhub_user_state"
# The fields a state holds, in the order of `UserState`'s attributes.
STATE_FIELDS = ("id", "username", "role", "is_active")


# `Model.from_db` takes the loaded fields in the model's order.
_LOADED_FIELDS = tuple(
    field.attname for field in User._meta.concrete_fields if field.attname in STATE_FIELDS
)


@dataclass(frozen=True, slots=True)
class UserState:
    id: int
    username: str
    role: str
    is_active: bool

    def encode(self) -> str:
        return json.dumps([self.username, self.role, self.is_active], separators=(",", ":"))

    @classmethod
    def decode(cls, user_id: int, raw: bytes | str) -> "UserState":
        username, role, is_active = json.loads(raw)
        return cls(user_id, username, role, is_active)

    def as_user(self) -> User:
        """A `User` holding only these fields; reading any other field loads it."""
        return User.from_db(
            "default", _LOADED_FIELDS, [getattr(self, name) for name in _LOADED_FIELDS]
        )


def load_user_state(user_id: int) -> UserState | None:
    """The user's state as the database has it now (None for no such user)."""
    row = User.objects.filter(pk=user_id).values_list(*STATE_FIELDS).first()
    return UserState(*row) if row else None


def _key(user_id: int) -> str:
    return f"{KEY_PREFIX}{user_id}"


class _RedisStates:
    """States in Redis: read from the event loop (one client per loop), written from
    sync code (services, receivers, the fallback path)."""

    def __init__(self, url: str):
        self.url = url
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._sync_client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._skip_until = 0.0

    def _options(self) -> dict:
        return {
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        }

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(self.url, **self._options())
            self._async_clients[loop] = client
        return client

    def _client(self) -> redis.Redis:
        with self._lock:
            if self._sync_client is None:
                self._sync_client = redis.Redis.from_url(self.url, **self._options())
            return self._sync_client

    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def failed(self, exc: Exception, doing: str) -> None:
        if self.available():
            logger.warning(
                "User states: Redis failed while %s (%s); reading PostgreSQL", doing, exc
            )
        self._skip_until = time.monotonic() + REDIS_BACKOFF_SECONDS

    async def aget(self, user_id: int) -> UserState | None:
        raw = await self._async_client().get(_key(user_id))
        return UserState.decode(user_id, raw) if raw is not None else None

    async def aput(self, user_id: int, state: UserState | None) -> None:
        if state is None:
            await self._async_client().delete(_key(user_id))
        else:
            await self._async_client().set(_key(user_id), state.encode(), ex=STATE_TTL_SECONDS)

    def fill(self, state: UserState) -> None:
        self._client().set(_key(state.id), state.encode(), nx=True, ex=STATE_TTL_SECONDS)

    def put(self, user_id: int, state: UserState | None) -> None:
        if state is None:
            self._client().delete(_key(user_id))
        else:
            self._client().set(_key(user_id), state.encode(), ex=STATE_TTL_SECONDS)


class _LocalStates:
    """States in this process's memory: the embedded mode runs one process, whose jobs
    and requests all see the same dictionary."""

    def __init__(self):
        self._states: dict[int, tuple[float, UserState]] = {}

    def available(self) -> bool:
        return True

    def failed(self, exc: Exception, doing: str) -> None:  # pragma: no cover - cannot fail
        pass

    async def aget(self, user_id: int) -> UserState | None:
        entry = self._states.get(user_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    async def aput(self, user_id: int, state: UserState | None) -> None:
        self.put(user_id, state)

    def fill(self, state: UserState) -> None:
        if self._states.get(state.id, (0.0,))[0] < time.monotonic():
            self.put(state.id, state)

    def put(self, user_id: int, state: UserState | None) -> None:
        if state is None:
            self._states.pop(user_id, None)
        else:
            self._states[user_id] = (time.monotonic() + STATE_TTL_SECONDS, state)


_store = None


def _states():
    global _store
    if _store is None:
        url = settings.REDIS_CACHE_URL
        _store = _RedisStates(url) if url else _LocalStates()
    return _store


async def aget_user_state(user_id: int) -> UserState | None:
    """The user's state: from the store when it has it, else read from the database (one
    thread hop) and stored for the next request."""
    store = _states()
    if store.available():
        try:
            state = await store.aget(user_id)
        except (redis.RedisError, OSError) as exc:
            store.failed(exc, "reading")
        else:
            if state is not None:
                return state
    return await in_thread(get_user_state, user_id)


def get_user_state(user_id: int) -> UserState | None:
    """The same, from sync code: one read of the database, then the store is filled."""
    return _fill(load_user_state(user_id))


def _fill(state: UserState | None) -> UserState | None:
    store = _states()
    if state is not None and store.available():
        try:
            store.fill(state)
        except (redis.RedisError, OSError) as exc:
            store.failed(exc, "filling")
    return state


def refresh_user_state(user_id: int) -> bool:
    """Overwrite the stored state with the committed one (or drop it for a deleted user).
    Called after every committed change to a user; returns whether the user still has
    access (is active), so that the caller closes their open sockets if not."""
    state = load_user_state(user_id)
    store = _states()
    try:
        store.put(user_id, state)
    except (redis.RedisError, OSError) as exc:
        # The old state stays until it expires: say so loudly.
        logger.error(
            "User states: could not store user %s's change in Redis (%s); requests may see "
            "the old state for up to %s s",
            user_id,
            exc,
            STATE_TTL_SECONDS,
        )
    return state is not None and state.is_active


STATE_SQL = f"SELECT {', '.join(STATE_FIELDS)} FROM {User._meta.db_table} WHERE id = ANY(%s)"


async def arefresh_user_states(connection, user_ids: list[int]) -> list[int]:
    """Store the committed state of these users, read through `connection` (an async
    psycopg connection), as `refresh_user_state` does: for the relay, which hears of
    every change to a user from the database itself. Returns those who have no access
    (inactive or deleted), whose sockets the relay closes."""
    rows = await (await connection.execute(STATE_SQL, [list(user_ids)])).fetchall()
    states = {row[0]: UserState(*row) for row in rows}
    store = _states()
    for user_id in user_ids:
        try:
            await store.aput(user_id, states.get(user_id))
        except (redis.RedisError, OSError) as exc:
            logger.error(
                "User states: could not store user %s's change in Redis (%s); requests may "
                "see the old state for up to %s s",
                user_id,
                exc,
                STATE_TTL_SECONDS,
            )
    return [
        user_id for user_id in user_ids if user_id not in states or not states[user_id].is_active
    ]

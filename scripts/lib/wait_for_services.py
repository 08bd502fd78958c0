"""Wait until PostgreSQL and Redis really accept connections, or give up with a message
naming the service.

Run as a program (scripts/entrypoint.sh does, before any service starts) it waits for
the DATABASE_URL and REDIS_URL in the environment (or `.env`): up to
DATABASE_WAIT_SECONDS and REDIS_WAIT_SECONDS (60 each). A port that is open is not
enough: PostgreSQL's image answers `pg_isready` on its socket while it is still
initialising, so this logs in to the very database and pings Redis with its password.
scripts/lib/check_postgres.py and check_redis.py use the same functions for the tests.
"""

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import environ
import psycopg
import redis

BASE_DIR = Path(__file__).resolve().parents[2]
RETRY_INTERVAL_SECONDS = 0.5


class ServiceUnavailable(Exception):
    """The service did not accept a connection before the deadline."""


def postgres_location(url: str, dbname: str | None = None) -> str:
    """Where DATABASE_URL points, without its password: `host:port/name as user`."""
    config = environ.Env.db_url_config(url)
    return (
        f"{config['HOST'] or 'localhost'}:{config['PORT'] or 5432}/{dbname or config['NAME']}"
        f" as {config['USER']!r}"
    )


def redis_location(url: str) -> str:
    """Where REDIS_URL points, without its password: `host:port`."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def wait_for_postgres(url: str, *, timeout: float, dbname: str | None = None) -> float:
    """Connect to the database of `url` (or to `dbname` on that server) until it answers;
    returns the seconds it took. Raises ServiceUnavailable with the last error."""
    config = environ.Env.db_url_config(url)
    params = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "dbname": dbname or config["NAME"],
    }
    # Connection options from the URL's query (sslmode, application_name, ...).
    params.update(
        {key: value for key, value in config.get("OPTIONS", {}).items() if isinstance(value, str)}
    )

    def attempt(remaining: float) -> None:
        connect_timeout = max(1, min(5, int(remaining)))
        psycopg.connect(**params, connect_timeout=connect_timeout).close()

    return _wait("PostgreSQL", postgres_location(url, dbname), attempt, psycopg.Error, timeout)


def wait_for_redis(url: str, *, timeout: float) -> float:
    """PING Redis at `url` (with its password) until it answers PONG; returns the
    seconds it took. Raises ServiceUnavailable with the last error."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def attempt(remaining: float) -> None:
        client.ping()

    try:
        return _wait("Redis", redis_location(url), attempt, redis.RedisError, timeout)
    finally:
        client.close()


def _wait(name, location, attempt, errors, timeout: float) -> float:
    started = time.monotonic()
    deadline = started + timeout
    announced = False
    while True:
        try:
            attempt(deadline - time.monotonic())
            return time.monotonic() - started
        except errors as exc:
            last_error = " ".join(str(exc).split()) or type(exc).__name__
        if time.monotonic() + RETRY_INTERVAL_SECONDS > deadline:
            raise ServiceUnavailable(
                f"{name} at {location} did not accept a connection within {timeout:g}s; "
                f"the last attempt said: {last_error}"
            )
        if not announced:
            _say(f"Waiting for {name} at {location} ({last_error})...")
            announced = True
        time.sleep(RETRY_INTERVAL_SECONDS)


def _say(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    """Wait for the services that the environment names; 1 with a message if one never
    answers."""
    if (BASE_DIR / ".env").is_file():
        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    env = environ.Env()
    database_url = env.str("DATABASE_URL", default="")
    redis_url = env.str("REDIS_URL", default="")
    try:
        if database_url and environ.Env.db_url_config(database_url)["ENGINE"].endswith(
            "postgresql"
        ):
            waited = wait_for_postgres(
                database_url, timeout=env.float("DATABASE_WAIT_SECONDS", default=60)
            )
            _say(f"PostgreSQL at {postgres_location(database_url)} is up ({waited:.1f}s).")
        if redis_url:
            waited = wait_for_redis(redis_url, timeout=env.float("REDIS_WAIT_SECONDS", default=60))
            _say(f"Redis at {redis_location(redis_url)} is up ({waited:.1f}s).")
    except ServiceUnavailable as exc:
        print(f"error: giving up: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

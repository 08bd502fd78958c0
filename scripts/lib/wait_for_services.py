"""Wait until PostgreSQL and Redis really accept connections, or give up with a message
naming the service.

Run as a program (scripts/entrypoint.sh does, before any service starts) it waits for
the DATABASE_URL and REDIS_URL in the environment (or `.env`): up to
DATABASE_WAIT_SECONDS and REDIS_WAIT_SECONDS (60 each). A port that is open is not
enough: PostgreSQL's image answers `pg_isready` on its socket while it is still
initialising, so this logs in to the very database and pings Redis with its password.
scripts/lib/check_postgres.py and check_redis.py use the same functions for the tests.

`--create-database` (scripts/run uses it) creates the database DATABASE_URL names when
the server has none by that name and the user may create it; when the user may not, it
stops with one line saying how to create it. A missing database is never waited for.
"""

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import environ
import psycopg
import psycopg.errors
import psycopg.sql
import redis

BASE_DIR = Path(__file__).resolve().parents[2]
RETRY_INTERVAL_SECONDS = 0.5


class ServiceUnavailable(Exception):
    """The service did not accept a connection before the deadline."""


class DatabaseMissing(ServiceUnavailable):
    """The server answered, but has no database by that name: waiting will not help."""


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
    returns the seconds it took. Raises ServiceUnavailable with the last error, and
    DatabaseMissing at once when the server says the database does not exist."""
    params = _postgres_params(url, dbname)

    def attempt(remaining: float) -> None:
        connect_timeout = max(1, min(5, int(remaining)))
        try:
            psycopg.connect(**params, connect_timeout=connect_timeout).close()
        except psycopg.OperationalError as exc:
            # libpq reports a failed connection without its SQLSTATE, so the server's
            # own wording is all there is to tell a missing database by.
            if f'database "{params["dbname"]}" does not exist' in str(exc):
                raise DatabaseMissing(
                    f"PostgreSQL at {postgres_location(url, dbname)} has no database "
                    f"{params['dbname']!r}"
                ) from exc
            raise

    return _wait("PostgreSQL", postgres_location(url, dbname), attempt, psycopg.Error, timeout)


def create_database(url: str) -> None:
    """Create the database `url` names, connected to the server's `postgres` database.
    Raises ServiceUnavailable with one line on how to create it when that is refused."""
    params = _postgres_params(url, "postgres")
    name = environ.Env.db_url_config(url)["NAME"]
    try:
        with psycopg.connect(**params, connect_timeout=5, autocommit=True) as connection:
            connection.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
            )
    except psycopg.errors.DuplicateDatabase:
        return  # created meanwhile by someone else: just as good
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        host, port = params["host"] or "localhost", params["port"] or 5432
        raise ServiceUnavailable(
            f"PostgreSQL at {host}:{port} has no database {name!r}, and "
            f"{params['user']!r} could not create it ({reason}); create it as a user who "
            f"may (createdb -h {host} -p {port} -U postgres -O {params['user']} {name}), "
            "or point DATABASE_URL at a database that exists."
        ) from exc


def _postgres_params(url: str, dbname: str | None) -> dict:
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
    return params


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
        except DatabaseMissing:
            raise
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--create-database",
        action="store_true",
        help="create DATABASE_URL's database when the server has none by that name",
    )
    args = parser.parse_args()
    if (BASE_DIR / ".env").is_file():
        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    env = environ.Env()
    database_url = env.str("DATABASE_URL", default="")
    redis_url = env.str("REDIS_URL", default="")
    try:
        if database_url and environ.Env.db_url_config(database_url)["ENGINE"].endswith(
            "postgresql"
        ):
            timeout = env.float("DATABASE_WAIT_SECONDS", default=60)
            try:
                waited = wait_for_postgres(database_url, timeout=timeout)
            except DatabaseMissing:
                if not args.create_database:
                    raise
                create_database(database_url)
                _say(f"Created the database {postgres_location(database_url)}.")
                waited = wait_for_postgres(database_url, timeout=timeout)
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

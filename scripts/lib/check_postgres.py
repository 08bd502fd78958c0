"""Fail with a clear message naming PostgreSQL when it cannot be reached.

With --drop-stale-runs, also drop the test databases of earlier `scripts/test` runs
(test_taskhub_run<pid>) whose process is gone and to which nobody is connected: a run
that was killed leaves its own.
"""

import os
import re
import sys

import environ
import psycopg
import psycopg.errors
import psycopg.sql
from wait_for_services import ServiceUnavailable, wait_for_postgres

url = sys.argv[1]
config = environ.Env.db_url_config(url)
if config["ENGINE"] != "django.db.backends.postgresql":
    sys.exit(f"error: the tests need PostgreSQL; DATABASE_URL names {config['ENGINE']}.")
try:
    # The tests create their own database, so the server's `postgres` database will do.
    wait_for_postgres(url, timeout=5, dbname="postgres")
except ServiceUnavailable as exc:
    sys.exit(
        f"error: {exc}\n"
        "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
        "or set DATABASE_URL."
    )


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if "--drop-stale-runs" in sys.argv[2:]:
    params = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
    }
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as connection:
        names = [row[0] for row in connection.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = re.fullmatch(r"test_taskhub_run(\d+)", name)
            if match and not process_exists(int(match[1])):
                try:
                    connection.execute(
                        psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
                            psycopg.sql.Identifier(name)
                        )
                    )
                    print(f"Dropped {name}, left by a test run that is gone.")
                except psycopg.errors.ObjectInUse:
                    pass  # someone is connected: a run after all (another PID namespace)

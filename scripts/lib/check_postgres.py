"""Fail with a clear message naming PostgreSQL when it cannot be reached."""

import sys

import environ
import psycopg

url = sys.argv[1]
config = environ.Env.db_url_config(url)
if config["ENGINE"] != "django.db.backends.postgresql":
    sys.exit(f"error: the tests need PostgreSQL; DATABASE_URL names {config['ENGINE']}.")
try:
    psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=5,
    ).close()
except psycopg.Error as exc:
    sys.exit(
        f"error: PostgreSQL is not reachable at {config['HOST']}:{config['PORT']} "
        f"as {config['USER']!r}: {str(exc).strip()}\n"
        "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
        "or set DATABASE_URL."
    )

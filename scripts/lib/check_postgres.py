"""Fail with a clear message naming PostgreSQL when it cannot be reached."""

import sys

import environ
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

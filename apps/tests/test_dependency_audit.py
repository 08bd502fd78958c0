"""scripts/audit, the dependency audit: pip-audit over scripts/requirements.lock against
the OSV database. This machine cannot reach api.osv.dev, so these tests run the real
command against a small OSV-compatible endpoint of their own, which answers the way OSV
does (POST /v1/query, one package and version per query). They check that every locked
package is asked about, that a known vulnerability fails the audit and names itself, that
an exception needs a reason, and that an unreachable database is a failure, never a pass."""

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.tests.processes import REPO, base_env

pytestmark = pytest.mark.e2e

LOCK = REPO / "scripts/requirements.lock"
PINNED = dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", LOCK.read_text(), re.MULTILINE))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class FakeOsv:
    """Answers like OSV: {} for a package with no vulnerability, else {"vulns": [...]}."""

    def __init__(self, vulns: dict[str, list[dict]]):
        self.vulns = vulns
        self.queries: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                package = query["package"]["name"]
                fake.queries.append((package, query["version"]))
                found = fake.vulns.get(package)
                body = json.dumps({"vulns": found} if found else {}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def django_advisory(vuln_id: str) -> dict:
    return {
        "id": vuln_id,
        "summary": "SQL injection in a made-up lookup",
        "aliases": ["CVE-2099-0001"],
        "affected": [
            {
                "package": {"name": "django", "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}
                ],
            }
        ],
    }


@pytest.fixture
def osv():
    servers = []

    def start(vulns=None):
        server = FakeOsv(vulns or {})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def audit(osv_url: str, exceptions=None) -> subprocess.CompletedProcess:
    env = base_env() | {"AUDIT_OSV_URL": osv_url}
    if exceptions is not None:
        env["AUDIT_EXCEPTIONS"] = str(exceptions)
    return subprocess.run(
        [str(REPO / "scripts/audit")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_clean_lock_passes_and_every_locked_package_is_asked_about(osv):
    server = osv()
    result = audit(server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No known vulnerabilities found" in result.stdout + result.stderr
    probe, *queries = server.queries
    assert probe == ("taskhub-audit-probe", "1")  # the reachability check comes first
    asked = {canonical(name): version for name, version in queries}
    assert asked == {canonical(name): version for name, version in PINNED.items()}
    assert len(asked) > 40


def test_a_known_vulnerability_fails_the_audit_and_is_named(osv):
    server = osv({"django": [django_advisory("PYSEC-2099-1")]})
    result = audit(server.url)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "PYSEC-2099-1" in output
    assert re.search(rf"^django +{re.escape(PINNED['django'])} +PYSEC-2099-1 +99.0 ", output, re.M)
    assert "99.0" in output  # the fixed version, so the reader knows what to upgrade to


def test_an_exception_with_its_reason_lets_the_audit_pass_and_is_listed(osv, tmp_path):
    server = osv({"django": [django_advisory("PYSEC-2099-1")]})
    exceptions = tmp_path / "exceptions.txt"
    exceptions.write_text(
        "# comment lines and blank lines are fine\n\n"
        "PYSEC-2099-1  the made-up lookup is never called; look again at 5.2.99\n"
    )
    result = audit(server.url, exceptions)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Excepted: PYSEC-2099-1 (the made-up lookup is never called" in result.stdout


def test_an_exception_without_a_reason_is_refused(osv, tmp_path):
    server = osv({"django": [django_advisory("PYSEC-2099-1")]})
    exceptions = tmp_path / "exceptions.txt"
    exceptions.write_text("PYSEC-2099-1\n")
    result = audit(server.url, exceptions)
    assert result.returncode == 2
    assert "PYSEC-2099-1 has no reason" in result.stderr
    assert server.queries == []


def test_an_endpoint_that_is_not_a_vulnerability_database_fails_the_audit(tmp_path):
    result = audit("not-a-url")
    assert result.returncode == 1
    assert "the vulnerability database at not-a-url could not be reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_fails_the_audit(osv):
    server = osv()
    url = server.url
    server.close()
    result = audit(url)
    assert result.returncode == 1
    assert f"the vulnerability database at {url} could not be reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_checked_in_exceptions_all_have_reasons():
    for number, line in enumerate((REPO / "scripts/audit-exceptions.txt").read_text().splitlines()):
        fields = line.split("#", 1)[0].split(None, 1)
        assert not fields or len(fields) == 2, f"line {number + 1} has no reason: {line!r}"

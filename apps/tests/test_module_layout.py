"""The shape of the code that its readers rely on: no import cycle among the project's
modules, and HTTP's exceptions only in the HTTP layer. Read from the source (ast), so
an import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apps", "project", "realtime")

# Below the API layer (`apps/*/api/`), only the API's own plumbing in apps/common may
# touch DRF's exceptions: the handler that renders every error, the view base, and the
# parsing of request bodies and query parameters.
DRF_EXCEPTIONS_ALLOWED = {
    "apps.common.api",
    "apps.common.exceptions",
    "apps.common.pagination",
    "apps.common.params",
    "apps.common.parsers",
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str) -> set[str]:
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {}
    for module, path in modules.items():
        targets = {name for name in imported_names(path, module) if name in modules}
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports_of_the_event_pipeline():
    graph = import_graph()
    assert "apps.tasks.events" in graph["apps.tasks.services"]
    assert "apps.tasks.events" in graph["apps.tasks.upkeep"]
    assert "apps.tasks.upkeep" in graph["apps.tasks.jobs"]


def test_no_import_cycle_among_the_project_modules():
    assert cycles(import_graph()) == []


def test_services_and_jobs_do_not_import_each_other():
    graph = import_graph()
    assert "apps.tasks.jobs" not in graph["apps.tasks.services"]
    assert "apps.tasks.services" not in graph["apps.tasks.jobs"]


def test_drf_exceptions_stay_in_the_api_layer():
    offenders = []
    for module, path in project_modules().items():
        if ".api." in f"{module}." or module in DRF_EXCEPTIONS_ALLOWED:
            continue
        names = imported_names(path, module)
        if any(name.startswith("rest_framework.exceptions") for name in names):
            offenders.append(module)
    assert offenders == []

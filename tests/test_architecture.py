"""The layering of docs/architecture.md ("What may import what"), checked on every module's imports.

Each module belongs to one room; a room may import only the rooms below it (its own modules freely).
The few imports that go up are listed in UPWARD with their reason, so a new one fails here until
someone decides it (and writes it in docs/architecture.md). Import cycles fail too, except Flask's
blueprint-package pattern (a face's __init__ makes `bp` and imports its route modules, which import
`bp`). Tests import shared helpers from tests/helpers/, never another test module or conftest.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("iop", "kiosk", "facilitator", "coordinator", "curriculum")

# Lowest first. A room may import the rooms named beside it and nothing else of the project.
BELOW_THE_FACES = {"web", "live", "files", "clinic", "curriculum in the clinic", "curriculum", "store",
                   "foundations", "rules"}
MAY_IMPORT = {
    "rules": set(),
    "curriculum": set(),
    "foundations": {"rules"},
    "store": {"foundations", "rules"},
    "clinic": {"curriculum in the clinic", "curriculum", "store", "foundations", "rules"},
    "curriculum in the clinic": {"clinic", "curriculum", "store", "foundations", "rules"},
    "live": {"clinic", "curriculum in the clinic", "curriculum", "store", "foundations", "rules"},
    "files": {"clinic", "curriculum in the clinic", "curriculum", "store", "foundations", "rules"},
    "web": {"live", "clinic", "curriculum in the clinic", "curriculum", "store", "foundations", "rules"},
    "kiosk": BELOW_THE_FACES,
    "facilitator": BELOW_THE_FACES,
    "coordinator": BELOW_THE_FACES,
    "app": BELOW_THE_FACES | {"kiosk", "facilitator", "coordinator", "ops"},
    "ops": BELOW_THE_FACES | {"kiosk", "facilitator", "coordinator", "app"},
}

# The imports that go up a layer, each inside the one function that needs it: (importer, imported).
UPWARD = {
    ("iop.clinic.scan", "iop.live.roster"): "a recorded scan updates its session's roster on the staff screens",
    ("iop.web.views", "iop.ops.scheduler"): "/healthz reports the scheduler's heartbeat",
    ("iop.web.views", "iop.ops.backup"): "/healthz reports whether the backups are fresh",
    ("coordinator.backup_routes", "iop.ops.backup"): "the Backups page lists the backup folder",
    ("kiosk.routes", "iop.ops.serving"): "the kiosk offers the TLS authority's certificate to tablets",
    ("coordinator.kiosk_routes", "iop.ops.serving"): "an enrollment link also by the server's LAN address",
}


def room(module: str) -> str:
    """The room a project module belongs to (docs/architecture.md, "The rooms")."""
    parts = module.split(".")
    if parts[0] == "iop":
        if len(parts) == 1 or parts[1] == "wsgi":
            return "app"
        if parts[1] in ("clock", "config", "extensions"):
            return "foundations"
        return parts[1]
    if parts[0] == "curriculum":
        return "curriculum" if parts[1:2] in (["model"], ["markup"], ["validate"], ["catalog"]) else "curriculum in the clinic"
    return parts[0]


@cache
def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_modules(path: Path, module: str, known) -> set[tuple[str, bool]]:
    """(project module, at the top level?) for every import statement in the file, functions included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import iop.store.db` names a module; a class names its module
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                found.add((name, id(node) in top_level))
    return found


@cache
def import_graph() -> dict[str, set[tuple[str, bool]]]:
    known = project_modules()
    return {module: imported_modules(path, module, known) for module, path in known.items()}


def test_every_module_imports_only_the_rooms_below_it():
    wrong, used = [], set()
    for module, imports in sorted(import_graph().items()):
        for target, top_level in sorted(imports):
            here, there = room(module), room(target)
            if here == there or there in MAY_IMPORT[here]:
                continue
            if (module, target) in UPWARD and not top_level:
                used.add((module, target))
                continue
            wrong.append(f"{module} ({here}) imports {target} ({there})"
                         + (" at the top of the module" if (module, target) in UPWARD else ""))
    assert wrong == [], "imports against the layering of docs/architecture.md:\n" + "\n".join(wrong)
    assert set(UPWARD) - used == set(), "listed upward imports that no longer exist: drop them here and there"


def test_rules_and_curriculum_content_import_nothing_else_of_the_project():
    for module, imports in import_graph().items():
        if room(module) in ("rules", "curriculum"):
            assert {room(target) for target, _ in imports} <= {room(module)}, module


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one module (or a module importing itself)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_blueprint_package(component: set[str]) -> bool:
    """A package that makes a Flask blueprint, with route modules of its own that import it back."""
    package = min(component, key=len)
    source = project_modules()[package]
    return (source.name == "__init__.py" and "Blueprint(" in source.read_text()
            and all(member == package or member.startswith(package + ".") for member in component))


def test_no_import_cycles_but_the_blueprint_packages():
    graph = {module: {target for target, _ in imports} for module, imports in import_graph().items()}
    cycles = [sorted(component) for component in strongly_connected(graph) if not is_blueprint_package(component)]
    assert cycles == []


def test_the_check_sees_a_cycle_and_a_wrong_import():
    """The checks above can fail: a made-up cycle is found, and a made-up import breaks the layering."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert not is_blueprint_package({"iop.config", "iop.files.fhir"})
    assert is_blueprint_package({"kiosk", "kiosk.routes"})
    assert "live" not in MAY_IMPORT[room("iop.clinic.attendance")]
    assert room("iop.rules.hours") == "rules" and room("curriculum.rotation") == "curriculum in the clinic"
    assert room("iop") == room("iop.wsgi") == "app" and room("iop.clock") == "foundations"


def test_tests_import_helpers_never_other_tests_or_conftest():
    offenders = []
    tests = ROOT / "tests"
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                first = name.split(".")[0]
                if first == "conftest" or first.startswith("test_") or first == "servers":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == [], "shared helpers belong in tests/helpers/:\n" + "\n".join(offenders)

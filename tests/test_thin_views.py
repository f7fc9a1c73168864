"""The view modules (coordinator/, facilitator/, kiosk/) hold no SQL: they call the clinic's modules,
which own the queries. Read from the source, so SQL cannot creep back into a view unnoticed."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW_PACKAGES = ("coordinator", "facilitator", "kiosk")
QUERY_METHODS = {"execute", "scalar", "scalars", "query"}  # a session's (or a connection's) ways to run SQL

# The week board's and the client page's figures still query here until the hours work of issue 13
# moves them into iop/store/hours_queries.py; once moved, this list must shrink (the test says so).
PENDING = {
    ("coordinator/routes.py", "<module>"),  # `from sqlalchemy import select`, for the two below
    ("coordinator/routes.py", "board_rows"),
    ("coordinator/routes.py", "_attendance_rows"),
}


def sql_in(source: str) -> list[tuple[str, int, str]]:
    """(function, line, what) for each piece of SQL in a module: sqlalchemy imports, select(...),
    .execute/.scalar/.scalars/.query calls, and any use of db.session."""
    tree = ast.parse(source)
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where = node.name
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found.append((where, node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "sqlalchemy" for alias in node.names):
            found.append((where, node.lineno, "import sqlalchemy"))
        elif isinstance(node, ast.Call):
            called = node.func
            if isinstance(called, ast.Name) and called.id == "select":
                found.append((where, node.lineno, "select("))
            elif isinstance(called, ast.Attribute) and called.attr in QUERY_METHODS:
                found.append((where, node.lineno, f".{called.attr}("))
        elif isinstance(node, ast.Attribute) and node.attr == "session" and \
                isinstance(node.value, ast.Name) and node.value.id == "db":
            found.append((where, node.lineno, "db.session"))
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "<module>")
    return found


def view_modules() -> list[Path]:
    return sorted(path for package in VIEW_PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_view_module_holds_sql():
    seen_pending = set()
    unexpected = []
    for path in view_modules():
        name = path.relative_to(ROOT).as_posix()
        for where, line, what in sql_in(path.read_text(encoding="utf-8")):
            if (name, where) in PENDING:
                seen_pending.add((name, where))
            else:
                unexpected.append(f"{name}:{line} in {where}: {what}")
    assert not unexpected, "SQL in a view (move it into iop/clinic, iop/files or iop/store):\n" + "\n".join(unexpected)
    assert seen_pending == PENDING, f"these moved out of the views; remove them from PENDING: {PENDING - seen_pending}"


def test_the_check_finds_sql_where_it_is():
    """The reader above is not blind: each kind of SQL in a made-up view is found, in its function."""
    source = '''
from sqlalchemy import select
import sqlalchemy.orm
from iop.store import db

def page():
    return db.session().scalars(select(Client))

def other(session):
    session.execute(text("SELECT 1"))
    return session.scalar(x), session.query(Client)

def fine():
    with db.transaction():
        return program.groups()
'''
    found = {(where, what) for where, _line, what in sql_in(source)}
    assert found == {("<module>", "from sqlalchemy import"), ("<module>", "import sqlalchemy"),
                     ("page", "db.session"), ("page", ".scalars("), ("page", "select("),
                     ("other", ".execute("), ("other", ".scalar("), ("other", ".query(")}
    assert view_modules(), "the view packages were not found"

"""The view modules (coordinator/, facilitator/, kiosk/) hold no SQL: they call the clinic's modules,
which own the queries. Read from the source, so SQL cannot creep back into a view unnoticed."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW_PACKAGES = ("coordinator", "facilitator", "kiosk")
QUERY_METHODS = {"execute", "scalar", "scalars", "query"}  # a session's (or a connection's) ways to run SQL


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
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} in {where}: {what}"
             for path in view_modules() for where, line, what in sql_in(path.read_text(encoding="utf-8"))]
    assert not found, "SQL in a view (move it into iop/clinic, iop/files or iop/store):\n" + "\n".join(found)


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

"""The one place that makes the engine and opens database sessions."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Boolean, bindparam, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    # SQLite allows one writer at a time. Writers of this process queue here, in order and asleep,
    # instead of polling SQLite's busy handler (which is unfair: under load some waited past the
    # busy timeout and failed with "database is locked"). Other processes still meet busy_timeout.
    write_lock: threading.RLock | None = None


def make_engine(url: str) -> Engine:
    # hide_parameters: statement parameters (names, card codes) never reach a log line or an
    # error's text, even when someone turns SQL logging on or an error is logged whole.
    if url.startswith("sqlite"):
        # Connections are cheap; enough for every server thread, so none waits for the pool.
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False},
                               pool_size=20, max_overflow=80, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        # A write transaction takes the write lock at BEGIN, so two writers queue on the
        # busy timeout instead of one failing when it upgrades from a stale read snapshot.
        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            write = connection.get_execution_options().get("iop_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    # pool_pre_ping replaces a connection the server dropped (restart, failover) before it is used;
    # the connect timeout keeps a request (and /healthz) from hanging on an unreachable server.
    # At most 30 connections a process, 25 of them kept: with 20 kiosks scanning at once a pool of
    # 10 closed and reopened a connection (a server process) every few scans.
    return create_engine(url, pool_pre_ping=True, pool_size=25, max_overflow=5, pool_use_lifo=True,
                         connect_args={"connect_timeout": 5}, hide_parameters=True)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
    app.extensions["iop.db"] = Database(engine, sessionmaker(engine, expire_on_commit=False), write_lock)
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["iop.db"]


def session() -> Session:
    """The session of the current app context (a request, a socket event, a job or a command)."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session


def end_snapshot() -> None:
    """End the context's read transaction, if it holds one (without opening a session to ask):
    what other threads or processes commit afterwards is then seen."""
    db_session = g.get("db_session")
    if db_session is not None and db_session.in_transaction():
        db_session.commit()


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


@contextlib.contextmanager
def transaction():
    """A unit of work that writes: commits at the end of the block, rolls back on any error."""
    db_session = session()
    end_snapshot()  # the write starts on fresh data
    lock = database().write_lock
    if lock is not None:
        lock.acquire()
    try:
        db_session.connection(execution_options={"iop_write": True})
        try:
            yield db_session
            db_session.commit()
        except BaseException:
            db_session.rollback()
            raise
    finally:
        if lock is not None:
            lock.release()


def refresh_statistics() -> None:
    """After a bulk load (an import): PostgreSQL's planner statistics describe the tables as they now
    are, so the next kiosk scans use their indexes at once instead of plans made for the tables when
    they were empty (autovacuum catches up only later; measured: check-ins 2x slower until then).
    SQLite keeps no statistics unless asked, and its plans here do not depend on them."""
    engine = database().engine
    if engine.dialect.name == "postgresql":
        from iop.store.models import Base

        # The program's own tables only: a bare ANALYZE visits every table of the database (other
        # schemas too) and waits on their locks.
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        with engine.connect() as connection:
            connection.exec_driver_sql(f"ANALYZE {tables}")
            connection.commit()


class one_of(ColumnElement):
    """`column IN (the list bound as :name at execution)`, as one statement text whatever the list's
    length: `= ANY(:name)` with an array on PostgreSQL (so its prepared statement and psycopg's query
    cache serve every call; an IN of n values is a new statement for every n, and a busy program's
    rosters pushed out the kiosk's own statements), an expanding IN on SQLite."""

    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it in a WHERE on SQLite
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, column, name: str):
        self.column = column
        self.name = name


@compiles(one_of)
def _one_of_expanding(element, compiler, **kw):
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(one_of, "postgresql")
def _one_of_array(element, compiler, **kw):
    from sqlalchemy import any_
    from sqlalchemy.dialects.postgresql import ARRAY

    array = bindparam(element.name, type_=ARRAY(element.column.type))
    return compiler.process(element.column == any_(array), **kw)

"""Alembic, driven from the app: `iop init` upgrades to head."""
from __future__ import annotations

import contextlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import select, text

from iop.store import db

MIGRATIONS = Path(__file__).parent / "migrations"

# The configurable levels of care (docs/domain.md): codes with their weekly floors, editable later.
DEFAULT_LEVELS = [
    ("1", "Outpatient", 0, 9 * 60 - 1),
    ("2.1", "Intensive outpatient", 9 * 60, 19 * 60),
    ("2.5", "Partial hospitalization", 20 * 60, None),
]


def alembic_config(app: Flask) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.database(app).engine
    return config


# Any constant: PostgreSQL advisory-lock key that serialises `iop init` across processes.
_MIGRATION_LOCK = 7_404_120_001


def upgrade(app: Flask, revision: str = "head") -> None:
    with app.app_context(), _one_migrator(app):
        command.upgrade(alembic_config(app), revision)
        seed_defaults()


@contextlib.contextmanager
def _one_migrator(app: Flask):
    """Several processes started at once (`iop serve` x N, `iop scheduler`) upgrade one at a time;
    the later ones find the schema at head and do nothing. SQLite needs no lock: one process."""
    engine = db.database(app).engine
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            connection.commit()


def seed_defaults() -> None:
    """Rows every program starts with; adds only what is missing."""
    from iop.store.models import LevelOfCare

    with db.transaction() as db_session:
        have = set(db_session.scalars(select(LevelOfCare.code)))
        for code, name, minimum, maximum in DEFAULT_LEVELS:
            if code not in have:
                db_session.add(LevelOfCare(code=code, name=name, weekly_minimum_minutes=minimum,
                                           weekly_maximum_minutes=maximum))

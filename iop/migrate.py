"""Alembic, driven from the app: `iop init` upgrades to head."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import select

from iop import db

MIGRATIONS = Path(__file__).parent / "migrations"

# The configurable levels of care (DOMAIN.md): codes with their weekly floors, editable later.
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


def upgrade(app: Flask, revision: str = "head") -> None:
    with app.app_context():
        command.upgrade(alembic_config(app), revision)
        seed_defaults()


def seed_defaults() -> None:
    """Rows every program starts with; adds only what is missing."""
    from iop.models import LevelOfCare

    with db.transaction() as db_session:
        have = set(db_session.scalars(select(LevelOfCare.code)))
        for code, name, minimum, maximum in DEFAULT_LEVELS:
            if code not in have:
                db_session.add(LevelOfCare(code=code, name=name, weekly_minimum_minutes=minimum,
                                           weekly_maximum_minutes=maximum))

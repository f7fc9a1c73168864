"""Alembic migrations build the schema the models describe, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from iop import create_app
from iop.store import db, migrate
from iop.store.models import Base


def fresh_app(app_config):
    application = create_app(app_config)
    engine = db.database(application).engine
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    return application


def test_upgrade_on_an_empty_database_matches_the_models(app_config):
    application = fresh_app(app_config)
    migrate.upgrade(application)
    engine = db.database(application).engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    tables = set(inspect(engine).get_table_names())
    assert {"client", "plan", "plan_phase", "program_group", "group_session", "attendance",
            "kiosk_device", "audit_event", "staff_user", "alembic_version"} <= tables


def test_upgrade_twice_is_harmless_and_seeds_levels_once(app_config):
    application = fresh_app(app_config)
    migrate.upgrade(application)
    migrate.upgrade(application)
    with db.database(application).engine.connect() as connection:
        codes = [row[0] for row in connection.execute(text("SELECT code FROM level_of_care ORDER BY code"))]
    assert codes == ["1", "2.1", "2.5"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    engine = db.database(app).engine
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

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


def test_an_older_database_keeps_its_rows_when_client_keys_are_renamed(app_config):
    """0003 renames the columns that point at a client row (client_id -> client_key): a database made
    before it keeps every row, and the constraints still hold."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    application = fresh_app(app_config)
    migrate.upgrade(application, "0002")
    engine = db.database(application).engine
    with engine.begin() as connection:
        run = connection.execute
        run(text("INSERT INTO client (id, public_id, client_id, first_name, last_name, status, card_version, created_at) "
                 "VALUES (7, 'p7', 'C7', 'Ann', 'Bee', 'active', 1, '2026-03-01 00:00:00')"))
        run(text("INSERT INTO program_group (id, code, name, track, room, weekdays, start, \"end\", active) "
                 "VALUES (3, 'RP', 'RP', 'relapse-prevention', 'B', 'Mon', '09:00:00', '12:00:00', true)"))
        run(text("INSERT INTO client_group (client_id, group_id) VALUES (7, 3)"))
        run(text("INSERT INTO plan (id, client_id, level_of_care, start_date, weekly_minutes, days_per_week) "
                 "VALUES (5, 7, '2.1', '2026-03-02', 540, 3)"))
        run(text("INSERT INTO group_session (id, group_id, date, starts_at, ends_at, status, current_step) "
                 "VALUES (11, 3, '2026-03-02', '2026-03-02 14:00:00', '2026-03-02 17:00:00', 'closed', 0)"))
        run(text("INSERT INTO attendance (id, session_id, client_id, status, source, created_at) "
                 "VALUES (13, 11, 7, 'present', 'import', '2026-03-02 18:00:00')"))
        run(text("INSERT INTO week_flag (id, client_id, week_start, status, flagged_at) "
                 "VALUES (17, 7, '2026-03-02', 'at_risk', '2026-03-04 17:00:00')"))
    migrate.upgrade(application)
    with engine.connect() as connection:
        one = lambda sql: connection.execute(text(sql)).one()  # noqa: E731
        assert one("SELECT client_key, group_id FROM client_group") == (7, 3)
        assert one("SELECT id, client_key FROM plan") == (5, 7)
        assert one("SELECT id, session_id, client_key FROM attendance") == (13, 11, 7)
        assert one("SELECT id, client_key FROM week_flag") == (17, 7)
    with pytest.raises(IntegrityError):  # one live record per client per session still
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO attendance (session_id, client_key, status, source, created_at) "
                                    "VALUES (11, 7, 'present', 'kiosk', '2026-03-02 18:05:00')"))
    with pytest.raises(IntegrityError):  # and a row points at a client that exists
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO plan (client_key, level_of_care, start_date, weekly_minutes, "
                                    "days_per_week) VALUES (99, '2.1', '2026-03-02', 540, 3)"))


def test_staff_accounts_keep_their_rows_when_sessions_move_to_the_server(app_config):
    """0004 adds staff_session and sign_in_throttle and drops the account lock's columns: every
    account (and its password) is kept, and it signs in afterwards."""
    from werkzeug.security import generate_password_hash

    application = fresh_app(app_config)
    migrate.upgrade(application, "0003")
    engine = db.database(application).engine
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO staff_user (id, username, display_name, credentials, role, password_hash, active, "
            "failed_logins, locked_until, created_at) VALUES (4, 'dana', 'Dana Reyes', 'LCSW', 'facilitator', "
            ":hash, true, 3, '2026-03-01 00:00:00', '2026-03-01 00:00:00')"),
            {"hash": generate_password_hash("correct horse 1")})
    migrate.upgrade(application)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, username, display_name, active FROM staff_user")).one() == (
            4, "dana", "Dana Reyes", True)
        assert {c["name"] for c in inspect(connection).get_columns("staff_user")}.isdisjoint(
            {"failed_logins", "locked_until"})
    from helpers.web import AuthActions

    assert AuthActions(application.test_client(), application).login(create=False).status_code == 302


def test_attendance_keeps_its_rows_as_in_person_when_modality_and_authorizations_arrive(app_config):
    """0005 adds the authorization table and attendance.modality: records made before are in person,
    and an authorization is unique by client, service and number."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    application = fresh_app(app_config)
    migrate.upgrade(application, "0004")
    engine = db.database(application).engine
    with engine.begin() as connection:
        run = connection.execute
        run(text("INSERT INTO client (id, public_id, client_id, first_name, last_name, status, card_version, created_at) "
                 "VALUES (7, 'p7', 'C7', 'Ann', 'Bee', 'active', 1, '2026-03-01 00:00:00')"))
        run(text("INSERT INTO program_group (id, code, name, track, room, weekdays, start, \"end\", active) "
                 "VALUES (3, 'RP', 'RP', 'relapse-prevention', 'B', 'Mon', '09:00:00', '12:00:00', true)"))
        run(text("INSERT INTO group_session (id, group_id, date, starts_at, ends_at, status, current_step) "
                 "VALUES (11, 3, '2026-03-02', '2026-03-02 14:00:00', '2026-03-02 17:00:00', 'closed', 0)"))
        run(text("INSERT INTO attendance (id, session_id, client_key, status, source, created_at) "
                 "VALUES (13, 11, 7, 'present', 'import', '2026-03-02 18:00:00')"))
    migrate.upgrade(application)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, modality FROM attendance")).one() == (13, "in_person")
        connection.execute(text(
            "INSERT INTO \"authorization\" (client_key, payer, number, service, unit, units, start_date, end_date, "
            "note, created_at) VALUES (7, 'Aetna', 'A-1', 'H0015', 'day', 20, '2026-03-01', '2026-03-31', '', "
            "'2026-03-01 00:00:00')"))
    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO \"authorization\" (client_key, payer, number, service, unit, units, start_date, "
                "end_date, note, created_at) VALUES (7, 'Aetna', 'A-1', 'H0015', 'day', 5, '2026-04-01', "
                "'2026-04-30', '', '2026-03-01 00:00:00')"))
    from alembic import command

    try:
        command.downgrade(migrate.alembic_config(application), "0004")  # and it can be undone
        assert "authorization" not in inspect(engine).get_table_names()
        assert "modality" not in {c["name"] for c in inspect(engine).get_columns("attendance")}
    finally:
        # back to the newest schema: on PostgreSQL the suite's later tests share this schema
        migrate.upgrade(application)
    assert "modality" in {c["name"] for c in inspect(engine).get_columns("attendance")}

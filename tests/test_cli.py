"""The `iop` commands of the foundation: init, demo (twice), user add with good and bad input."""
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from iop.store import db
from iop.store.models import Attendance, Client, Group, GroupSession, KioskDevice, StaffUser


def counts(app):
    with app.app_context():
        s = db.session()
        return {model.__name__: s.scalar(select(func.count()).select_from(model))
                for model in (StaffUser, Group, Client, GroupSession, Attendance, KioskDevice)}


def test_demo_loads_a_program_with_a_session_running_now(runner, app):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "facilitator / demo-group-leader" in result.output
    assert "/kiosk/enroll/" in result.output
    loaded = counts(app)
    assert loaded["Client"] == 12 and loaded["StaffUser"] == 3 and loaded["Attendance"] > 50
    from iop import clock

    with app.app_context():
        now = clock.now()
        running = db.session().scalars(
            select(GroupSession).where(GroupSession.starts_at <= now, GroupSession.ends_at > now)).all()
    assert running, "the demo needs a session running now"


def test_demo_twice_adds_nothing_twice(runner, app):
    assert runner.invoke(args=["demo"]).exit_code == 0
    first = counts(app)
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert counts(app) == first


def test_user_add_reads_password_from_stdin(runner, app):
    result = runner.invoke(args=["user", "add", "casey", "--role", "coordinator", "--password-stdin"],
                           input="long enough pw\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session().scalar(select(StaffUser).where(StaffUser.username == "casey"))
    assert user.role == "coordinator" and user.password_hash != "long enough pw"


def test_user_add_refuses_duplicates_and_empty_passwords(runner):
    ok = runner.invoke(args=["user", "add", "casey", "--role", "admin", "--password-stdin"], input="long enough pw\n")
    assert ok.exit_code == 0
    dup = runner.invoke(args=["user", "add", "casey", "--role", "admin", "--password-stdin"], input="another pw 1\n")
    assert dup.exit_code == 1 and "taken" in dup.output
    empty = runner.invoke(args=["user", "add", "robin", "--role", "admin", "--password-stdin"], input="\n")
    assert empty.exit_code == 1 and "empty" in empty.output
    bad_role = runner.invoke(args=["user", "add", "robin", "--role", "boss", "--password-stdin"], input="pw pw pw pw\n")
    assert bad_role.exit_code != 0 and "boss" in bad_role.output


def test_kiosk_enroll_prints_a_one_time_link(runner):
    result = runner.invoke(args=["kiosk", "enroll", "Front desk"])
    assert result.exit_code == 0
    assert result.output.strip().startswith("http://127.0.0.1:5000/kiosk/enroll/")


def _iop(args, env, stdin=""):
    return subprocess.run([sys.executable, "-c", "from iop.ops.console import main; main()", *args],
                          env={**os.environ, **env}, input=stdin, capture_output=True, text=True, timeout=120)


def test_console_script_bad_environment_is_one_line_no_traceback(tmp_path):
    result = _iop(["init"], {"IOP_INSTANCE_PATH": str(tmp_path), "IOP_TIMEZONE": "Nowhere/Atlantis"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "IOP_TIMEZONE" in result.stderr


def test_console_script_unreachable_database(tmp_path):
    result = _iop(["init"], {"IOP_INSTANCE_PATH": str(tmp_path),
                             "IOP_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "cannot be reached" in result.stderr


def test_console_script_init_then_user_add(tmp_path):
    env = {"IOP_INSTANCE_PATH": str(tmp_path)}
    assert _iop(["init"], env).returncode == 0
    added = _iop(["user", "add", "lee", "--role", "facilitator", "--password-stdin"], env, "a good password\n")
    assert added.returncode == 0, added.stderr
    again = _iop(["user", "add", "lee", "--role", "facilitator", "--password-stdin"], env, "a good password\n")
    assert again.returncode == 1 and "taken" in again.stderr and "Traceback" not in again.stderr
    assert Path(tmp_path, "iop.sqlite3").exists()


def test_the_demo_group_runs_at_every_minute_of_the_day():
    """`iop serve --demo` at any hour has a session running now (the last minute before midnight too, all
    but its last second: a group ends at 23:59:59 at the latest)."""
    from datetime import datetime

    from iop.ops.demo import _demo_window

    for minute in range(24 * 60):
        for second in (0, 30, 58):
            now = datetime(2026, 3, 2, minute // 60, minute % 60, second)
            start, end = _demo_window(now)
            assert start <= now.time() < end, (now.time(), start, end)
            assert (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute) >= 179

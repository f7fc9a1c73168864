"""`iop import groups|clients|attendance`: every bad row reported by line, nothing loaded on any
error, the same file twice adds nothing twice, and never a traceback."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import func, select, text

from helpers.world import local
from iop.files import imports
from iop.store import db
from iop.store.models import Attendance, AuditEvent, Client, Group, GroupSession, Plan

GROUPS = """code,name,track,room,weekdays,start,end
RP-AM,Morning Relapse Prevention,relapse-prevention,Room B,Mon Wed Fri,09:00,12:00
TS-PM,Afternoon Twelve-Step,twelve-step,Room A,Mon Tue Wed Thu,13:00,14:30
"""
CLIENTS = """client_id,first_name,last_name,level_of_care,plan_start,plan_end,weekly_hours,days_per_week,groups,phases
C01,Ana,Lopez,2.1,2026-02-02,,9,3,RP-AM TS-PM,
C02,Ben,Okoro,2.1,2026-03-04,,9,3,RP-AM,1-4:9/3 5-8:6/2
C03,Cara,Diaz,,,,,,RP-AM,
"""
ATTENDANCE = """client_id,group,date,check_in,check_out,status
C01,RP-AM,2026-03-02,08:40,12:00,
C01,TS-PM,2026-03-02,13:00,14:30,
C02,RP-AM,2026-03-04,09:00,,
C02,RP-AM,2026-03-06,,,excused
"""


@pytest.fixture
def csv_file(tmp_path):
    made = []

    def _write(content: str | bytes, name: str | None = None):
        path = tmp_path / (name or f"file{len(made)}.csv")
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        made.append(path)
        return str(path)

    return _write


@pytest.fixture
def load(runner, csv_file, freeze):
    """load(kind, text) runs `iop import kind FILE` and returns click's result."""
    freeze(local(date(2026, 4, 1), 12))

    def _load(kind, content, **kwargs):
        return runner.invoke(args=["import", kind, csv_file(content, **kwargs)])

    return _load


@pytest.fixture
def program(load):
    for kind, content in (("groups", GROUPS), ("clients", CLIENTS), ("attendance", ATTENDANCE)):
        result = load(kind, content)
        assert result.exit_code == 0, result.output
    return load


def counts(app):
    with app.app_context():
        s = db.session()
        return {model.__name__: s.scalar(select(func.count()).select_from(model))
                for model in (Group, Client, Plan, GroupSession, Attendance)}


def failed(result, *expected_lines):
    """The command failed as a person should see it: exit 1, the reasons by line, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "Nothing was imported" in result.stderr
    for expected in expected_lines:
        assert expected in result.stderr, f"{expected!r} not in:\n{result.stderr}"
    return result.stderr


def reported(stderr: str, line: int, reason: str) -> bool:
    return any(text.startswith(f"line {line}: ") and reason in text for text in stderr.splitlines())


# ---- good files, twice ---------------------------------------------------------------------

def test_a_program_loads_and_the_same_files_again_add_nothing(program, app):
    first = counts(app)
    assert first == {"Group": 2, "Client": 3, "Plan": 2, "GroupSession": 4, "Attendance": 4}
    for kind, content in (("groups", GROUPS), ("clients", CLIENTS), ("attendance", ATTENDANCE)):
        again = program(kind, content)
        assert again.exit_code == 0, again.output
        assert "0 added, 0 updated" in again.stdout
    assert counts(app) == first


def test_after_an_import_postgresql_knows_the_tables_sizes(program, app):
    """The first scans after loading a program are planned for the tables as loaded, not as empty."""
    with app.app_context():
        if db.database().engine.dialect.name != "postgresql":
            pytest.skip("SQLite keeps no planner statistics unless asked")
        analyzed = dict(db.session().execute(text(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname IN ('client', 'client_group', 'attendance')")).all())
    assert analyzed == {"client": True, "client_group": True, "attendance": True}


def test_imported_rows_hold_what_the_file_says(program, app):
    with app.app_context():
        s = db.session()
        ben = s.scalar(select(Client).where(Client.client_id == "C02"))
        plan = ben.plans[0]
        assert (plan.start_date, plan.end_date, plan.weekly_minutes, plan.days_per_week) == \
            (date(2026, 3, 4), None, 540, 3)
        assert [(p.first_week, p.last_week, p.weekly_minutes, p.days_per_week) for p in plan.phases] == \
            [(1, 4, 540, 3), (5, 8, 360, 2)]
        assert [g.code for g in ben.groups] == ["RP-AM"]
        assert s.scalar(select(Client).where(Client.client_id == "C03")).plans == []
        visits = s.execute(select(Attendance, GroupSession).join(GroupSession)
                           .order_by(GroupSession.date, GroupSession.starts_at)).tuples().all()
        ana_morning = visits[0][0]
        assert ana_morning.check_in_at == local(date(2026, 3, 2), 8, 40)
        assert ana_morning.source == "import"
        open_visit = next(a for a, m in visits if a.client_key == ben.id and a.status == "present")
        assert open_visit.check_out_at is None
        excused = next(a for a, m in visits if a.status == "excused")
        assert excused.check_in_at is None and excused.check_out_at is None


def test_a_changed_client_row_updates_the_plan_and_is_audited(program, app):
    changed = CLIENTS.replace("C01,Ana,Lopez,2.1,2026-02-02,,9,3", "C01,Ana,Lopez,2.1,2026-02-02,2026-05-29,6,2")
    result = program("clients", changed)
    assert result.exit_code == 0, result.output
    assert "1 updated" in result.stdout and "2 already there" in result.stdout
    with app.app_context():
        s = db.session()
        ana = s.scalar(select(Client).where(Client.client_id == "C01"))
        assert len(ana.plans) == 1
        assert (ana.plans[0].end_date, ana.plans[0].weekly_minutes, ana.plans[0].days_per_week) == \
            (date(2026, 5, 29), 360, 2)
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "client.updated"))
        assert event.target == f"client:{ana.public_id}"
        assert "Lopez" not in str(event.detail) and "plan weekly_minutes" in event.detail["fields"]


def test_each_import_is_audited_with_kind_and_rows(program, app):
    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.action.like("import.%"))
                                      .order_by(AuditEvent.id)).all()
    assert [(e.action, e.detail["rows"], e.detail["added"], e.detail["via"]) for e in events] == [
        ("import.groups", 2, 2, "cli"), ("import.clients", 3, 3, "cli"), ("import.attendance", 4, 4, "cli")]


def test_a_byte_order_mark_and_crlf_line_ends_are_fine(load, app):
    result = load("groups", ("\ufeff" + GROUPS).replace("\n", "\r\n"))
    assert result.exit_code == 0, result.output
    assert counts(app)["Group"] == 2


def test_a_header_in_another_order_and_case_is_read_by_name(load, app):
    result = load("groups", "Name,Code,Track,Room,Weekdays,Start,End\nEvening,EV,twelve-step,,Tue Thu,18:00,21:00\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        group = db.session().scalar(select(Group))
    assert (group.code, group.name, group.weekdays) == ("EV", "Evening", "Tue Thu")


# ---- bad attendance rows: each reported by line, nothing loaded ------------------------------

GOOD_ROW = "C01,RP-AM,2026-03-09,09:00,12:00,"


@pytest.mark.parametrize("row, reason", [
    ("C01,XX,2026-03-11,09:00,12:00,", "unknown group 'XX'"),
    ("C99,RP-AM,2026-03-11,09:00,12:00,", "unknown client_id 'C99'"),
    ("C01,RP-AM,2026-03-32,09:00,12:00,", "date '2026-03-32' is not a date"),
    ("C01,RP-AM,11/03/2026,09:00,12:00,", "date '11/03/2026' is not a date"),
    ("C01,RP-AM,2026-03-11,9am,12:00,", "check_in '9am' is not a time"),
    ("C01,RP-AM,2026-03-11,09:00,25:00,", "check_out '25:00' is not a time"),
    ("C01,RP-AM,2026-03-11,11:00,10:00,", "check_out 10:00 is before check_in 11:00"),
    ("C01,RP-AM,2026-03-10,09:00,12:00,", "RP-AM does not meet on Tuesdays"),
    ("C01,RP-AM,2026-03-11,,,", "check_in is empty"),
    ("C01,RP-AM,2026-03-11,09:00,12:00,excused", "an excused row has empty check_in and check_out"),
    ("C01,RP-AM,2026-03-11,09:00,12:00,late", "status 'late' must be present, excused or empty"),
    ("C01,RP-AM,2026-04-03,09:00,12:00,", "is in the future"),
    ("C01,RP-AM,2026-03-11,09:00", "4 values, but the header has 6 columns"),
    # the same client in two places at once, within the file:
    ("C01,TS-PM,2026-03-09,11:30,14:00,", "C01 cannot be in two places at once: this overlaps line 2"),
    # ... and against a record already in the database (Monday 2026-03-02 13:00-14:30):
    ("C01,RP-AM,2026-03-02,09:00,,", "already recorded as 08:40-12:00; correct it in the app"),
    # the same session twice in the file:
    (GOOD_ROW, "C01 at RP-AM on 2026-03-09 is already on line 2"),
])
def test_each_bad_attendance_row_is_reported_and_nothing_loads(program, app, row, reason):
    before = counts(app)
    result = program("attendance", f"client_id,group,date,check_in,check_out,status\n{GOOD_ROW}\n{row}\n")
    assert reported(failed(result, "1 row with problems (of 2)"), 3, reason)
    assert not any(line.startswith("line 2:") for line in result.stderr.splitlines()), "the good row is fine"
    assert counts(app) == before, "a bad row must load nothing, not even the good row"


def test_overlap_with_an_existing_record_in_another_session(program, app):
    # Ana is recorded in TS-PM on 2026-03-02 13:00-14:30; an RP-AM visit ending at 13:30 collides.
    before = counts(app)
    result = program("attendance", "client_id,group,date,check_in,check_out\nC01,RP-AM,2026-03-04,09:00,12:00\n"
                                   "C01,TS-PM,2026-03-04,13:00,14:00\nC01,RP-AM,2026-03-09,09:00,12:00\n"
                                   "C01,TS-PM,2026-03-09,11:00,14:30\n")
    failed(result, "line 5: C01 cannot be in two places at once: this overlaps line 4")
    assert counts(app) == before
    existing = program("attendance", "client_id,group,date,check_in,check_out\nC02,TS-PM,2026-03-04,08:00,13:30\n")
    failed(existing, "line 2: C02 cannot be in two places at once: this overlaps the recorded check-in at RP-AM "
                     "on 2026-03-04 (09:00-12:00)")


def test_back_to_back_sessions_do_not_overlap(program, app):
    result = program("attendance", "client_id,group,date,check_in,check_out\nC01,RP-AM,2026-03-11,09:00,12:00\n"
                                   "C01,TS-PM,2026-03-11,12:00,14:30\n")
    assert result.exit_code == 0, result.output


def test_many_bad_rows_are_all_listed_in_order(program, app):
    rows = "\n".join(f"C01,XX,2026-03-{day:02d},09:00,12:00" for day in range(2, 12))
    result = program("attendance", f"client_id,group,date,check_in,check_out\n{rows}\n")
    stderr = failed(result, "10 rows with problems (of 10)")
    assert [line.split(":")[0] for line in stderr.splitlines() if line.startswith("line ")] == \
        [f"line {n}" for n in range(2, 12)]


def test_line_numbers_count_quoted_multiline_fields(load, app):
    content = ('code,name,track,room,weekdays,start,end\n"A","a name\nover two lines",twelve-step,,Mon,09:00,10:00\n'
               "B,B,nowhere,,Mon,09:00,10:00\n")
    failed(load("groups", content), "line 4: track 'nowhere' is not a curriculum track")


# ---- bad groups and clients ----------------------------------------------------------------

@pytest.mark.parametrize("row, reason", [
    ("EV,Evening,yoga,Room C,Tue Thu,18:00,21:00", "track 'yoga' is not a curriculum track"),
    ("EV,Evening,twelve-step,Room C,Tue Funday,18:00,21:00", "weekdays 'Tue Funday' must be day names"),
    ("EV,Evening,twelve-step,Room C,Tue Tue,18:00,21:00", "names a day twice"),
    ("EV,Evening,twelve-step,Room C,Tue Thu,21:00,18:00", "end 18:00 is not after start 21:00"),
    ("EV,Evening,twelve-step,Room C,Tue Thu,6pm,21:00", "start '6pm' is not a time"),
    ("E V,Evening,twelve-step,Room C,Tue Thu,18:00,21:00", "has a space"),
    (",Evening,twelve-step,Room C,Tue Thu,18:00,21:00", "code is empty"),
    ("RP-AM,Again,twelve-step,Room C,Tue Thu,18:00,21:00", "group RP-AM is already on line 2"),
])
def test_each_bad_group_row_is_reported_and_nothing_loads(load, app, row, reason):
    result = load("groups", f"code,name,track,room,weekdays,start,end\n{GROUPS.splitlines()[1]}\n{row}\n")
    assert reported(failed(result), 3, reason)
    assert counts(app)["Group"] == 0


@pytest.mark.parametrize("row, reason", [
    ("C09,Dee,Ray,9.9,2026-03-02,,9,3,RP-AM,", "level_of_care '9.9' is not a known level"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,3,RP-AM XX,", "unknown group XX (import groups first)"),
    ("C09,Dee,Ray,2.1,2026-03-02,2026-03-01,9,3,RP-AM,", "plan_end 2026-03-01 is before plan_start 2026-03-02"),
    ("C09,Dee,Ray,2.1,03/02/2026,,9,3,RP-AM,", "plan_start '03/02/2026' is not a date"),
    ("C09,Dee,Ray,2.1,2026-03-02,,nine,3,RP-AM,", "weekly_hours 'nine' is not a number of hours"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,8,RP-AM,", "days_per_week '8' must be a whole number of days from 0 to 7"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,3,RP-AM,1-4:9/3 4-8:6/2", "phases weeks 1-4 and 4-8 overlap"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,3,RP-AM,1-4:9/3 6-8:6/2", "phases leave weeks 5-5 without hours"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,3,RP-AM,2-4:9/3", "the first phase must start at week 1"),
    ("C09,Dee,Ray,2.1,2026-03-02,,9,3,RP-AM,1-4 9h", "phase '1-4' is not like 1-4:9/3"),
    ("C09,,Ray,2.1,2026-03-02,,9,3,RP-AM,", "first_name is empty"),
    ("C09,Dee,Ray,2.1,,,9,3,RP-AM,", "plan_start is empty but other plan columns are filled"),
    ("C01,Ana,Lopez,2.1,2026-03-02,,9,3,RP-AM,", "client C01 is already on line 2"),
])
def test_each_bad_client_row_is_reported_and_nothing_loads(load, app, row, reason):
    assert load("groups", GROUPS).exit_code == 0
    result = load("clients", f"{CLIENTS.splitlines()[0]}\n{CLIENTS.splitlines()[1]}\n{row}\n")
    assert reported(failed(result), 3, reason)
    assert counts(app)["Client"] == 0 and counts(app)["Plan"] == 0


def test_a_new_plan_overlapping_the_clients_open_plan_is_refused(program, app):
    # Ana's plan from 2026-02-02 is open-ended: a second plan must wait until that one has an end.
    row = "C01,Ana,Lopez,2.1,2026-04-06,,6,2,RP-AM TS-PM,"
    result = program("clients", f"{CLIENTS.splitlines()[0]}\n{row}\n")
    failed(result, "line 2: this plan overlaps C01's plan that starts 2026-02-02 (ends open)")
    ended = program("clients", f"{CLIENTS.splitlines()[0]}\nC01,Ana,Lopez,2.1,2026-02-02,2026-04-03,9,3,RP-AM TS-PM,\n")
    assert ended.exit_code == 0, ended.output
    stepped = program("clients", f"{CLIENTS.splitlines()[0]}\n{row}\n")
    assert stepped.exit_code == 0 and "1 updated" in stepped.stdout
    with app.app_context():
        ana = db.session().scalar(select(Client).where(Client.client_id == "C01"))
        assert [(p.start_date, p.weekly_minutes) for p in ana.plans] == [(date(2026, 2, 2), 540), (date(2026, 4, 6), 360)]


# ---- whole-file problems -------------------------------------------------------------------

def test_a_missing_column_in_the_header(load, app):
    failed(load("groups", "code,name,track,room,weekdays,start\nA,A,twelve-step,,Mon,09:00\n"),
           "line 1: missing column end (the header must be code,name,track,room,weekdays,start,end)")


def test_a_wrong_header(load, app):
    failed(load("clients", GROUPS), "line 1: missing columns client_id, first_name", "unknown columns 'code'")


def test_no_header_at_all_is_a_wrong_header(load, app):
    failed(load("groups", GROUPS.split("\n", 1)[1]), "line 1: missing columns")
    assert counts(app)["Group"] == 0


def test_an_empty_file(load):
    failed(load("groups", ""), "line 1: the file is empty")
    failed(load("groups", "\n\n"), "line 1: the file is empty")


def test_a_header_without_rows(load):
    failed(load("groups", GROUPS.splitlines()[0] + "\n"), "line 2: no rows after the header")


def test_a_file_that_is_not_utf8(load, app):
    latin1 = "code,name,track,room,weekdays,start,end\nA,Caf\xe9 group,twelve-step,,Mon,09:00,10:00\n".encode("latin-1")
    failed(load("groups", latin1), "line 2: this line holds bytes that are not UTF-8 text", 'Save it as "CSV UTF-8"')
    assert counts(app)["Group"] == 0


def test_a_missing_file_is_one_line(runner, tmp_path):
    result = runner.invoke(args=["import", "groups", str(tmp_path / "nowhere.csv")])
    assert result.exit_code == 1 and "there is no file" in result.stderr and result.stderr.count("\n") == 1


def test_the_console_script_prints_lines_and_no_traceback(tmp_path, app_config):
    instance = tmp_path / "cli-instance"
    env = {**os.environ, "IOP_INSTANCE_PATH": str(instance), "IOP_DATABASE_URL": app_config.get(
        "DATABASE_URL", f"sqlite:///{instance}/iop.sqlite3"), "IOP_SCHEDULER": "off"}
    if "DATABASE_URL" in app_config:
        pytest.skip("the console script test runs on SQLite (its own instance)")
    bad = tmp_path / "groups.csv"
    bad.write_bytes(b"code,name,track,room,weekdays,start,end\nA,A,yoga,,Mon,09:00,10:00\nB,\xff,twelve-step,,Mon,09:00,10:00\n")

    def iop(*args):
        return subprocess.run([sys.executable, "-c", "from iop.ops.console import main; main()", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    assert iop("init").returncode == 0
    result = iop("import", "groups", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "line 3: this line holds bytes that are not UTF-8 text",
        'Error: Nothing was imported: the file is not UTF-8 text. Save it as "CSV UTF-8" and try again.']
    bad.write_text("code,name,track,room,weekdays,start,end\nA,A,yoga,,Mon,09:00,10:00\nB,B,twelve-step,,Mon,10:00,09:00\n")
    result = iop("import", "groups", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[:2] == [
        "line 2: track 'yoga' is not a curriculum track (known: relapse-prevention, twelve-step)",
        "line 3: end 09:00 is not after start 10:00"]


# ---- the web's entry point and the progress bar ----------------------------------------------

def test_import_csv_takes_bytes_and_an_actor(ctx, freeze):
    freeze(local(date(2026, 4, 1), 12))
    result = imports.import_csv("groups", GROUPS.encode(), via="web")
    assert (result.added, result.rows) == (2, 2)
    with pytest.raises(imports.ImportFailed) as caught:
        imports.import_csv("nonsense", b"x")
    assert "kind must be one of groups, clients, attendance" in caught.value.summary


def test_the_progress_bar_draws_for_big_files_only():
    out = io.StringIO()
    ticks = iter(range(0, 10_000))
    bar = imports.Progress(5000, enabled=True, stream=out, clock_=lambda: next(ticks))
    bar.phase("Checking")
    for done in range(1, 5001):
        bar.update(done)
    bar.done()
    text = out.getvalue()
    assert "Checking  [" in text and "5000/5000 rows" in text and text.endswith("\n")
    assert "[" + "#" * imports.Progress.WIDTH + "]" in text
    small = io.StringIO()
    tiny = imports.Progress(10, enabled=True, stream=small)
    tiny.phase("Checking")
    tiny.update(10)
    tiny.done()
    assert small.getvalue() == ""
    quiet = io.StringIO()
    off = imports.Progress(5000, enabled=False, stream=quiet)
    off.phase("Checking")
    off.update(5000)
    assert quiet.getvalue() == ""


def test_a_changed_group_schedule_moves_its_upcoming_sessions(program, app, world):
    """Re-importing a group with new times moves its sessions nobody has begun, as the groups page does."""
    upcoming = world.session("TS-PM", date(2026, 4, 2))  # a Thursday after the frozen "now" (April 1)
    changed = GROUPS.replace("Mon Tue Wed Thu,13:00,14:30", "Mon Tue Wed Thu,15:00,16:30")
    result = program("groups", changed)
    assert result.exit_code == 0, result.output
    with app.app_context():
        moved = db.session().get(GroupSession, upcoming.id)
        assert moved.starts_at == local(date(2026, 4, 2), 15)
        assert moved.ends_at == local(date(2026, 4, 2), 16, 30)

"""Imports read in bounded memory, refuse what is not a regular file or not CSV text without quoting
it, load all rows or none (a late bad row, a load stopped part-way), and audit each refusal
("import.failed": what was refused, never the content). `iop import` is driven as a person runs it."""
from __future__ import annotations

import os
import tracemalloc
from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from helpers.world import local
from iop.files import imports
from iop.store import db
from iop.store.models import Attendance, AuditEvent

HEADER = "client_id,group,date,check_in,check_out\n"


@pytest.fixture
def clinic(world, freeze):
    """Two groups meeting every weekday, 30 clients in both; 'now' is well after the year of 2025."""
    freeze(local(date(2026, 4, 1), 12))
    morning = world.group(code="AM", start=time(9), end=time(12), weekdays="Mon Tue Wed Thu Fri")
    evening = world.group(code="PM", start=time(13), end=time(15), weekdays="Mon Tue Wed Thu Fri")
    for n in range(30):
        world.client(f"K{n:03d}", "First", f"Last{n}", groups=[morning, evening], plan_start=date(2025, 1, 6))
    return world


def weekdays(first: date, count: int):
    day = first
    while count:
        if day.weekday() < 5:
            yield day
            count -= 1
        day += timedelta(days=1)


def good_rows(days: int) -> str:
    lines = []
    for day in weekdays(date(2025, 1, 6), days):
        for n in range(30):
            lines.append(f"K{n:03d},AM,{day},09:00,12:00\n")
            lines.append(f"K{n:03d},PM,{day},13:00,15:00\n")
    return "".join(lines)


def attendance_count(app) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Attendance))


def failures(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session().scalars(select(AuditEvent).where(AuditEvent.action == "import.failed")).all()


def run(runner, *args):
    result = runner.invoke(args=["import", *args])
    assert "Traceback" not in result.output
    return result


# ---- not a regular file, not CSV text --------------------------------------------------------

def test_a_device_is_refused_in_one_line_without_reading_it(runner, app):
    result = run(runner, "clients", "/dev/zero")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["Error: Nothing was imported: /dev/zero is not a regular file (a device, a "
                                          "pipe or a socket); give the path of a CSV file."]
    [event] = failures(app)
    assert event.detail["reason"] == "not_regular" and event.detail["via"] == "cli"


def test_a_fifo_is_refused_without_waiting_for_a_writer(runner, app, tmp_path):
    fifo = tmp_path / "clients.csv"
    os.mkfifo(fifo)
    result = run(runner, "clients", str(fifo))  # opening it to read would block until a writer came
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "is not a regular file" in result.stderr


def test_a_folder_is_refused_in_one_line(runner, tmp_path):
    result = run(runner, "groups", str(tmp_path))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "is a folder" in result.stderr


def test_binary_data_is_called_not_csv_and_not_shown(runner, app, tmp_path):
    blob = tmp_path / "clients.csv"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR Maria Gonzalez C1001\n" * 100)
    result = run(runner, "clients", str(blob))
    assert result.exit_code == 1
    assert "the file is not a CSV text file (it holds binary data)" in result.stderr
    assert "Maria" not in result.output and "IHDR" not in result.output and "PNG" not in result.output
    [event] = failures(app)
    assert event.detail["reason"] == "not_csv" and "Maria" not in str(event.detail)


def test_text_that_is_not_csv_is_not_quoted_back(runner, tmp_path):
    letter = tmp_path / "clients.csv"
    letter.write_text("Dear Maria Gonzalez, your next group is on Monday\nSee you there\n")
    result = run(runner, "clients", str(letter))
    assert result.exit_code == 1 and "missing columns client_id" in result.stderr
    assert "maria" not in result.output.lower() and "dear" not in result.output.lower()


def test_one_endless_line_is_refused_without_holding_it(runner, tmp_path):
    endless = tmp_path / "attendance.csv"
    endless.write_bytes(HEADER.encode() + b"K001," + b"9" * (8 * 1024 * 1024))
    tracemalloc.start()
    try:
        result = run(runner, "attendance", str(endless))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 1 and "line 2: a line longer than 64 KB" in result.stderr
    assert peak < 2 * 1024 * 1024, f"an 8 MB line was held ({peak} bytes at the peak)"


# ---- bounded memory --------------------------------------------------------------------------

def test_memory_does_not_grow_with_the_file_text_or_its_problems(clinic, app, tmp_path):
    """60,000 bad rows (2.5 MB, every row with two problems): only 50 problems are kept, and the text is
    read a line at a time (the earlier import held the file, its text and every row's cells at once)."""
    path = tmp_path / "attendance.csv"
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(60_000):
            out.write(f"NOBODY{n:05d},XX,2025-01-06,09:00,12:00\n")
    assert path.stat().st_size > 2_000_000
    with app.app_context():
        tracemalloc.start()
        try:
            with pytest.raises(imports.ImportFailed) as refused:
                imports.import_file("attendance", path)
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    failure = refused.value
    assert failure.problem_count == 120_000 and len(failure.problems) == imports.PROBLEMS_SHOWN
    assert failure.more == "and 119950 more problems in 59975 lines"
    assert peak < 12 * 1024 * 1024, f"{peak / 1e6:.1f} MB at the peak for a 2.5 MB file"


def test_memory_for_good_rows_is_their_parsed_values_only(clinic, app, tmp_path):
    """12,000 good rows (about 400 KB of text): what is held is a small record a row, not the text."""
    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + good_rows(200))
    with app.app_context():
        tracemalloc.start()
        try:
            result = imports.import_file("attendance", path)
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.added == 12_000
    assert peak / 12_000 < 1500, f"{peak / 12_000:.0f} bytes a row at the peak"


# ---- all or nothing --------------------------------------------------------------------------

def test_a_bad_last_row_loads_nothing(clinic, app, runner, tmp_path):
    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + good_rows(100) + "K001,AM,2025-13-01,09:00,12:00\n")
    result = run(runner, "attendance", str(path))
    assert result.exit_code == 1 and "line 6002: date '2025-13-01' is not a date" in result.stderr
    assert attendance_count(app) == 0
    [event] = failures(app)
    assert event.detail["first"] == ["line 6002: date:not_a_date"]
    assert event.detail["rows"] == 6001 and event.detail["problems"] == 1


def test_a_load_stopped_part_way_takes_its_rows_back(clinic, app, tmp_path, monkeypatch):
    """A conflicting write in the middle of the load (here: a failing third batch) leaves nothing behind."""
    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + good_rows(50))  # 3,000 rows: several batches of imports.LOAD_BATCH
    batches = []

    class Interrupting(imports.Progress):
        def update(self, done):
            if self.label == "Loading" and done:
                batches.append(done)
                assert attendance_count(app) == done, "each batch is committed (kiosks scan in between)"
                if len(batches) == 2:
                    raise RuntimeError("the server stopped")

    with app.app_context():
        with pytest.raises(RuntimeError):
            imports.import_file("attendance", path, sink=Interrupting(0, enabled=False))
    assert batches == [imports.LOAD_BATCH, 2 * imports.LOAD_BATCH]
    assert attendance_count(app) == 0


DIES_MID_LOAD = """
import os, sys
from iop.files import import_jobs
from iop.ops import console

def update(self, done):  # the first batch is committed: the process is killed (kill -9) right there
    import_jobs.JobProgress.update(self, done)
    if self.label == "Loading" and done:
        os._exit(9)

import_jobs.CommandProgress.update = update
sys.argv = ["iop", "import", "attendance", sys.argv[1]]
console.main()
"""


def test_a_command_killed_mid_load_is_taken_back_within_minutes(clinic, app, app_config, tmp_path, freeze):
    """`iop import` killed between two committed batches leaves rows behind for a moment: its job row goes
    stale, and the scheduler's minute (or the next import) takes them back: all rows or none."""
    import subprocess
    import sys
    from datetime import datetime, timezone

    from iop.ops import scheduler
    from iop.store.models import ImportJob

    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + good_rows(50))  # 3,000 rows: several batches
    env = {key: value for key, value in os.environ.items() if not key.startswith("IOP_")}
    env.update(IOP_INSTANCE_PATH=app_config["INSTANCE_PATH"], IOP_SECRET_KEY=app_config["SECRET_KEY"],
               IOP_TIMEZONE=app_config["TIMEZONE"], IOP_SCHEDULER="off")
    if app_config.get("DATABASE_URL"):
        env["IOP_DATABASE_URL"] = app_config["DATABASE_URL"]
    died = subprocess.run([sys.executable, "-c", DIES_MID_LOAD, str(path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert died.returncode == 9, died.stderr[-2000:]
    assert attendance_count(app) == imports.LOAD_BATCH  # what a reader sees until it is taken back

    freeze(datetime.now(timezone.utc) + timedelta(minutes=1))
    with app.app_context():
        scheduler.tidy_imports()  # not yet stale: a slow load is not taken for a dead one
    assert attendance_count(app) == imports.LOAD_BATCH
    freeze(datetime.now(timezone.utc) + timedelta(minutes=3))
    with app.app_context():
        scheduler.tidy_imports()
        [job] = db.session().scalars(select(ImportJob)).all()
        assert (job.via, job.status) == ("cli", "failed")
    assert attendance_count(app) == 0


def test_the_command_lists_fifty_problems_and_the_total(clinic, runner, tmp_path):
    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + "".join(f"K{n % 30:03d},XX,2025-01-06,9am,12:00\n" for n in range(100)))
    result = run(runner, "attendance", str(path))
    lines = result.stderr.splitlines()
    assert result.exit_code == 1
    assert len([line for line in lines if line.startswith("line ")]) == 50
    assert lines[:2] == ["line 2: unknown group 'XX'",
                         "line 2: check_in '9am' is not a time like 09:00 (24-hour clock)"]
    assert "... and 150 more problems in 75 lines" in lines
    assert lines[-1] == "Error: Nothing was imported: 100 rows with problems (of 100)."

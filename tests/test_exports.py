"""`iop export hours|attendance|days`: exact headers, and hand-computed figures through the public
path (CSV in with `iop import`, CSV out with `iop export`), in CSV and in XLSX.

The program is tests/helpers/exports_program.py's (the fixture `program`).
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, time

import pytest
from sqlalchemy import select

from helpers.world import local
from iop.files import exports
from iop.store import db
from iop.store.models import AuditEvent, GroupSession

HOURS_HEADER = "client_id,client_name,week_start,level_of_care,target_minutes,attended_minutes,attended_hours,days_attended,status"
ATTENDANCE_HEADER = ("date,client_id,client_name,group,track,module,check_in,check_out,credited_minutes,status,source,"
                     "modality")
DAYS_HEADER = "date,client_id,client_name,credited_minutes,sessions,full_day"

EXPECTED_HOURS = [
    # week of 2 March: C01 early (180, arrived 08:40), late (155, arrived 09:25), left early (135, left 11:15)
    "C01,Ana Lopez,2026-03-02,2.1,540,470,7.83,3,short",
    "C02,Ben Okoro,2026-03-02,2.1,330,360,6.00,2,met",  # plan starts on a Wednesday: prorated target
    "C03,Cara Diaz,2026-03-02,,0,60,1.00,1,no_plan",  # no plan, attended
    "C04,Dev Shah,2026-03-02,2.1,540,60,1.00,1,short",  # Sunday 8 March, the DST day, is in this week
    # week of 9 March (after DST): C01 no check-out (credited to the end) + a second session that day
    "C01,Ana Lopez,2026-03-09,2.1,540,270,4.50,1,short",
    "C02,Ben Okoro,2026-03-09,2.1,540,0,0.00,0,short",  # excused: no minutes, same target
    "C04,Dev Shah,2026-03-09,2.1,360,10,0.17,1,short",  # phase 2; arrived early and left early: 10 min
]
EXPECTED_ATTENDANCE = [
    # date, client, name, group, track, check_in, check_out, credited, status, source (module checked apart)
    ("2026-03-02", "C01", "Ana Lopez", "RP-AM", "relapse-prevention", "08:40", "12:00", "180", "present", "import"),
    ("2026-03-04", "C01", "Ana Lopez", "RP-AM", "relapse-prevention", "09:25", "12:00", "155", "present", "import"),
    ("2026-03-04", "C02", "Ben Okoro", "RP-AM", "relapse-prevention", "09:00", "12:00", "180", "present", "import"),
    ("2026-03-04", "C03", "Cara Diaz", "RP-AM", "relapse-prevention", "09:00", "10:00", "60", "present", "import"),
    ("2026-03-06", "C01", "Ana Lopez", "RP-AM", "relapse-prevention", "09:00", "11:15", "135", "present", "import"),
    ("2026-03-06", "C02", "Ben Okoro", "RP-AM", "relapse-prevention", "09:00", "12:00", "180", "present", "import"),
    ("2026-03-08", "C04", "Dev Shah", "WKND", "twelve-step", "10:00", "11:00", "60", "present", "import"),
    ("2026-03-09", "C01", "Ana Lopez", "RP-AM", "relapse-prevention", "09:00", "", "180", "present", "import"),
    ("2026-03-09", "C02", "Ben Okoro", "RP-AM", "relapse-prevention", "", "", "0", "excused", "import"),
    ("2026-03-09", "C01", "Ana Lopez", "TS-PM", "twelve-step", "13:00", "14:30", "90", "present", "import"),
    ("2026-03-10", "C04", "Dev Shah", "TS-PM", "twelve-step", "12:30", "13:10", "10", "present", "import"),
    ("2026-03-12", "C04", "Dev Shah", "TS-PM", "twelve-step", "14:40", "14:50", "0", "present", "import"),
]
EXPECTED_DAYS = [
    "2026-03-02,C01,Ana Lopez,180,1,yes",  # exactly 180 is a full day
    "2026-03-04,C01,Ana Lopez,155,1,no",
    "2026-03-04,C02,Ben Okoro,180,1,yes",
    "2026-03-04,C03,Cara Diaz,60,1,no",
    "2026-03-06,C01,Ana Lopez,135,1,no",
    "2026-03-06,C02,Ben Okoro,180,1,yes",
    "2026-03-08,C04,Dev Shah,60,1,no",
    "2026-03-09,C01,Ana Lopez,270,2,yes",  # two sessions in a day
    "2026-03-10,C04,Dev Shah,10,1,no",
    # 2026-03-12: C04 came after the end: 0 minutes, so no billing day
]


def lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_headers_are_exactly_the_contract_even_with_no_rows(runner):
    for kind, header in (("hours", HOURS_HEADER), ("attendance", ATTENDANCE_HEADER), ("days", DAYS_HEADER)):
        result = runner.invoke(args=["export", kind, "--from", "2020-01-06", "--to", "2020-01-12"])
        assert lines(result) == [header]
        assert ",".join(exports.header(kind)) == header


def test_hours_per_client_per_whole_week(program):
    # A range from Wednesday to Tuesday still gives both whole weeks it touches.
    assert lines(program("hours", "2026-03-04", "2026-03-10")) == [HOURS_HEADER] + EXPECTED_HOURS


def test_attendance_one_row_per_record_with_local_times(program, app):
    rows = list(csv.reader(io.StringIO(program("attendance", "2026-03-01", "2026-03-15").stdout)))
    assert rows[0] == ATTENDANCE_HEADER.split(",")
    assert [tuple(row[:5] + row[6:11]) for row in rows[1:]] == EXPECTED_ATTENDANCE
    assert {row[11] for row in rows[1:]} == {"in_person"}  # the file gave no modality
    with app.app_context():
        modules = {(m.date.isoformat(), m.group.code): m.module_id or "" for m in db.session().scalars(select(GroupSession))}
    assert [row[5] for row in rows[1:]] == [modules[(row[0], row[3])] for row in rows[1:]]


def test_attendance_range_is_inclusive_on_session_dates(program):
    rows = lines(program("attendance", "2026-03-08", "2026-03-09"))[1:]
    assert [row.split(",")[0] for row in rows] == ["2026-03-08"] + ["2026-03-09"] * 3


def test_days_one_row_per_client_per_day_with_minutes(program):
    assert lines(program("days", "2026-03-01", "2026-03-15")) == [DAYS_HEADER] + EXPECTED_DAYS


def test_full_day_minutes_follow_the_setting(program, app):
    app.config["FULL_DAY_MINUTES"] = 150
    days = lines(program("days", "2026-03-04", "2026-03-04"))[1:]
    assert days == ["2026-03-04,C01,Ana Lopez,155,1,yes", "2026-03-04,C02,Ben Okoro,180,1,yes",
                    "2026-03-04,C03,Cara Diaz,60,1,no"]


def test_a_voided_attendance_is_left_out(program, app):
    from iop.store.models import Attendance, Client

    with app.app_context():
        with db.transaction() as s:
            cara = s.scalar(select(Client).where(Client.client_id == "C03"))
            record = s.scalar(select(Attendance).where(Attendance.client_key == cara.id))
            record.voided_at = datetime(2026, 3, 5, tzinfo=local(date(2026, 3, 5), 0).tzinfo)
            record.void_reason = "entered for the wrong client"
    assert "C03" not in program("attendance", "2026-03-01", "2026-03-15").stdout
    assert "C03" not in program("days", "2026-03-01", "2026-03-15").stdout


@pytest.mark.parametrize("kind", ["hours", "attendance", "days"])
def test_xlsx_holds_the_same_values_as_the_csv(program, tmp_path, kind):
    from openpyxl import load_workbook

    as_csv = list(csv.reader(io.StringIO(program(kind, "2026-03-01", "2026-03-15").stdout)))
    target = tmp_path / f"{kind}.xlsx"
    result = program(kind, "2026-03-01", "2026-03-15", "--format", "xlsx", "-o", str(target))
    assert result.exit_code == 0 and f"Wrote {len(as_csv) - 1} row(s)" in result.stderr
    book = load_workbook(target)
    sheet = book.active
    assert sheet.freeze_panes == "A2"
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert [str(v) for v in cells[0]] == as_csv[0]
    kinds = {column.name: column.kind for column in exports.COLUMNS[kind]}
    for xlsx_row, csv_row in zip(cells[1:], as_csv[1:], strict=True):
        for name, value, text in zip(as_csv[0], xlsx_row, csv_row, strict=True):
            if kinds[name] == "date":
                assert isinstance(value, datetime) and value.date().isoformat() == text
            elif kinds[name] == "time":
                assert (value.strftime("%H:%M") if value is not None else "") == text
                assert value is None or isinstance(value, time)
            elif kinds[name] in ("int", "hours"):
                assert isinstance(value, (int, float)) and f"{value:.2f}" == f"{float(text):.2f}"
            else:
                assert (value or "") == text


def test_a_file_is_written_whole_and_the_export_audited(program, app, tmp_path):
    target = tmp_path / "days.csv"
    result = program("days", "2026-03-01", "2026-03-15", "-o", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert target.read_text().splitlines() == [DAYS_HEADER] + EXPECTED_DAYS
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "export.days"))
    assert event.user_id is None
    assert event.detail == {"via": "cli", "first": "2026-03-01", "last": "2026-03-15", "format": "csv", "rows": 9}


def test_reversed_range_is_exit_1_with_one_line(program):
    result = program("hours", "2026-03-10", "2026-03-04")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == "Error: The range is reversed: 2026-03-10 is after 2026-03-04."


@pytest.mark.parametrize("options, message", [
    (["--from", "2020-01-01", "--to", "2023-01-01"], "at most 3 years"),
    (["--from", "2026-02-30", "--to", "2026-03-01"], "--from must be a date"),
    (["--from", "2026-03-01", "--to", "2026-03-02", "--format", "xlsx"], "XLSX needs a file"),
])
def test_other_user_errors_are_exit_1(runner, options, message):
    result = runner.invoke(args=["export", "attendance", *options])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output


def test_three_years_exactly_is_allowed(runner):
    assert runner.invoke(args=["export", "days", "--from", "2020-01-01", "--to", "2022-12-31"]).exit_code == 0


def test_an_unwritable_target_is_a_user_error(program, tmp_path):
    result = program("days", "2026-03-01", "2026-03-15", "-o", str(tmp_path / "no-such-folder" / "days.csv"))
    assert result.exit_code == 1 and "cannot be written" in result.stderr

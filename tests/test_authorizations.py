"""Authorizations through the public commands: `iop import authorizations` and `iop export utilization`,
over tests/helpers/exports_program.py's program (a DST week, an excused day, a 0-minute visit), every
figure worked out by hand below."""
from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import load_workbook

from helpers.world import local
from iop import clock

AUTHORIZATIONS = """client_id,payer,number,service,unit,units,start,end
C01,Aetna,A-100,H0015,day,2,2026-03-03,2026-03-20
C01,Aetna,A-101,90853,session,3,2026-03-01,2026-03-31
C02,Cigna,C-7,H0015,day,1,2026-03-05,2026-03-12
C04,Medicaid,M-1,90853,session,5,2026-03-08,2026-03-14
"""
HEADER = ("client_id,client_name,payer,number,service,unit,start,end,units_authorized,units_used,units_remaining,"
          "units_over,status,runs_out")

# The program's days (credited minutes; sessions with minutes):
#   C01: 03-02 180 (full), 03-04 155, 03-06 135, 03-09 180 (open check-out, to the end) + 90 = 270 (full, 2 sessions)
#   C02: 03-04 180 (full), 03-06 180 (full), 03-09 excused
#   C04: 03-08 60 (a Sunday, the day DST began), 03-10 10, 03-12 0 (came after the end: no session)
ON_MARCH_10 = [
    # 03-01..03-31, sessions up to 03-10: 03-02, 03-04, 03-06, 03-09 twice = 5 of 3: 2 over.
    "C01,Ana Lopez,Aetna,A-101,90853,session,2026-03-01,2026-03-31,3,3,0,2,over,",
    # 03-03..03-20, full days up to 03-10: 03-09 only. 1 left: expiring. Plan 3 days a week, groups Mon-Fri:
    # 03-09 counts for the week, so the next day at the pace is Wed 03-11.
    "C01,Ana Lopez,Aetna,A-100,H0015,day,2026-03-03,2026-03-20,2,1,1,0,expiring,2026-03-11",
    # 03-05..03-12: 03-06 is full (03-04 is before it, 03-09 excused): none left.
    "C02,Ben Okoro,Cigna,C-7,H0015,day,2026-03-05,2026-03-12,1,1,0,0,exhausted,",
    # 03-08 (60 min) and 03-10 (10 min) are sessions; ends in 4 days: expiring; the pace (TS-PM Mon-Thu) gives
    # 03-11 and 03-12 before the end: 1 unit left unused, so no date.
    "C04,Dev Shah,Medicaid,M-1,90853,session,2026-03-08,2026-03-14,5,2,3,0,expiring,",
]


def _import(runner, tmp_path, content, name="authorizations.csv"):
    path = tmp_path / name
    path.write_text(content)
    return runner.invoke(args=["import", "authorizations", str(path)])


def test_utilization_on_a_date_comes_from_the_attendance(program, runner, tmp_path):
    result = _import(runner, tmp_path, AUTHORIZATIONS)
    assert result.exit_code == 0, result.output
    assert "Imported 4 authorizations: 4 added, 0 updated, 0 already there." in result.output
    exported = runner.invoke(args=["export", "utilization", "--on", "2026-03-10"])
    assert exported.exit_code == 0, exported.output
    assert exported.output.splitlines() == [HEADER, *ON_MARCH_10]


def test_the_export_lists_authorizations_ended_in_the_30_days_before_its_date(program, runner, tmp_path):
    _import(runner, tmp_path, AUTHORIZATIONS)
    exported = runner.invoke(args=["export", "utilization", "--on", "2026-04-15"])
    # A-101 ended 03-31 and A-100 03-20 (within 30 days); C-7 (03-12) and M-1 (03-14) ended before 03-16.
    assert exported.output.splitlines() == [
        HEADER,
        "C01,Ana Lopez,Aetna,A-101,90853,session,2026-03-01,2026-03-31,3,3,0,2,over,",
        "C01,Ana Lopez,Aetna,A-100,H0015,day,2026-03-03,2026-03-20,2,1,1,0,expired,",
    ]
    before = runner.invoke(args=["export", "utilization", "--on", "2026-03-02"])
    # On 03-02: only A-101 has begun (1 session, 03-02); M-1, C-7 and A-100 start later.
    assert before.output.splitlines() == [
        HEADER, "C01,Ana Lopez,Aetna,A-101,90853,session,2026-03-01,2026-03-31,3,1,2,0,expiring,2026-03-04"]


def test_loading_the_same_file_again_adds_nothing_and_a_changed_row_updates(program, runner, tmp_path):
    _import(runner, tmp_path, AUTHORIZATIONS)
    again = _import(runner, tmp_path, AUTHORIZATIONS)
    assert "Imported 4 authorizations: 0 added, 0 updated, 4 already there." in again.output
    changed = _import(runner, tmp_path, AUTHORIZATIONS.replace("C-7,H0015,day,1,", "C-7,H0015,day,4,"))
    assert "0 added, 1 updated, 3 already there." in changed.output
    exported = runner.invoke(args=["export", "utilization", "--on", "2026-03-10"])
    assert "C02,Ben Okoro,Cigna,C-7,H0015,day,2026-03-05,2026-03-12,4,1,3,0,expiring," in exported.output


def test_bad_rows_are_refused_with_their_line_and_nothing_is_loaded(program, runner, tmp_path):
    bad = """client_id,payer,number,service,unit,units,start,end
C01,Aetna,A-1,H0015,day,20,2026-03-01,2026-03-31
C99,Aetna,A-2,H0015,day,20,2026-03-01,2026-03-31
C02,Aetna,A-3,H0015,week,20,2026-03-01,2026-03-31
C02,Aetna,A-4,S9480,day,0,2026-03-01,2026-03-31
C04,Aetna,A-5,H0015,day,5,2026-03-31,2026-03-01
C01,Aetna,A-6,H0015,day,5,2026-03-31,2026-04-30
C01,Aetna,A-7,90853,session,5,2026-04-01,2026-04-30
"""
    result = _import(runner, tmp_path, bad)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "line 3: unknown client_id 'C99'" in lines
    assert "line 4: unit 'week' must be day or session" in lines
    assert "line 5: units '0' must be a whole number from 1 to 9999" in lines
    assert "line 6: end 2026-03-01 is before start 2026-03-31" in lines
    assert any(line.startswith("line 7: these dates overlap line 2") for line in lines)
    assert not any(line.startswith(("line 2:", "line 8:")) for line in lines)
    assert "Nothing was imported: 5 rows with problems (of 7)." in result.output
    exported = runner.invoke(args=["export", "utilization", "--on", "2026-03-10"])
    assert exported.output.splitlines() == [HEADER]


def test_an_overlap_with_a_kept_authorization_of_the_same_service_is_refused(program, runner, tmp_path):
    _import(runner, tmp_path, AUTHORIZATIONS)
    result = _import(runner, tmp_path, "client_id,payer,number,service,unit,units,start,end\n"
                                       "C02,Cigna,C-8,H0015,day,5,2026-03-12,2026-03-30\n", "more.csv")
    assert result.exit_code == 1
    assert "line 2: these dates overlap authorization C-7 for H0015 (2026-03-05 to 2026-03-12)" in result.output
    moved = _import(runner, tmp_path, "client_id,payer,number,service,unit,units,start,end\n"
                                      "C02,Cigna,C-8,H0015,day,5,2026-03-13,2026-03-30\n"
                                      "C02,Cigna,C-7,H0015,day,1,2026-03-05,2026-03-11\n", "moved.csv")
    assert moved.exit_code == 0, moved.output


def test_the_utilization_export_as_xlsx_to_a_private_file(program, runner, tmp_path):
    _import(runner, tmp_path, AUTHORIZATIONS)
    target = tmp_path / "utilization.xlsx"
    result = runner.invoke(args=["export", "utilization", "--on", "2026-03-10", "--format", "xlsx", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o777 == 0o600
    sheet = load_workbook(target).active
    values = list(sheet.iter_rows(values_only=True))
    assert ",".join(values[0]) == HEADER
    assert values[2][:6] == ("C01", "Ana Lopez", "Aetna", "A-100", "H0015", "day")
    assert values[2][8:13] == (2, 1, 1, 0, "expiring")
    assert values[2][13].date() == date(2026, 3, 11)


def test_a_bad_date_is_one_line(program, runner):
    result = runner.invoke(args=["export", "utilization", "--on", "2026-13-01"])
    assert result.exit_code == 1
    assert "--on must be a date like 2026-03-02" in result.output


def test_the_export_is_audited(program, runner, tmp_path, app):
    from sqlalchemy import select

    from iop.store import db
    from iop.store.models import AuditEvent

    _import(runner, tmp_path, AUTHORIZATIONS)
    runner.invoke(args=["export", "utilization", "--on", "2026-03-10"])
    with app.app_context():
        event = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "export.utilization")).one()
        assert event.detail["rows"] == 4 and event.detail["last"] == "2026-03-10"


def test_attendance_modality_through_import_and_export(program, runner, tmp_path):
    path = tmp_path / "more.csv"
    path.write_text("client_id,group,date,check_in,check_out,status,modality\n"
                    "C01,RP-AM,2026-03-11,09:00,12:00,,telehealth\n"
                    "C02,RP-AM,2026-03-11,09:00,12:00,,\n")
    assert runner.invoke(args=["import", "attendance", str(path)]).exit_code == 0
    exported = runner.invoke(args=["export", "attendance", "--from", "2026-03-11", "--to", "2026-03-11"])
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert list(rows[0])[-1] == "modality"
    assert list(rows[0])[:11] == ["date", "client_id", "client_name", "group", "track", "module", "check_in",
                                  "check_out", "credited_minutes", "status", "source"]
    assert {(r["client_id"], r["modality"], r["credited_minutes"]) for r in rows} == {
        ("C01", "telehealth", "180"), ("C02", "in_person", "180")}


def test_an_unknown_modality_is_refused_and_nothing_loaded(program, runner, tmp_path):
    path = tmp_path / "more.csv"
    path.write_text("client_id,group,date,check_in,check_out,status,modality\n"
                    "C01,RP-AM,2026-03-11,09:00,12:00,,telehealth\n"
                    "C02,RP-AM,2026-03-11,09:00,12:00,,video\n")
    result = runner.invoke(args=["import", "attendance", str(path)])
    assert result.exit_code == 1
    assert "line 3: modality 'video' must be in_person, telehealth or empty" in result.output
    exported = runner.invoke(args=["export", "attendance", "--from", "2026-03-11", "--to", "2026-03-11"])
    assert len(exported.output.splitlines()) == 1


def test_uncovered_days_of_a_service_needing_authorization(program, runner, tmp_path, app):
    from iop.clinic import authorizations

    _import(runner, tmp_path, AUTHORIZATIONS)
    with app.app_context():
        found = authorizations.uncovered_days(date(2026, 3, 1), date(2026, 3, 31), clock.now())
    # H0015 (the default) by full days: C01's 03-02 is before A-100; C02's 03-04 is before C-7.
    assert [(u.client_id, u.day.isoformat(), u.service) for u in found] == [
        ("C01", "2026-03-02", "H0015"), ("C02", "2026-03-04", "H0015")]
    assert local(date(2026, 4, 1), 12) == clock.now()


def test_the_many_authorizations_statement_agrees_with_the_rule_for_one_client(program, runner, tmp_path, app):
    """The export counts units for every authorization in one SQL statement; the client page counts one
    client's day by day with iop.rules.authorizations.usage. On every date of March, they agree."""
    from datetime import timedelta

    from iop.clinic import authorizations
    from iop.store import authorization_queries

    _import(runner, tmp_path, AUTHORIZATIONS)
    with app.app_context():
        now = clock.now()
        for offset in range(0, 45):
            on = date(2026, 3, 1) + timedelta(days=offset)
            many = {row.record.id: (row.usage.counted, row.status, row.forecast)
                    for row in authorizations.utilization(date(2026, 3, 1), date(2026, 3, 31), on, now)}
            for client_key in {key for key in authorization_queries.clients_by_id(["C01", "C02", "C04"]).values()}:
                found = authorization_queries.authorizations_touching(date.min, date.max, [client_key])
                for row in authorizations._utilization(found, on, now, date.min, date.max, [client_key], detailed=True):
                    assert many[row.record.id] == (row.usage.counted, row.status, row.forecast), (on, row.record.number)


def test_the_services_needing_an_authorization_setting(tmp_path):
    import pytest

    from iop.config import ConfigError, finish, from_environment

    def settings(value):
        found = {"INSTANCE_PATH": str(tmp_path), "TIMEZONE": "America/New_York", "SCAN_RETENTION_DAYS": 90,
                 "OFFLINE_SCAN_MAX_AGE_HOURS": 12, "FHIR_SERVICE_CODE": "90853",
                 **from_environment({"IOP_INSTANCE_PATH": str(tmp_path), "IOP_SERVICES_NEEDING_AUTHORIZATION": value})}
        finish(found)
        return found["SERVICES_NEEDING_AUTHORIZATION_UNITS"]

    assert settings("H0015 90853") == {"H0015": "day", "90853": "session"}
    assert settings("") == {}
    with pytest.raises(ConfigError, match="IOP_SERVICES_NEEDING_AUTHORIZATION: unit 'week' must be day or session"):
        settings("H0015:week")

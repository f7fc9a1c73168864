"""The exports page (coordinators), its downloads and uploads, and the audit log page (admins)."""
from __future__ import annotations

import csv
import io
from datetime import date, time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpers.world import local
from iop.store import db
from iop.store.models import Attendance, AuditEvent, Group

GROUPS = ("code,name,track,room,weekdays,start,end\n"
          "RP-AM,Morning Relapse Prevention,relapse-prevention,Room B,Mon Wed Fri,09:00,12:00\n")


@pytest.fixture
def program(world, freeze):
    """One group, one client with a plan, two attendances in the week of 2026-03-02."""
    freeze(local(date(2026, 4, 1), 12))
    group = world.group(code="RP-AM", start=time(9), end=time(12))
    maria = world.client("C1", "Maria", "Gonzalez", groups=[group], plan_start=date(2026, 2, 2))
    for day, arrived in ((date(2026, 3, 2), 9), (date(2026, 3, 4), 10)):
        world.attendance(maria, world.session(group, day), local(day, arrived), local(day, 12))
    return maria


def sign_in(auth, role):
    auth.login(username=role, role=role)
    return auth.csrf("/coordinator/exports") if role != "facilitator" else auth.csrf()


def download(client, token, kind="days", fmt="csv", first="2026-03-01", last="2026-03-08"):
    return client.post(f"/coordinator/exports/{kind}",
                       data={"first": first, "last": last, "format": fmt, "csrf_token": token})


def audit_events(app, action):
    with app.app_context():
        return db.session().scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


# ---- exports -------------------------------------------------------------------------------

def test_the_page_offers_each_export_with_its_range(client, auth, program):
    sign_in(auth, "coordinator")
    page = client.get("/coordinator/exports")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for kind in ("hours", "attendance", "days"):
        assert f'formaction="/coordinator/exports/{kind}"' in html
    assert html.count('name="csrf_token"') >= 5  # the exports form, three imports, sign-out
    assert 'value="xlsx"' in html and 'enctype="multipart/form-data"' in html


def test_a_coordinator_downloads_csv_streamed_and_audited(client, auth, program, app):
    token = sign_in(auth, "coordinator")
    response = download(client, token)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert 'attachment; filename="days-2026-03-01-to-2026-03-08.csv"' == response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data(as_text=True).splitlines() == [
        "date,client_id,client_name,credited_minutes,sessions,full_day",
        "2026-03-02,C1,Maria Gonzalez,180,1,yes",
        "2026-03-04,C1,Maria Gonzalez,120,1,no",
    ]
    [event] = audit_events(app, "export.days")
    assert event.username == "coordinator"
    assert event.detail == {"via": "web", "first": "2026-03-01", "last": "2026-03-08", "format": "csv", "rows": 2}


def test_the_range_is_remembered(client, auth, program):
    token = sign_in(auth, "coordinator")
    download(client, token, first="2026-02-23", last="2026-03-15").get_data()
    html = client.get("/coordinator/exports").get_data(as_text=True)
    assert 'value="2026-02-23"' in html and 'value="2026-03-15"' in html


def test_xlsx_download_opens_in_openpyxl(client, auth, program, app):
    from openpyxl import load_workbook

    token = sign_in(auth, "coordinator")
    response = download(client, token, kind="hours", fmt="xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("client_id", "client_name", "week_start")
    # The range 2026-03-01 (a Sunday) to 2026-03-08 touches the weeks of 23 February and 2 March.
    assert [(row[0], row[2].date()) for row in rows[1:]] == [("C1", date(2026, 2, 23)), ("C1", date(2026, 3, 2))]
    assert rows[2][4:9] == (540, 300, 5.0, 2, "short")
    assert audit_events(app, "export.hours")[0].detail["format"] == "xlsx"


def test_a_bad_range_is_explained_on_the_page(client, auth, program, app):
    token = sign_in(auth, "coordinator")
    reversed_range = download(client, token, first="2026-03-08", last="2026-03-01")
    assert reversed_range.status_code == 400
    assert "The range is reversed" in reversed_range.get_data(as_text=True)
    not_a_date = download(client, token, first="soon", last="2026-03-01")
    assert not_a_date.status_code == 400 and "like 2026-03-02" in not_a_date.get_data(as_text=True)
    assert audit_events(app, "export.days") == []


def test_facilitators_may_not_export_or_import(client, auth, program, app):
    token = sign_in(auth, "facilitator")
    assert client.get("/coordinator/exports").status_code == 403
    assert download(client, token).status_code == 403
    upload = client.post("/coordinator/imports/groups", data={
        "csrf_token": token, "file": (io.BytesIO(GROUPS.encode()), "groups.csv")}, content_type="multipart/form-data")
    assert upload.status_code == 403
    assert audit_events(app, "export.days") == []


def test_signed_out_people_are_sent_to_sign_in(client, program):
    response = client.get("/coordinator/exports")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# ---- imports -------------------------------------------------------------------------------

def upload(client, token, kind, content: bytes, name="file.csv"):
    return client.post(f"/coordinator/imports/{kind}", data={"csrf_token": token, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def finished_job(client, response):
    """Follow an accepted upload to its job's page once the job has ended: (the page's html, its url)."""
    from iop.files import import_jobs

    assert response.status_code == 303, response.status_code
    url = response.headers["Location"]
    job_id = url.rsplit("/", 1)[1]
    assert import_jobs.wait(job_id, 120), "the import job did not end"
    page = client.get(url)
    assert page.status_code == 200
    return page.get_data(as_text=True), url


def test_an_upload_loads_and_says_what_it_did(client, auth, app, freeze):
    freeze(local(date(2026, 4, 1), 12))
    token = sign_in(auth, "coordinator")
    html, url = finished_job(client, upload(client, token, "groups", GROUPS.encode()))
    assert "Imported 1 group: 1 added" in html
    assert 'id="import-result"' in html and "<progress" not in html
    status = client.get(url + ".json").get_json()
    assert status["finished"] and status["status"] == "done" and status["percent"] == 100
    [event] = audit_events(app, "import.groups")
    assert event.username == "coordinator" and event.detail["via"] == "web"


def test_a_bad_upload_shows_each_line_and_loads_nothing(client, auth, app, program):
    token = sign_in(auth, "coordinator")
    content = ("client_id,group,date,check_in,check_out\n"
               "C1,RP-AM,2026-03-06,09:00,12:00\n"
               "C1,XX,2026-03-06,09:00,12:00\n"
               "C1,RP-AM,2026-03-09,12:00,09:00\n").encode()
    html, _url = finished_job(client, upload(client, token, "attendance", content))
    assert "Nothing was imported: 2 rows with problems (of 3)." in html
    assert "line 3: unknown group &#39;XX&#39;" in html
    assert "line 4: check_out 09:00 is before check_in 12:00" in html
    assert html.index('id="import-result"') < html.index("line 3:"), "the result comes first on the page"
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Attendance)) == 2
    [event] = audit_events(app, "import.failed")
    assert event.detail["via"] == "web" and event.detail["rows"] == 3 and event.detail["lines"] == 2
    assert event.detail["first"] == ["line 3: unknown_group", "line 4: check_out_before"]
    assert "XX" not in str(event.detail) and "C1" not in str(event.detail), "the audit quotes nothing of the file"


def test_every_problem_of_every_line_is_listed_up_to_fifty_with_the_total(client, auth, app, program):
    """A line with four problems shows four; past 50 problems the page says how many more, in how many lines."""
    token = sign_in(auth, "coordinator")
    four = "C404,XX,2026-02-30,09:00,12:00,late\n"  # unknown client, unknown group, no such date, bad status
    content = ("client_id,group,date,check_in,check_out,status\n" + four * 20).encode()
    html, _url = finished_job(client, upload(client, token, "attendance", content))
    assert "Nothing was imported: 20 rows with problems (of 20)." in html
    items = [line for line in html.split("<li>")[1:]]
    assert len(items) == 50
    line2 = [item for item in items if item.startswith("line 2:")]
    assert [item.split(":", 1)[1].split("<")[0].strip().split(" ")[0] for item in line2] == \
        ["unknown", "unknown", "date", "status"]
    # 20 lines x 4 = 80 problems; 50 shown (lines 2-13 whole, 2 of line 14's): 30 more on lines 14-21
    assert "and 30 more problems in 8 lines" in html


def test_the_job_page_shows_a_named_progress_bar_while_it_runs(client, auth, app):
    from iop.files import import_jobs
    from iop.store.models import ImportJob

    token = sign_in(auth, "coordinator")
    with app.app_context():
        with db.transaction() as s:
            s.add(ImportJob(id="a" * 32, kind="attendance", total=1000, done=500, status="checking", problems={}))
    html = client.get("/coordinator/imports/jobs/" + "a" * 32).get_data(as_text=True)
    assert '<progress id="import-progress" max="100" value="35" aria-label="Import progress">' in html
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in html, "refreshes itself without JS"
    assert "import_job.js" in html
    assert client.get("/coordinator/imports/jobs/" + "a" * 32 + ".json").get_json()["percent"] == 35
    assert client.get("/coordinator/imports/jobs/" + "b" * 32).status_code == 404
    assert client.get("/coordinator/imports/jobs/" + "b" * 32 + ".json").status_code == 404
    assert import_jobs.state("../../etc") is None
    del token


def test_a_job_whose_server_stopped_takes_its_rows_back(client, auth, app, program, freeze):
    """A load that stopped part-way (its process gone) is failed when looked at, and its rows removed."""
    from datetime import datetime, timezone

    from iop.store.models import ImportJob

    token = sign_in(auth, "coordinator")
    del token
    with app.app_context():
        s = db.session()
        before = s.scalar(select(func.count()).select_from(Attendance))
        first = s.scalar(select(func.max(Attendance.id)))
        stamp = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
        session_id = s.scalar(select(Attendance.session_id))
        client_key = s.scalar(select(Attendance.client_key))
        db.end_snapshot()
        with db.transaction() as t:
            t.add(ImportJob(id="c" * 32, kind="attendance", total=10, done=5, status="loading", problems={},
                            first_row_id=first, stamp=stamp, updated_at=stamp))
            t.add(Attendance(session_id=session_id, client_key=client_key, status="excused",
                             source="import", created_at=stamp, voided_at=stamp))
    html = client.get("/coordinator/imports/jobs/" + "c" * 32).get_data(as_text=True)
    assert "the import stopped before it finished" in html
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Attendance)) == before


def test_an_upload_without_csrf_is_refused(client, auth, app):
    sign_in(auth, "coordinator")
    response = client.post("/coordinator/imports/groups", data={"file": (io.BytesIO(GROUPS.encode()), "g.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Group)) == 0


def test_an_upload_too_large_is_refused_with_words(client, auth, app, monkeypatch):
    from iop.files import imports

    monkeypatch.setattr(imports, "UPLOAD_MAX_BYTES", 100)
    token = sign_in(auth, "coordinator")
    response = upload(client, token, "groups", GROUPS.encode() * 3)
    html = response.get_data(as_text=True)
    assert response.status_code == 413 and "iop import" in html
    assert html.index('id="import-result"') < html.index('id="exports-title"'), "the refusal is first on the page"
    [event] = audit_events(app, "import.failed")
    assert event.detail["reason"] == "too_large"
    assert not list((Path(app.instance_path) / "imports").glob("*")), "nothing of it is kept"


def test_a_non_utf8_upload_is_explained(client, auth, app):
    token = sign_in(auth, "coordinator")
    response = upload(client, token, "groups", GROUPS.replace("Morning", "Ma\xf1ana").encode("latin-1"))
    html, _url = finished_job(client, response)
    assert "line 2: this line holds bytes that are not UTF-8 text" in html


def test_a_binary_upload_is_not_shown(client, auth, app):
    token = sign_in(auth, "coordinator")
    garbage = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR secret-name-Lopez\n" * 50
    html, _url = finished_job(client, upload(client, token, "clients", garbage))
    assert "the file is not a CSV text file" in html and "Lopez" not in html and "IHDR" not in html


def test_no_file_chosen(client, auth):
    token = sign_in(auth, "coordinator")
    response = client.post("/coordinator/imports/groups", data={"csrf_token": token},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "choose a CSV file" in response.get_data(as_text=True)


# ---- the audit log -------------------------------------------------------------------------

@pytest.fixture
def history(app, auth, freeze):
    """Audit events from two people on two days, plus a command-line export."""
    from iop.clinic import audit
    from iop.store.models import StaffUser

    auth.make_user("dana", "facilitator")
    auth.make_user("casey", "coordinator")
    with app.app_context():
        s = db.session()
        dana = s.scalar(select(StaffUser).where(StaffUser.username == "dana"))
        casey = s.scalar(select(StaffUser).where(StaffUser.username == "casey"))
        for day, user, action in ((date(2026, 3, 2), dana, "client.viewed"), (date(2026, 3, 3), casey, "export.days"),
                                  (date(2026, 3, 3), dana, "attendance.corrected"), (date(2026, 3, 4), None, "export.hours")):
            freeze(local(day, 23, 30))  # late evening: the UTC date is the next day, the local date is this one
            with db.transaction():
                audit.record(action, target="client:abc", user=user, **({"via": "cli"} if user is None else {}))
    freeze(local(date(2026, 3, 5), 9))


def audit_rows(client, **query):
    response = client.get("/coordinator/audit", query_string=query)
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    return [action for action in ("client.viewed", "export.days", "attendance.corrected", "export.hours")
            if f'data-action="{action}"' in html], html


def test_the_audit_log_is_for_admins_only(client, auth, history):
    auth.login(username="casey", role="coordinator")
    assert client.get("/coordinator/audit").status_code == 403
    assert client.get("/coordinator/audit.csv").status_code == 403
    auth.logout()
    auth.login(username="dana")
    assert client.get("/coordinator/audit").status_code == 403


def test_the_audit_log_filters_by_user_action_and_local_dates(client, auth, history):
    auth.login(username="root", role="admin")
    every, html = audit_rows(client)
    assert every == ["client.viewed", "export.days", "attendance.corrected", "export.hours"]
    assert html.index('data-action="export.hours') < html.index('data-action="client.viewed'), "newest first"
    assert audit_rows(client, user="dana")[0] == ["client.viewed", "attendance.corrected"]
    assert audit_rows(client, user="-")[0] == ["export.hours"]
    assert "Command line" in audit_rows(client, user="-")[1]
    assert audit_rows(client, action="export.days")[0] == ["export.days"]
    assert audit_rows(client, first="2026-03-03", last="2026-03-03")[0] == ["export.days", "attendance.corrected"]
    assert audit_rows(client, user="dana", first="2026-03-03")[0] == ["attendance.corrected"]


def test_a_bad_audit_filter_is_explained(client, auth, history):
    auth.login(username="root", role="admin")
    response = client.get("/coordinator/audit", query_string={"first": "yesterday"})
    assert response.status_code == 400 and "Dates must look like 2026-03-02." in response.get_data(as_text=True)


def test_the_audit_log_pages_newest_first(client, auth, app, freeze):
    from iop.clinic import audit

    freeze(local(date(2026, 3, 5), 9))
    auth.login(username="root", role="admin")
    with app.app_context():
        with db.transaction():
            for number in range(120):
                audit.record("client.viewed", target=f"client:n{number:03d}")
    first = client.get("/coordinator/audit", query_string={"action": "client.viewed"}).get_data(as_text=True)
    assert "client:n119" in first and "client:n070" in first and "client:n069" not in first
    assert "Older" in first and "Newer" not in first
    third = client.get("/coordinator/audit", query_string={"action": "client.viewed", "page": 3}).get_data(as_text=True)
    assert "client:n019" in third and "client:n000" in third and "client:n020" not in third
    assert "Older" not in third and "Newer" in third


def test_the_audit_log_downloads_as_csv_and_that_is_audited(client, auth, history, app):
    auth.login(username="root", role="admin")
    response = client.get("/coordinator/audit.csv", query_string={"user": "dana"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["at", "username", "action", "target", "detail", "who", "what", "about"]
    assert [(row[1], row[2]) for row in rows[1:]] == [("dana", "attendance.corrected"), ("dana", "client.viewed")]
    assert rows[2][0] == "2026-03-02T23:30:00-05:00"
    [event] = audit_events(app, "audit.export")
    assert event.username == "root" and event.detail == {"filters": {"user": "dana"}, "rows": 2}

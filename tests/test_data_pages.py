"""The exports page (coordinators), its downloads and uploads, and the audit log page (admins)."""
from __future__ import annotations

import csv
import io
from datetime import date, time

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


def test_an_upload_loads_and_says_what_it_did(client, auth, app, freeze):
    freeze(local(date(2026, 4, 1), 12))
    token = sign_in(auth, "coordinator")
    response = upload(client, token, "groups", GROUPS.encode())
    assert response.status_code == 302
    assert "Imported 1 group: 1 added" in client.get("/coordinator/exports").get_data(as_text=True)
    [event] = audit_events(app, "import.groups")
    assert event.username == "coordinator" and event.detail["via"] == "web"


def test_a_bad_upload_shows_each_line_and_loads_nothing(client, auth, app, program):
    token = sign_in(auth, "coordinator")
    content = ("client_id,group,date,check_in,check_out\n"
               "C1,RP-AM,2026-03-06,09:00,12:00\n"
               "C1,XX,2026-03-06,09:00,12:00\n"
               "C1,RP-AM,2026-03-09,12:00,09:00\n").encode()
    response = upload(client, token, "attendance", content)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing was imported: 2 rows with problems (of 3)." in html
    assert "line 3: unknown group &#39;XX&#39;" in html
    assert "line 4: check_out 09:00 is before check_in 12:00" in html
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Attendance)) == 2


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
    assert response.status_code == 413 and "iop import" in response.get_data(as_text=True)


def test_a_non_utf8_upload_is_explained(client, auth, app):
    token = sign_in(auth, "coordinator")
    response = upload(client, token, "groups", GROUPS.replace("Morning", "Ma\xf1ana").encode("latin-1"))
    assert response.status_code == 400
    assert "line 2: this line holds bytes that are not UTF-8 text" in response.get_data(as_text=True)


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

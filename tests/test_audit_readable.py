"""An audit log a reviewer can read: views of pages that list names are recorded (week board, client
list, cards, a group's control page and its summary), as are failed sign-ins and account changes; the
admin's audit page shows who by name, what in words and what it was about by its name, with filters
(who, what, dates, about), and its CSV carries the same words beside the codes."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import date

import pytest
from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from helpers.world import local
from iop.store import db
from iop.store.models import AuditEvent

ROW = re.compile(r'<tr data-action="([^"]+)">\s*<td><time[^>]*>[^<]*</time></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>'
                 r'\s*<td>(.*?)</td>', re.S)


def rows(page: str) -> list[tuple[str, str, str, str]]:
    strip = lambda text: html.unescape(re.sub(r"<[^>]+>", "", text).strip())  # noqa: E731
    return [(action, strip(who), strip(what), strip(about)) for action, who, what, about in ROW.findall(page)]


@pytest.fixture
def clinic(app, world, auth, freeze):
    freeze(local(date(2026, 3, 4), 9, 20))
    auth.make_user("dana", "coordinator", name="Dana Reyes")
    group = world.group(code="RP-AM", weekdays="Mon Tue Wed Thu Fri")
    maria = world.client("C1001", "Maria", "Gonzalez", groups=["RP-AM"], plan_start=date(2026, 2, 2))
    group_session = world.session("RP-AM", date(2026, 3, 4))
    return group, maria, group_session


def events(app, action):
    with app.app_context():
        return db.session().scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_pages_that_list_names_are_audited(app, clinic):
    _group, maria, group_session = clinic
    dana = app.test_client()
    AuthActions(dana, app).login("dana", create=False)
    for path in ("/coordinator/", "/coordinator/?week=2026-02-23", "/coordinator/clients?status=all",
                 "/coordinator/cards", f"/facilitator/sessions/{group_session.id}",
                 f"/facilitator/sessions/{group_session.id}/summary", f"/coordinator/clients/{maria.public_id}"):
        assert dana.get(path).status_code == 200, path
    board = events(app, "board.view")
    assert [(e.username, e.target, e.detail["week"], e.detail["rows"]) for e in board] == [
        ("dana", "board", "2026-03-02", 1), ("dana", "board", "2026-02-23", 1)]
    assert [(e.detail["status"], e.detail["rows"]) for e in events(app, "clients.view")] == [("all", 1)]
    assert [e.detail["rows"] for e in events(app, "cards.view")] == [1]
    for action in ("session.control_view", "session.summary_view"):
        assert [e.target for e in events(app, action)] == [f"session:{group_session.id}"], action
    assert [e.target for e in events(app, "client.view")] == [f"client:{maria.public_id}"]
    assert not any("Maria" in str(e.detail) for e in board)  # names stay out of the events themselves


def test_the_audit_page_reads_as_sentences(app, clinic, runner, tmp_path):
    _group, maria, group_session = clinic
    dana = app.test_client()
    AuthActions(dana, app).login("dana", create=False)
    dana.get("/coordinator/")
    dana.get(f"/coordinator/clients/{maria.public_id}")
    dana.get(f"/facilitator/sessions/{group_session.id}/summary")
    token = csrf_from(dana.get("/coordinator/exports").get_data(as_text=True))
    dana.post("/coordinator/exports/attendance", data={"csrf_token": token, "first": "2026-03-02",
                                                        "last": "2026-03-04", "format": "csv"}).get_data()
    AuthActions(app.test_client(), app).login("dana", "not the password", create=False)
    runner.invoke(args=["export", "hours", "--from", "2026-03-02", "--to", "2026-03-04", "--format", "xlsx",
                        "-o", str(tmp_path / "hours.xlsx")])
    admin = app.test_client()
    AuthActions(admin, app).login("root", role="admin")
    html = admin.get("/coordinator/audit").get_data(as_text=True)
    seen = rows(html)
    assert ("staff.sign_in", "Dana Reyes", "Signed in", "Dana Reyes") in seen
    assert ("board.view", "Dana Reyes", "Viewed the week board", "The week board") in seen
    assert ("client.view", "Dana Reyes", "Viewed a client's page", "Maria Gonzalez (C1001)") in seen
    assert ("session.summary_view", "Dana Reyes", "Viewed a session summary", "RP-AM on 2026-03-04") in seen
    assert ("export.attendance", "Dana Reyes", "Exported attendance (CSV)", "Export of attendance") in seen
    assert ("export.hours", "Command line", "Exported weekly hours (XLSX)", "Export of weekly hours") in seen
    assert ("staff.sign_in_failed", "Someone signing in", "Sign-in failed", "Dana Reyes") in seen
    assert "username tried: dana" in html and "not the password" not in html

    # Filters: everything about Maria (the target's link), then by who and by what, in words.
    about = re.search(r'href="([^"]*target=client[^"]*)"', html).group(1).replace("&amp;", "&")
    maria_rows = rows(admin.get(about).get_data(as_text=True))
    assert {r[3] for r in maria_rows} == {"Maria Gonzalez (C1001)"} and maria_rows
    assert {r[1] for r in rows(admin.get("/coordinator/audit?user=dana").get_data(as_text=True))} == {"Dana Reyes"}
    options = admin.get("/coordinator/audit").get_data(as_text=True)
    assert '<option value="board.view" >Viewed the week board</option>' in options
    assert '<option value="dana" >Dana Reyes (dana)</option>' in options


def test_deactivated_staff_keep_their_names_in_the_log(app, clinic, runner):
    dana = app.test_client()
    AuthActions(dana, app).login("dana", create=False)
    dana.get("/coordinator/")
    runner.invoke(args=["user", "add", "root", "--role", "admin", "--password-stdin"], input="correct horse battery\n")
    assert runner.invoke(args=["user", "deactivate", "dana"]).exit_code == 0
    admin = app.test_client()
    AuthActions(admin, app).login("root", "correct horse battery", create=False)
    seen = rows(admin.get("/coordinator/audit").get_data(as_text=True))
    assert ("board.view", "Dana Reyes", "Viewed the week board", "The week board") in seen
    assert ("staff.deactivated", "Command line", "Deactivated a staff member", "Dana Reyes") in seen


def test_the_csv_carries_the_words_beside_the_codes(app, clinic):
    _group, maria, _session = clinic
    dana = app.test_client()
    AuthActions(dana, app).login("dana", create=False)
    dana.get(f"/coordinator/clients/{maria.public_id}")
    admin = app.test_client()
    AuthActions(admin, app).login("root", role="admin")
    response = admin.get("/coordinator/audit.csv", query_string={"action": "client.view"})
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["username"], r["action"], r["who"], r["what"], r["about"]) for r in table] == [
        ("dana", "client.view", "Dana Reyes", "Viewed a client's page", "Maria Gonzalez (C1001)")]

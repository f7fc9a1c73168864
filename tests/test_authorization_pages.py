"""The coordinator's pages for authorizations: added and changed on the client page (audited, overlaps
refused in words), the utilization page with its filters, the board's marks, and the export on the
Exports page."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from helpers.world import local
from iop.store import db
from iop.store.models import AuditEvent, Authorization

MONDAY = date(2026, 3, 2)


def _coordinator(app):
    http = app.test_client()
    AuthActions(http, app).login("cora", role="coordinator")
    return http


def _scene(app, world, freeze):
    """Maria in RP-AM (Mon Wed Fri 9-12) on a 3-day plan from 2026-03-02; full days Mon and Wed of that
    week; the clock at noon on Friday 2026-03-06."""
    freeze(local(MONDAY + timedelta(days=4), 12))
    world.group()
    maria = world.client("C1", groups=["RP-AM"], plan_start=MONDAY, weekly_hours=9, days=3)
    for offset in (0, 2):
        day = MONDAY + timedelta(days=offset)
        world.attendance(maria, world.session("RP-AM", day, status="closed"), local(day, 9), local(day, 12))
    return maria


def _form(http, path, **values):
    token = csrf_from(http.get(path).get_data(as_text=True))
    return http.post(path, data={"csrf_token": token, **values})


GOOD = dict(payer="Aetna", number="A-1", service="h0015", unit="day", units="3", start="2026-03-03",
            end="2026-03-31", note="")


def test_an_authorization_is_added_and_changed_on_the_client_page(app, world, freeze):
    maria = _scene(app, world, freeze)
    http = _coordinator(app)
    page = f"/coordinator/clients/{maria.public_id}"
    added = _form(http, page + "/authorizations/new", **GOOD)
    assert added.status_code == 302
    shown = http.get(page).get_data(as_text=True)
    # Full days inside 03-03..03-31 up to Friday: Wed 03-04 only (Mon 03-02 is before it). 2 left: expiring.
    assert "A-1" in shown and "1 of 3" in shown and "Expiring" in shown
    # The pace counts from tomorrow (Saturday): 3 days a week on Mon Wed Fri, so Mon 03-09 and Wed 03-11.
    assert "Runs out Mar 11, 20 days before it ends." in shown
    # Mon 03-02 was a full day no H0015 authorization covers.
    assert "Days without an authorization" in shown and "2026-03-02 · H0015" in shown
    with app.app_context():
        record = db.session().scalars(select(Authorization)).one()
        assert (record.service, record.units) == ("H0015", 3)
        edit = f"{page}/authorizations/{record.id}/edit"
    changed = _form(http, edit, **{**GOOD, "units": "1"})
    assert changed.status_code == 302
    assert "Exhausted" in http.get(page).get_data(as_text=True)
    with app.app_context():
        trail = [(e.action, e.detail.get("fields")) for e in db.session().scalars(
            select(AuditEvent).where(AuditEvent.action.like("authorization.%")).order_by(AuditEvent.id))]
    assert trail == [("authorization.created", None), ("authorization.updated", ["units"])]


def test_bad_values_and_overlaps_are_refused_on_the_page(app, world, freeze):
    maria = _scene(app, world, freeze)
    http = _coordinator(app)
    path = f"/coordinator/clients/{maria.public_id}/authorizations/new"
    assert _form(http, path, **GOOD).status_code == 302
    refused = _form(http, path, **{**GOOD, "number": "A-2", "start": "2026-03-31", "end": "2026-04-30"})
    assert refused.status_code == 400
    assert "These dates overlap authorization A-1 for H0015 (2026-03-03 to 2026-03-31)" in refused.get_data(as_text=True)
    for values, words in (({"unit": "week"}, "The unit must be day or session."),
                          ({"units": "0"}, "The units authorized must be a whole number from 1 to 9999."),
                          ({"end": "2026-03-01"}, "The end date is before the start date.")):
        answer = _form(http, path, **{**GOOD, "number": "A-3", "start": "2026-04-01", "end": "2026-04-30", **values})
        assert answer.status_code == 400 and words in answer.get_data(as_text=True), words
    other_service = _form(http, path, **{**GOOD, "number": "B-1", "service": "90853", "unit": "session"})
    assert other_service.status_code == 302  # another service may share the dates
    with app.app_context():
        assert db.session().scalar(select(Authorization.id).where(Authorization.number == "A-3")) is None


def test_the_utilization_page_filters_and_is_audited(app, world, freeze):
    maria = _scene(app, world, freeze)
    james = world.client("C2", "James", "Whitfield", groups=["RP-AM"], plan_start=MONDAY)
    http = _coordinator(app)
    _form(http, f"/coordinator/clients/{maria.public_id}/authorizations/new", **GOOD)
    _form(http, f"/coordinator/clients/{james.public_id}/authorizations/new",
          **{**GOOD, "payer": "Cigna", "number": "C-9", "units": "20"})
    def table(query=""):  # the authorizations' table, not the list of days without one below it
        return http.get("/coordinator/utilization" + query).get_data(as_text=True).split('id="uncovered-title"')[0]

    page = table()
    assert "Maria Gonzalez" in page and "James Whitfield" in page
    only_cigna = table("?payer=Cigna")
    assert "James Whitfield" in only_cigna and "Maria Gonzalez</a>" not in only_cigna
    expiring = table("?status=expiring")
    assert "Maria Gonzalez</a>" in expiring and "James Whitfield</a>" not in expiring
    assert http.get("/coordinator/utilization?first=2026-04-01&last=2026-03-01").status_code == 400
    with app.app_context():
        views = [e.detail for e in db.session().scalars(select(AuditEvent).where(AuditEvent.action == "utilization.view"))]
    assert len(views) == 4 and views[1]["payer"] == "Cigna" and views[2]["status"] == "expiring"


def test_the_utilization_page_sorts_and_pages_on_the_server(app, world, freeze, monkeypatch):
    """All the authorizations are sorted before a page is cut (not the page alone), and every sort and
    page link keeps the range and filters; an order the page does not know falls back to the client's."""
    import re

    from iop.clinic import authorizations

    monkeypatch.setattr(authorizations, "PAGE_SIZE", 2)
    maria = _scene(app, world, freeze)  # 1 of 3 used: 2 left
    james = world.client("C2", "James", "Whitfield", groups=["RP-AM"], plan_start=MONDAY)  # 20 left
    ana = world.client("C3", "Ana", "Reyes", groups=["RP-AM"], plan_start=MONDAY)  # 10 left
    http = _coordinator(app)
    for client, values in ((maria, {}), (james, {"payer": "Cigna", "number": "C-9", "units": "20"}),
                           (ana, {"number": "A-7", "units": "10"})):
        _form(http, f"/coordinator/clients/{client.public_id}/authorizations/new", **{**GOOD, **values})

    def shown(query):
        page = http.get("/coordinator/utilization" + query).get_data(as_text=True).split('id="uncovered-title"')[0]
        return re.findall(r'#authorizations-title">([^<]+)</a>', page), page

    assert shown("")[0] == ["Maria Gonzalez", "James Whitfield"]  # by client ID, two a page
    assert shown("?page=2")[0] == ["Ana Reyes"]
    assert shown("?sort=left")[0] == ["Maria Gonzalez", "Ana Reyes"]
    assert shown("?sort=left&page=2")[0] == ["James Whitfield"]
    names, page = shown("?sort=left&order=desc&first=2026-03-01&last=2026-03-31")
    assert names == ["James Whitfield", "Ana Reyes"]
    assert "Authorizations 1–2 of <strong>3</strong>, by left descending (page 1 of 2)." in page
    assert '<th scope="col" class="num" aria-sort="descending"><a class="sort" href="/coordinator/utilization?' \
           'sort=left&amp;order=asc&amp;first=2026-03-01&amp;last=2026-03-31">Left' in page  # again: the other way
    assert 'aria-current="page" href="/coordinator/utilization?page=1&amp;first=2026-03-01&amp;last=2026-03-31' \
           '&amp;sort=left&amp;order=desc"' in page
    assert 'rel="next" href="/coordinator/utilization?page=2&amp;first=2026-03-01&amp;last=2026-03-31' \
           '&amp;sort=left&amp;order=desc"' in page
    assert shown("?sort=left&order=desc&page=2")[0] == ["Maria Gonzalez"]
    assert shown("?sort=left&order=desc&page=99")[0] == ["Maria Gonzalez"]  # past the end: the last page
    names, page = shown("?payer=Aetna&sort=payer&order=desc")
    assert names == ["Ana Reyes", "Maria Gonzalez"]  # Aetna A-7, then Aetna A-1: by payer, then number
    assert 'aria-label="Pages of authorizations"' not in page
    assert shown("?sort=last_name&order=sideways")[0] == ["Maria Gonzalez", "James Whitfield"]
    assert shown("?sort=status")[0] == ["Maria Gonzalez", "James Whitfield"]  # expiring before active
    with app.app_context():
        views = [e.detail for e in db.session().scalars(select(AuditEvent).where(AuditEvent.action == "utilization.view"))]
    assert (views[3]["sort"], views[3]["order"], views[3]["page"], views[3]["rows"], views[3]["total"]) == \
        ("left", "asc", 2, 1, 3)


def test_the_board_marks_a_client_whose_authorization_is_expiring(app, world, freeze):
    maria = _scene(app, world, freeze)
    http = _coordinator(app)
    board = http.get("/coordinator/").get_data(as_text=True)
    assert f'data-client="{maria.public_id}"' in board and "/coordinator/authorization-marks?week=2026-03-02" in board
    before = http.get("/coordinator/authorization-marks?week=2026-03-02").get_json()["marks"]
    assert [m["words"] for m in before[maria.public_id]] == ["Day without authorization"]  # H0015 needs one
    _form(http, f"/coordinator/clients/{maria.public_id}/authorizations/new", **GOOD)
    marks = http.get("/coordinator/authorization-marks?week=2026-03-02").get_json()["marks"]
    assert [m["words"] for m in marks[maria.public_id]] == ["Authorization expiring", "Day without authorization"]
    assert http.get("/coordinator/authorization-marks?week=someday").status_code == 400
    # The board of one group fetches only its members' marks.
    assert "/coordinator/authorization-marks?week=2026-03-02&amp;group=RP-AM" in \
        http.get("/coordinator/?group=RP-AM").get_data(as_text=True)
    in_group = http.get("/coordinator/authorization-marks?week=2026-03-02&group=RP-AM").get_json()["marks"]
    assert in_group == marks
    assert http.get("/coordinator/authorization-marks?week=2026-03-02&group=NOPE").get_json()["marks"] == {}


def test_the_utilization_export_on_the_exports_page(app, world, freeze):
    maria = _scene(app, world, freeze)
    http = _coordinator(app)
    _form(http, f"/coordinator/clients/{maria.public_id}/authorizations/new", **GOOD)
    answer = _form(http, "/coordinator/exports/utilization", on="2026-03-06", format="csv")
    assert answer.status_code == 200
    assert 'filename="utilization-on-2026-03-06.csv"' in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows == [
        ["client_id", "client_name", "payer", "number", "service", "unit", "start", "end", "units_authorized",
         "units_used", "units_remaining", "units_over", "status", "runs_out"],
        ["C1", "Maria Gonzalez", "Aetna", "A-1", "H0015", "day", "2026-03-03", "2026-03-31", "3", "1", "2", "0",
         "expiring", "2026-03-11"]]
    with app.app_context():
        event = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "export.utilization")).one()
        assert event.detail["via"] == "web" and event.detail["rows"] == 1

"""The coordinator's week board and client page, over HTTP, as a coordinator sees them."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from iop.store import db
from iop.store.models import AuditEvent

NY = ZoneInfo("America/New_York")
MON = date(2026, 3, 2)
WED, FRI = MON + timedelta(days=2), MON + timedelta(days=4)
NOW = datetime(2026, 3, 4, 13, 0, tzinfo=NY)  # Wednesday 13:00: Monday and Wednesday are over


def at(day, hhmm):
    hour, minute = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


@pytest.fixture
def program(world, freeze):
    """RP-AM (Mon/Wed/Fri, 9 h plans) and TS-PM (Tue/Thu evenings, 6 h, level 2.5 for one client)."""
    freeze(NOW)
    world.group("RP-AM")
    world.group("TS-PM", name="Evening", track="twelve-step", weekdays="Tue Thu", start=time(18), end=time(21))
    mon, wed = world.session("RP-AM", MON, status="closed"), world.session("RP-AM", WED, status="closed")
    tue = world.session("TS-PM", MON + timedelta(days=1), status="closed")
    start = date(2026, 2, 2)
    people = {
        # 360 so far, Friday's 180 reaches 540: on track
        "ontrack": world.client("C100", "Olivia", "Tran", groups=["RP-AM"], plan_start=start),
        # 180 so far, at most 360: at risk
        "risk": world.client("C200", "Ray", "Iverson", groups=["RP-AM"], plan_start=start),
        # 6 h evening plan, Tuesday 180 + Thursday 180 to come: on track; level 2.5 for the filter
        "evening": world.client("C300", "Eve", "Ng", groups=["TS-PM"], plan_start=start, weekly_hours=6, days=2,
                                level="2.5"),
        # a 1 h 30 plan already met
        "met": world.client("C400", "Mel", "Ortiz", groups=["RP-AM"], plan_start=start, weekly_hours=1.5, days=1),
        # discharged: never on the board
        "gone": world.client("C500", "Gus", "Hart", groups=["RP-AM"], plan_start=start, status="discharged"),
        # no plan this week and no attendance: not on the board
        "later": world.client("C600", "Lee", "Park", groups=["RP-AM"], plan_start=MON + timedelta(weeks=3)),
    }
    world.attendance(people["ontrack"], mon, at(MON, "08:55"), at(MON, "12:00"))
    world.attendance(people["ontrack"], wed, at(WED, "09:00"), at(WED, "12:05"))
    world.attendance(people["risk"], mon, at(MON, "09:20"), at(MON, "12:00"))   # late: 160
    world.attendance(people["risk"], wed, at(WED, "09:00"), at(WED, "09:20"), )   # 20 more
    world.attendance(people["evening"], tue, at(MON + timedelta(days=1), "18:00"), at(MON + timedelta(days=1), "21:00"))
    world.attendance(people["met"], mon, at(MON, "09:00"), at(MON, "12:00"))
    world.attendance(people["gone"], mon, at(MON, "09:00"), at(MON, "12:00"))
    return people


@pytest.fixture
def desk(auth, client):
    auth.login("cora", role="coordinator")
    return client


def board_rows(html: str) -> list[str]:
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("</tr>")[:-1]]


def test_the_board_lists_active_clients_at_risk_first(program, desk):
    page = desk.get("/coordinator/").get_data(as_text=True)
    assert re.search(r"<h1>\s*This week\s*</h1>", page)
    rows = board_rows(page)
    # at risk first; then on track with the least done first (3 of 6 h before 6 of 9 h); then met
    assert [row.split()[2] for row in rows] == ["C200", "C300", "C100", "C400"]
    risk, evening, ontrack, met = rows
    assert "Ray I." in risk and "3 h 00" in risk and "9 h 00" in risk and "At risk" in risk  # 160 + 20
    assert "6 h 05" not in ontrack and "6 h 00" in ontrack and "On track" in ontrack
    assert "Met" in met and "1 h 30" in met
    assert "Gus" not in page and "Lee" not in page and "Hart" not in page
    assert "Iverson" not in page  # the board shows display names only


def test_statuses_are_words_and_icons_not_colour_alone(program, desk):
    page = desk.get("/coordinator/").get_data(as_text=True)
    assert re.search(r'class="badge at_risk"><span aria-hidden="true">!</span> At risk', page)
    assert re.search(r'class="badge met"><span aria-hidden="true">✓</span> Met', page)
    assert 'role="img" aria-label="3 h 00 of 9 h 00"' in page  # the bar says what it shows


def test_links_use_the_opaque_id_never_the_program_id(program, desk):
    page = desk.get("/coordinator/").get_data(as_text=True)
    links = re.findall(r'href="(/coordinator/clients/[^"]+)"', page)
    assert f"/coordinator/clients/{program['risk'].public_id}" in links
    assert not any("C200" in link for link in links)


def test_the_week_picker_shows_any_week(program, desk):
    page = desk.get("/coordinator/?week=2026-03-05").get_data(as_text=True)  # any day picks its week
    assert re.search(r"<h1>\s*This week\s*</h1>", page)
    page = desk.get("/coordinator/?week=2026-03-10").get_data(as_text=True)
    assert "Week of 9 March 2026" in page and "This week</a>" in page
    assert "No active client has a plan this week" not in page  # plans run on: everyone planned is there
    rows = board_rows(page)
    assert all("0 h 00" in row for row in rows)
    page = desk.get("/coordinator/?week=2026-02-23").get_data(as_text=True)
    assert all("Short" in row for row in board_rows(page))  # a past week with nothing attended
    page = desk.get("/coordinator/?week=2026-3-2x")
    assert page.status_code == 200 and "could not be read" in page.get_data(as_text=True)


def test_filters_by_group_and_level(program, desk):
    rows = board_rows(desk.get("/coordinator/?group=TS-PM").get_data(as_text=True))
    assert [row.split()[2] for row in rows] == ["C300"]
    rows = board_rows(desk.get("/coordinator/?level=2.1").get_data(as_text=True))
    assert [row.split()[2] for row in rows] == ["C200", "C100", "C400"]
    page = desk.get("/coordinator/?level=1").get_data(as_text=True)
    assert "No active client has a plan this week or attended in it with these filters" in page


def test_facilitators_get_403_and_strangers_sign_in(program, auth, client):
    assert client.get("/coordinator/").status_code == 302
    auth.login("fran", role="facilitator")
    assert client.get("/coordinator/").status_code == 403
    assert client.get(f"/coordinator/clients/{program['risk'].public_id}").status_code == 403


def test_the_client_page_is_audited_and_shows_the_week(app, program, desk):
    person = program["risk"]
    response = desk.get(f"/coordinator/clients/{person.public_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ray Iverson" in page and "C200" in page
    assert "3 h 00</strong> of 9 h 00" in page
    # attendance: date, group, in/out, credited minutes, late flag
    assert re.search(r"Mon 2026-03-02</td>\s*<td>RP-AM</td>\s*<td>09:20</td>\s*<td>12:00</td>\s*"
                     r'<td class="num">2 h 40</td>', page)
    assert "Late" in page and "Left early" in page
    assert "<svg" in page and "Week of 2026-03-02: 3 h 00 of 9 h 00 (At risk)" in page
    assert 'id="modules-title"' in page
    with app.app_context():
        views = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "client.view")).all()
    assert [(v.target, v.username) for v in views] == [(f"client:{person.public_id}", "cora")]


def test_the_client_page_of_an_unknown_id_is_404(program, desk):
    response = desk.get("/coordinator/clients/not-a-real-id")
    assert response.status_code == 404 and "There is nothing here." in response.get_data(as_text=True)


def test_modules_section_lists_had_and_not_had(app, world, desk, freeze):
    """The client had the module of a session they sat through; the rest of the track is to make up."""
    from curriculum.catalog import catalog

    freeze(NOW)
    world.group("RP-AM")
    modules = catalog().track_modules("relapse-prevention")
    assert modules, "the relapse-prevention track has modules"
    group_session = world.session("RP-AM", MON, status="closed", module_id=modules[0].id)
    person = world.client("C1", groups=["RP-AM"], plan_start=MON)
    world.attendance(person, group_session, at(MON, "09:00"), at(MON, "12:00"))
    page = desk.get(f"/coordinator/clients/{person.public_id}").get_data(as_text=True)
    section = page[page.index('id="modules-title"'):]
    had, to_make_up = section.split("Still to make up")
    assert modules[0].title in had and "Had (1)" in had
    assert modules[1].title in to_make_up and f"({len(modules) - 1})" in to_make_up


def test_the_board_links_to_exports(program, desk):
    page = desk.get("/coordinator/").get_data(as_text=True)
    assert 'href="/coordinator/exports"' in page


def test_the_weekly_chart_scales_in_three_hour_steps():
    """The client page's chart (coordinator/chart.py, pure): bars proportional to the hours on a scale
    of whole 3-hour steps, a target mark only for weeks with a target."""
    from coordinator.chart import weekly_chart
    from iop.rules.hours import WeekFigures

    weeks = [WeekFigures(1, MON, "2.1", 540, 270, 2, "short"), WeekFigures(1, MON + timedelta(weeks=1), "", 0, 600, 3,
                                                                             "no_plan")]
    chart = weekly_chart(weeks)
    assert [tick["label"] for tick in chart["ticks"]] == ["0 h", "3 h", "6 h", "9 h", "12 h"]  # 600 min: up to 12 h
    first, second = chart["bars"]
    assert first["h"] == round(180 * 270 / 720) and second["h"] == round(180 * 600 / 720)
    assert first["target_y"] == chart["height"] - round(180 * 540 / 720) and second["target_y"] is None
    assert second["x"] - first["x"] == chart["bar_width"] + 16 and first["week"] is weeks[0]

"""A coordinator in a real browser: the week's board, sorting a column, opening a client's page; a refused form
showing each problem beside its box."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from helpers.a11y import assert_accessible, tab_through
from helpers.web import browser_sign_in
from iop import clock
from iop.clock import local_date
from iop.rules.hours import week_start
from iop.store import db
from iop.store.models import Plan

pytestmark = pytest.mark.browser


def three_clients_this_week(world, app):
    """Zoe Adams C300 (3 h), Abe Young C100 (1 h), Mia Lopez C200 (2 h) in this week's group."""
    tz = app.config["PROGRAM_TZ"]
    monday = week_start(local_date(clock.now(), tz))
    world.group("ALL", weekdays="Mon Tue Wed Thu Fri", start=time(9), end=time(12))
    group_session = world.session("ALL", monday, status="closed")
    people = [("C300", "Zoe", "Adams", 3), ("C100", "Abe", "Young", 1), ("C200", "Mia", "Lopez", 2)]
    for client_id, first, last, hours_attended in people:
        person = world.client(client_id, first, last, groups=["ALL"], plan_start=monday - timedelta(weeks=2))
        starts = datetime.combine(monday, time(9), tzinfo=tz)
        world.attendance(person, group_session, starts, starts + timedelta(hours=hours_attended))


def test_coordinator_sorts_the_board_and_opens_a_client(live_server, auth, world, page, app):
    three_clients_this_week(world, app)
    auth.make_user("pat", role="coordinator", password="a long password")

    browser_sign_in(page, live_server.url, "pat", "a long password")
    assert page.get_by_role("heading", level=1).inner_text() == "This week"

    board = page.locator("table#board")
    ids = lambda: board.locator("tbody .client-id").all_inner_texts()  # noqa: E731
    assert sorted(ids()) == ["C100", "C200", "C300"]

    attended = page.get_by_role("button", name="Attended")
    attended.click()
    assert ids() == ["C100", "C200", "C300"]  # 1 h, 2 h, 3 h
    assert board.locator("th", has=attended).get_attribute("aria-sort") == "ascending"
    attended.click()
    assert ids() == ["C300", "C200", "C100"]
    assert board.locator("th", has=attended).get_attribute("aria-sort") == "descending"
    page.get_by_role("button", name="Client").click()
    assert ids() == ["C100", "C200", "C300"]  # Abe, Mia, Zoe

    page.get_by_role("link", name="Mia L.").click()
    page.wait_for_url(live_server.url + "/coordinator/clients/*")
    assert page.get_by_role("heading", level=1).inner_text() == "Mia Lopez"
    assert page.get_by_role("heading", name="Weekly hours").is_visible()
    assert page.locator("svg.chart").is_visible()
    assert "2 h 00" in page.locator("table.attendance").inner_text()


def test_a_stepped_down_client_shows_the_same_hours_on_the_clients_list_board_and_page(live_server, auth, world,
                                                                                        page, app):
    """Rosa's plan says 9 h a week and steps down to 6 h from plan week 5; this is week 7. The Clients
    list's "Plan today", the board's target and her page's week all show 6 h."""
    monday = week_start(local_date(clock.now(), app.config["PROGRAM_TZ"]))
    world.group("ALL", weekdays="Mon Tue Wed Thu Fri", start=time(9), end=time(12))
    world.client("C700", "Rosa", "Mendez", groups=["ALL"], plan_start=monday - timedelta(weeks=6), weekly_hours=9,
                 phases=[(1, 4, 9, 3), (5, 12, 6, 2)])
    auth.make_user("pat", role="coordinator", password="a long password")
    browser_sign_in(page, live_server.url, "pat", "a long password")

    row = page.locator("table#board tbody tr", has_text="C700")
    expect(row.locator('td[data-label="Target"]')).to_have_text("6 h 00")

    page.get_by_role("link", name="Clients", exact=True).click()
    page.wait_for_url(live_server.url + "/coordinator/clients*")
    row = page.get_by_role("row", name="Rosa Mendez")
    expect(row.locator('td[data-label="Plan today"]')).to_have_text("Level 2.1, 6 h 00 a week")

    row.get_by_role("link", name="Rosa Mendez").click()
    page.wait_for_url(live_server.url + "/coordinator/clients/*")
    expect(page.locator("section.this-week .week-line")).to_contain_text("of 6 h 00")
    expect(page.locator("section.this-week .bar")).to_have_attribute("aria-label", "0 h 00 of 6 h 00")


def test_at_200_percent_zoom_every_focus_is_seen_and_the_cards_still_sort(live_server, auth, world, browser, app):
    """A 1280x800 screen at 200% zoom is a 640x400 CSS-pixel page drawn at twice the density."""
    three_clients_this_week(world, app)
    auth.make_user("pat", role="coordinator", password="a long password")
    context = browser.new_context(viewport={"width": 640, "height": 400}, device_scale_factor=2)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        browser_sign_in(page, live_server.url, "pat", "a long password")
        board = page.locator("table#board")
        stops = tab_through(page)
        assert [stop["what"] for stop in stops if not stop["seen"]] == []
        assert any("board-sort" in stop["what"] for stop in stops)
        expect(board.locator("thead")).to_be_hidden()  # the card layout
        assert not any("data-sort-type" in stop["what"] for stop in stops)  # the hidden headers take no focus

        ids = lambda: board.locator("tbody .client-id").all_inner_texts()  # noqa: E731
        sort = page.get_by_label("Sort by")
        sort.select_option(label="Attended, most first")
        assert ids() == ["C300", "C200", "C100"]
        sort.select_option(label="Client, A to Z")
        assert ids() == ["C100", "C200", "C300"]  # Abe, Mia, Zoe
        assert_accessible(page, "the week board at 200% zoom")

        page.set_viewport_size({"width": 1280, "height": 800})  # back at 100%: the column buttons sort
        expect(sort).to_be_hidden()
        page.get_by_role("button", name="Attended").click()
        assert ids() == ["C100", "C200", "C300"]
        assert [stop["what"] for stop in tab_through(page) if not stop["seen"]] == []
    finally:
        context.close()


def test_the_exports_page_describes_each_exports_columns_itself(live_server, auth, world, page, app):
    """A coordinator opens each export's columns on the page: every column the file has, in its order,
    with what it holds; no sending people to a README."""
    from iop.files import exports

    auth.make_user("pat", role="coordinator", password="a long password")
    browser_sign_in(page, live_server.url, "pat", "a long password")
    page.goto(live_server.url + "/coordinator/exports")
    assert "README" not in page.locator("main").inner_text()
    for kind in ("hours", "attendance", "days", "utilization"):
        columns = page.locator(f"#columns-{kind}")
        columns.get_by_text(f"The {len(exports.header(kind))} columns").click()
        names = columns.locator("dt").all_inner_texts()
        assert names == exports.header(kind)  # the file's own header, in order
        meanings = columns.locator("dd").all_inner_texts()
        assert all(len(meaning.split()) >= 2 for meaning in meanings), meanings
        expect(columns.locator("dd").first).to_be_visible()
    days = page.locator("#columns-days")
    expect(days).to_contain_text("a full day (180 minutes)")
    expect(page.locator("#columns-attendance")).to_contain_text("kiosk, manual (by staff) or import")
    fhir = page.locator("#columns-fhir")
    fhir.get_by_text("The 4 files").click()
    assert fhir.locator("dt").all_inner_texts() == ["Encounter.ndjson", "Patient.ndjson", "Practitioner.ndjson",
                                                    "Group.ndjson"]
    assert_accessible(page, "the Exports page with every export's columns open")
def test_coordinator_sees_each_problem_beside_its_box_then_saves_a_client_and_a_phased_plan(live_server, auth, world,
                                                                                             page, app):
    world.group("RP-AM")
    auth.make_user("pat", role="coordinator", password="a long password")
    browser_sign_in(page, live_server.url, "pat", "a long password")
    page.goto(live_server.url + "/coordinator/clients/new")

    page.get_by_label("Client ID").fill("C 42")
    page.get_by_label("First name").fill("Ana\u202eairaM")  # a right-to-left override hidden in the name
    page.get_by_label("Last name").fill("Lopez")
    page.get_by_role("button", name="Add client").click()
    page.wait_for_load_state()

    first_name = page.get_by_label("First name")
    assert first_name.get_attribute("aria-invalid") == "true"
    assert page.locator("#" + first_name.get_attribute("aria-describedby")).inner_text() == \
        "The first name has a character that cannot be printed."
    client_id = page.get_by_label("Client ID")
    assert "cannot contain spaces" in page.locator("#client_id-problem").inner_text()
    assert "client_id-problem" in client_id.get_attribute("aria-describedby")
    assert page.get_by_role("alert").inner_text().count("\n") >= 2  # the list above names both
    assert page.get_by_label("Last name").input_value() == "Lopez"  # kept as typed

    client_id.fill("C42")
    first_name.fill("Ana")
    page.get_by_label("RP-AM").check()
    page.get_by_role("button", name="Add client").click()
    page.wait_for_url(live_server.url + "/coordinator/clients/*/plans/new")

    page.get_by_label("Hours a week", exact=True).fill("7.5")
    page.get_by_label("Phase 1 from week").fill("1")
    page.get_by_label("Phase 1 to week").fill("4")
    page.get_by_label("Phase 1 hours a week").fill("9")
    page.get_by_label("Phase 1 days a week").fill("3")
    page.get_by_role("button", name="Save plan").click()
    page.wait_for_url(live_server.url + "/coordinator/clients/*")
    assert page.get_by_role("heading", level=1).inner_text() == "Ana Lopez"
    assert "The plan is saved." in page.content()
    with app.app_context():
        plan = db.session().scalar(select(Plan))
        assert plan.weekly_minutes == 450
        assert [(p.first_week, p.last_week, p.weekly_minutes, p.days_per_week) for p in plan.phases] == [(1, 4, 540, 3)]

"""The authorization pages in Chromium: a coordinator adds an authorization on the client page, finds it
on the utilization page, filters and sorts it; every state checked with axe."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from helpers.a11y import assert_accessible
from helpers.world import local

pytestmark = pytest.mark.browser

MONDAY = date(2026, 3, 2)


def test_a_coordinator_adds_an_authorization_and_reads_its_utilization(app, world, auth, freeze, live_server, page):
    freeze(local(MONDAY + timedelta(days=4), 12))
    world.group()
    maria = world.client("C1", groups=["RP-AM"], plan_start=MONDAY, weekly_hours=9, days=3)
    world.client("C2", "James", "Whitfield", groups=["RP-AM"], plan_start=MONDAY)
    for offset in (0, 2):
        day = MONDAY + timedelta(days=offset)
        world.attendance(maria, world.session("RP-AM", day, status="closed"), local(day, 9), local(day, 12))
    auth.make_user("cora", "coordinator", "a coordinator password")
    base = live_server.url
    page.goto(base + "/login")
    page.get_by_label("Username").fill("cora")
    page.get_by_label("Password").fill("a coordinator password")
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"{base}/coordinator/clients/{maria.public_id}")
    page.get_by_role("link", name="New authorization").click()
    page.get_by_label("Payer").fill("Aetna")
    page.get_by_label("Authorization number").fill("A-1")
    page.get_by_label("Units authorized").fill("3")
    page.get_by_label("Start date").fill("2026-03-10")
    page.get_by_label("End date").fill("2026-03-05")
    page.get_by_role("button", name="Save authorization").click()
    expect(page.get_by_role("alert")).to_contain_text("The end date is before the start date.")
    assert_accessible(page, "authorization form, refused")
    page.get_by_label("Start date").fill("2026-03-03")
    page.get_by_label("End date").fill("2026-03-31")
    page.get_by_role("button", name="Save authorization").click()
    table = page.locator("table.authorizations")
    expect(table).to_contain_text("1 of 3")
    expect(table).to_contain_text("Runs out Mar 11, 20 days before it ends.")
    expect(page.locator("#uncovered")).to_contain_text("2026-03-02 · H0015")
    assert_accessible(page, "client page with an authorization")

    page.get_by_role("link", name="Utilization").first.click()
    expect(page.get_by_role("heading", name="Utilization")).to_be_visible()
    expect(page.locator("#utilization tbody tr")).to_have_count(1)
    expect(page.get_by_role("img", name="1 of 3 units used")).to_be_visible()
    assert_accessible(page, "utilization page")
    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No authorization is in force in these dates with these filters.")).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("button", name="Left").click()
    expect(page.locator("#utilization thead th").nth(5)).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#uncovered")).to_contain_text("Maria Gonzalez")

    page.get_by_role("link", name="Week board").click()
    expect(page.locator("#board")).to_have_attribute("data-marks-shown", "yes")
    expect(page.locator("#board .billing-mark")).to_have_text(["! Authorization expiring", "? Day without authorization"])
    assert_accessible(page, "week board with authorization marks")

"""A real browser: the facilitator's control page and the room display in two windows."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from helpers.a11y import assert_accessible
from iop.store import db
from iop.store.models import Client

pytestmark = pytest.mark.browser


def window(browser, width=1280, height=800):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    return context, context.new_page()


def sign_in(page, base, username="dana", password="correct horse 1"):
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/facilitator/$"))


def enrolled_kiosk(app, world):
    """An HTTP client that is an enrolled kiosk (same process as the live server, so pushes reach it)."""
    from iop.clinic import kiosks

    _device, cookie = world.kiosk("Front desk")
    http = app.test_client()
    http.set_cookie(kiosks.COOKIE_NAME, cookie, path="/kiosk")
    return http


def card(app, client_id):
    from iop.clinic import cards

    with app.app_context():
        person = db.session().scalar(select(Client).where(Client.client_id == client_id))
        return cards.card_code(person.id, person.card_version)


def test_the_room_display_follows_the_control_page_live(app, live_server, browser, live_group, world):
    group = live_group()
    kiosk = enrolled_kiosk(app, world)
    control_context, control = window(browser)
    display_context, display = window(browser, 1920, 1080)
    try:
        sign_in(control, live_server.url)
        control.get_by_role("link", name="Group RP-AM").click()
        expect(control.locator("#connection")).to_have_text("Live")
        display.goto(live_server.url + control.get_by_role("link", name="Room display").get_attribute("href"))
        heading = display.get_by_role("heading", level=1)
        expect(heading).to_have_text("Opening check-in")
        assert_accessible(display, "the room display before the start")
        assert_accessible(control, "the control page before the start")

        control.get_by_role("button", name="Start group").click()
        expect(display.locator("#position")).to_have_text("Step 1 of 7")
        control.get_by_role("button", name="Next").click()
        expect(heading).to_have_text("What is a trigger?")
        expect(control.locator("#step-title")).to_have_text("What is a trigger?")
        expect(control.locator("#step-notes")).to_contain_text("Explain in plain words")
        expect(display.locator("#step-room")).to_contain_text("A trigger is anything that sparks the wish to use.")
        expect(display.locator("#timer")).to_have_text("25:00")
        assert_accessible(display, "the room display during a step")
        assert_accessible(control, "the control page during a step")

        display.reload()  # a display that reloads shows the same step at once
        expect(heading).to_have_text("What is a trigger?")

        control.keyboard.press("ArrowRight")  # a presentation clicker
        expect(heading).to_have_text("My trigger map")
        # The curriculum's markup as written, pushed live: the list, then its own paragraph (not run into
        # the last item as "Feelings and thoughts Put a star...").
        for screen in (display, control):
            room = screen.locator("#step-room")
            expect(room.locator("ul > li").last).to_have_text("Feelings and thoughts")
            expect(room.locator("ul + p")).to_have_text("Put a star by your three strongest triggers.")
        control.keyboard.press("PageUp")
        expect(heading).to_have_text("What is a trigger?")
        control.get_by_role("button", name="Previous").click()
        expect(heading).to_have_text("Opening check-in")

        scanned = kiosk.post("/kiosk/api/scan", json={"code": card(app, "C1"), "scan_id": str(uuid.uuid4())})
        assert scanned.get_json().get("result") == "checked_in", scanned.get_json()
        arrival = control.locator("#roster .entry", has_text="Maria G.")
        expect(arrival).to_be_visible()
        expect(arrival).to_have_class(re.compile(r"\barrived\b"))  # newest arrivals stand out for a while
        expect(control.locator("#headcount")).to_have_text("1")
        expect(display.locator("#headcount")).to_have_text("1")
        assert "Maria" not in display.content()

        assert kiosk.post("/kiosk/api/help", json={}).status_code == 200  # "Forgot your card?"
        alert = control.get_by_role("alert")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("Front desk")
        assert "Front desk" not in display.content()
    finally:
        control_context.close()
        display_context.close()


def test_checking_in_by_hand_and_closing_from_the_browser(app, live_server, browser, live_group):
    group = live_group()
    control_context, control = window(browser)
    display_context, display = window(browser, 1920, 1080)
    try:
        sign_in(control, live_server.url)
        control.goto(f"{live_server.url}/facilitator/sessions/{group.session_id}")
        expect(control.locator("#connection")).to_have_text("Live")
        display.goto(live_server.url + control.get_by_role("link", name="Room display").get_attribute("href"))

        control.locator("#not-here .entry", has_text="James W.").get_by_role("button", name="Check in…").click()
        dialog = control.locator("#hand-dialog")
        dialog.get_by_label("Reason").fill("No card today")
        dialog.get_by_role("button", name="Check in").click()
        expect(control.locator("#roster .entry", has_text="James W.")).to_contain_text("By hand")
        expect(control.locator("#message")).to_have_text("James W. is checked in at 9:20 AM.")
        expect(display.locator("#headcount")).to_have_text("1")

        control.locator("#not-here .entry", has_text="Maria G.").get_by_role("button", name="Excused…").click()
        dialog.get_by_role("button", name="Mark excused").click()
        expect(dialog.locator("#hand-error")).to_have_text("Please give a reason.")
        dialog.get_by_label("Reason").fill("Doctor's appointment")
        dialog.get_by_role("button", name="Mark excused").click()
        expect(control.locator("#roster .entry", has_text="Maria G.")).to_contain_text("Excused")

        control.once("dialog", lambda confirm: confirm.accept())
        control.get_by_role("button", name="Close session").click()
        expect(control.get_by_role("heading", name="Session summary")).to_be_visible()
        expect(control.locator("main")).to_contain_text("1 client still checked in was checked out.")
        expect(display.get_by_role("heading", level=1)).to_contain_text("ended")
        display.reload()
        expect(display.get_by_role("heading", level=1)).to_contain_text("This group has ended")
    finally:
        control_context.close()
        display_context.close()


def test_the_control_page_fits_a_1366x768_laptop_before_and_after_the_start(app, live_server, browser, live_group):
    """The current step in view without scrolling, step titles on a line or two (never a word a line),
    and three times that cannot be taken one for another."""
    live_group()
    context, control = window(browser, 1366, 768)
    try:
        sign_in(control, live_server.url)
        control.get_by_role("link", name="Group RP-AM").click()
        expect(control.locator("#connection")).to_have_text("Live")

        def step_in_view():
            box = control.locator("#step-room").bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 768, box
            assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, box
            assert control.evaluate("window.scrollY") == 0

        step_in_view()
        for title in control.locator(".step-name").all():
            lines = title.evaluate("el => Math.round(el.getBoundingClientRect().height"
                                   " / parseFloat(getComputedStyle(el).lineHeight))")
            words = len(title.inner_text().split())
            assert lines <= 2 and (words == 1 or lines < words), (title.inner_text(), lines)
        expect(control.locator("#countdown")).to_have_text("20:00")
        expect(control.locator("#countdown-label")).to_have_text("min:s for this step")
        expect(control.locator("#elapsed")).to_have_text("Not started")

        control.get_by_role("button", name="Start group").click()
        expect(control.locator("#countdown-label")).to_have_text("min:s left in this step")
        step_in_view()
        # The group's running time in words (h and min), never "0:20" beside the step's "19:40".
        expect(control.locator("#elapsed")).to_have_text(re.compile(r"^Running (\d+ min|\d+ h \d\d min)$"))
        expect(control.locator("#countdown")).to_have_text(re.compile(r"^\d{1,2}:\d\d$"))
        control.get_by_role("button", name="Next").click()
        expect(control.locator("#step-title")).to_have_text("What is a trigger?")
        step_in_view()
        assert_accessible(control, "the control page at 1366x768")
    finally:
        context.close()

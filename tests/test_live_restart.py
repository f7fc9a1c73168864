"""A server restart in the middle of a group: the room display comes back on the current step by itself."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from helpers import servers

pytestmark = [pytest.mark.slow, pytest.mark.browser]


# Real processes on a shared machine: a step reaches the display through two processes and a reconnect.
WAIT = 15_000


def test_a_display_returns_to_the_current_step_after_the_server_restarts(tmp_path, browser):
    instance = tmp_path / "instance"
    env = servers.environment(instance, f"sqlite:///{instance / 'iop.sqlite3'}")
    servers.iop(env, "demo")  # the demo group runs now
    port = servers.free_port()
    first = servers.WebProcess("serve-1", env, tmp_path, port=port, kind="serve").start()
    second = None
    control_context = browser.new_context(viewport={"width": 1280, "height": 800})
    display_context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        first.wait_healthy()
        control, display = control_context.new_page(), display_context.new_page()
        for page in (control, display):
            page.set_default_timeout(15_000)
        control.goto(first.url + "/login")
        control.get_by_label("Username").fill("facilitator")
        control.get_by_label("Password").fill("demo-group-leader")
        control.get_by_role("button", name="Sign in").click()
        control.get_by_role("link", name="Demo Group").click()
        expect(control.locator("#connection")).to_have_text("Live", timeout=WAIT)
        steps = control.locator(".step-jump > span:first-child").all_inner_texts()
        display.goto(first.url + control.get_by_role("link", name="Room display").get_attribute("href"))
        heading = display.get_by_role("heading", level=1)

        control.get_by_role("button", name="Start group").click()
        control.get_by_role("button", name="Next").click()
        expect(heading).to_have_text(steps[1], timeout=WAIT)
        display.evaluate("window.sameDisplayPage = true")

        first.stop()  # the server goes away mid-group
        expect(display.locator("#reconnecting")).to_be_visible(timeout=WAIT)
        expect(heading).to_have_text(steps[1], timeout=WAIT)  # the content stays

        second = servers.WebProcess("serve-2", env, tmp_path, port=port, kind="serve").start()
        second.wait_healthy()
        expect(display.locator("#reconnecting")).to_be_hidden(timeout=WAIT)
        expect(heading).to_have_text(steps[1], timeout=WAIT)
        expect(control.locator("#connection")).to_have_text("Live", timeout=WAIT)
        control.get_by_role("button", name="Next").click()  # the facilitator carries on
        expect(heading).to_have_text(steps[2], timeout=WAIT)
        expect(display.locator("#position")).to_have_text(re.compile(r"Step 3 of \d+"), timeout=WAIT)
        assert display.evaluate("window.sameDisplayPage") is True, "the display came back without a reload"
    finally:
        control_context.close()
        display_context.close()
        first.stop()
        if second is not None:
            second.stop()

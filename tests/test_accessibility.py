"""Every page of every face, checked with axe-core in Chromium: zero violations of the WCAG 2.0, 2.1 and
2.2 A and AA rules (tests/a11y.py). A page added later goes in the list of its face below.

Each face's test visits its pages in turn and reports every violation of every page at once."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from helpers.a11y import describe, violations
from helpers.world import LIVE_DAY, local
from iop import clock
from iop.clinic import kiosks

pytestmark = pytest.mark.browser

ADMIN = ("ada", "an admin password")


class Findings:
    """Violations by page; fails once, at the end, naming every page with a problem."""

    def __init__(self):
        self.pages: dict[str, list[dict]] = {}

    def check(self, page, what: str) -> None:
        self.pages[what] = violations(page)

    def assert_none(self) -> None:
        bad = {what: found for what, found in self.pages.items() if found}
        assert not bad, "\n\n".join(f"{what}:\n{describe(found)}" for what, found in bad.items())


@pytest.fixture
def program(app, world, auth, live_group):
    """A running group with its module (9:20 on LIVE_DAY), a closed session with a summary, clients with
    plans and attendance, an enrolled kiosk, and an admin who may see every staff page."""
    running = live_group()
    monday = LIVE_DAY - timedelta(days=2)
    closed = world.session("RP-AM", monday, status="closed", module_id="rp-01-triggers")
    maria = world.client("C3", "Ana", "Reyes", groups=["RP-AM"], plan_start=monday - timedelta(days=21),
                         weekly_hours=9, phases=((1, 2, 9, 3), (3, 8, 6, 2)))
    world.attendance(maria, closed, local(monday, 9, 12), local(monday, 11, 40))
    auth.make_user(ADMIN[0], "admin", ADMIN[1])
    with app.app_context():
        from sqlalchemy import select

        from iop.ops import backup
        from iop.store import db
        from iop.store.models import Authorization, Group, Plan

        plan_id = db.session().scalar(select(Plan.id).where(Plan.client_key == maria.id))
        group_id = db.session().scalar(select(Group.id).where(Group.code == "RP-AM"))
        with db.transaction() as s:  # over: the page, the board and the utilization page mark it
            record = Authorization(client_key=maria.id, payer="Aetna", number="A-1", service="90853", unit="session",
                                   units=1, start_date=monday - timedelta(days=7), end_date=LIVE_DAY)
            s.add(record)
        authorization_id = record.id
        made = backup.new_backup_path(app)  # the Backups page lists one, verified
        backup.write_backup(app, made)
        backup.record_check(made, True)
    return {"running": running, "closed": closed, "client": maria, "plan_id": plan_id, "group_id": group_id,
            "authorization_id": authorization_id}


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


# ---- staff pages: (what, path) -------------------------------------------------------------------

def staff_pages(p) -> list[tuple[str, str]]:
    client, running, closed = p["client"], p["running"], p["closed"]
    return [
        ("facilitator home (today's groups)", "/facilitator/"),
        ("control page", f"/facilitator/sessions/{running.session_id}"),
        ("session summary", f"/facilitator/sessions/{closed.id}/summary"),
        ("a module to read or print", "/facilitator/modules/rp-01-triggers"),
        ("week board", "/coordinator/"),
        ("week board, another week", f"/coordinator/?week={(LIVE_DAY - timedelta(days=7)).isoformat()}"),
        ("clients list", "/coordinator/clients"),
        ("client page", f"/coordinator/clients/{client.public_id}"),
        ("new client form", "/coordinator/clients/new"),
        ("client form", f"/coordinator/clients/{client.public_id}/edit"),
        ("new plan form", f"/coordinator/clients/{client.public_id}/plans/new"),
        ("plan form", f"/coordinator/clients/{client.public_id}/plans/{p['plan_id']}/edit"),
        ("new authorization form", f"/coordinator/clients/{client.public_id}/authorizations/new"),
        ("authorization form", f"/coordinator/clients/{client.public_id}/authorizations/{p['authorization_id']}/edit"),
        ("utilization", f"/coordinator/utilization?first={(LIVE_DAY - timedelta(days=30)).isoformat()}"),
        ("groups list", "/coordinator/groups"),
        ("new group form", "/coordinator/groups/new"),
        ("group form", f"/coordinator/groups/{p['group_id']}/edit"),
        ("levels of care", "/coordinator/levels"),
        ("exports and imports", "/coordinator/exports"),
        ("kiosks", "/coordinator/kiosks"),
        ("cards", "/coordinator/cards"),
        ("curriculum", "/coordinator/curriculum"),
        ("audit log", "/coordinator/audit"),
        ("backups", "/coordinator/backups"),
        ("a page that does not exist", "/coordinator/clients/no-such-client"),
    ]


def test_every_staff_page_has_no_wcag_violations(program, live_server, page):
    found = Findings()
    base = live_server.url
    page.goto(base + "/login")
    found.check(page, "sign-in")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    found.check(page, "sign-in, refused")

    sign_in(page, base, *ADMIN)
    for what, path in staff_pages(program):
        response = page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert page.url == base + path, (what, page.url)  # the page itself, not a sign-in
        assert response.status == (404 if "not exist" in what else 200), (what, response.status)
        found.check(page, what)

    # States a person brings about on those pages.
    page.goto(base + "/coordinator/kiosks")
    page.get_by_label("Kiosk name").fill("Front desk")
    page.get_by_role("button", name="Create setup link").click()
    expect(page.locator("#new-link")).to_be_visible()
    found.check(page, "kiosks, with a new setup link")

    page.goto(base + "/coordinator/exports")
    page.get_by_label("Groups file (.csv)").set_input_files(files=[{
        "name": "groups.csv", "mimeType": "text/csv",
        "buffer": b"code,name,track,room,weekdays,start,end\nX,,nowhere,,Funday,25:00,09:00\n"}])
    page.get_by_role("button", name="Import groups").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    found.check(page, "an import's page, a refused import")
    page.goto(base + "/coordinator/exports")
    for summary in page.locator("details.columns summary").all():
        summary.click()
    found.check(page, "exports and imports, every export's columns open")

    page.goto(base + f"/facilitator/sessions/{program['running'].session_id}")
    expect(page.locator("#connection")).to_have_text("Live")
    page.get_by_role("button", name="Start group").click()
    expect(page.locator("#countdown-label")).to_have_text(re.compile("left in this step"))
    found.check(page, "control page, running")
    page.locator("#not-here .entry").first.get_by_role("button", name="Check in…").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    found.check(page, "control page, checking someone in by hand")
    found.assert_none()


# ---- the room display --------------------------------------------------------------------------

def test_the_room_display_has_no_wcag_violations_before_and_during_a_step(program, live_server, browser, app):
    from iop.live import facilitation

    with app.app_context():
        token = facilitation.display_token(program["running"].session_id)
        ended = facilitation.display_token(program["closed"].id)
    found = Findings()
    control_context = browser.new_context(viewport={"width": 1366, "height": 768})
    display_context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        control, display = control_context.new_page(), display_context.new_page()
        display.goto(f"{live_server.url}/facilitator/display/{token}")
        expect(display.locator("#position")).to_have_text("Starting soon")
        found.check(display, "room display before the start")
        sign_in(control, live_server.url, *ADMIN)
        control.goto(f"{live_server.url}/facilitator/sessions/{program['running'].session_id}")
        expect(control.locator("#connection")).to_have_text("Live")
        control.get_by_role("button", name="Start group").click()
        control.get_by_role("button", name="Next").click()
        control.get_by_role("button", name="Next").click()
        expect(display.get_by_role("heading", level=1)).to_have_text("My trigger map")
        found.check(display, "room display during a step")
        display.goto(f"{live_server.url}/facilitator/display/{token}?theme=dark")
        expect(display.get_by_role("heading", level=1)).to_have_text("My trigger map")
        found.check(display, "room display during a step, dark theme")
        display.goto(f"{live_server.url}/facilitator/display/{ended}")
        found.check(display, "room display of a group that has ended")
    finally:
        control_context.close()
        display_context.close()
    found.assert_none()


# ---- the kiosk: every state ----------------------------------------------------------------------

def still_showing(page, state: str) -> None:
    """The state was on screen for the whole check (it leaves after 4-8 seconds)."""
    assert page.locator(f"#state-{state}").is_visible(), f"the {state} state ended before its check finished"


def test_every_kiosk_state_has_no_wcag_violations(kiosk_scene, live_server, page, app):
    found = Findings()
    base = live_server.url
    page.goto(base + "/kiosk/")
    expect(page.locator("#not-enrolled")).to_be_visible()
    found.check(page, "kiosk, not enrolled")
    with app.app_context():
        from iop.store import db

        with db.transaction():
            device = kiosks.issue_enrollment("Side door")
            nonce = device.enrollment_nonce
    page.goto(f"{base}/kiosk/enroll/{nonce}")
    found.check(page, "kiosk setup page")

    page.context.add_cookies([{"name": kiosks.COOKIE_NAME, "value": kiosk_scene.cookie, "domain": "127.0.0.1",
                               "path": "/kiosk", "httpOnly": True, "sameSite": "Strict"}])
    for lang, button in (("es", "Español"), ("en", "English")):
        page.goto(base + "/kiosk/")
        page.get_by_role("button", name=button).click()
        expect(page.locator("#state-ready")).to_be_visible()
        found.check(page, f"kiosk ready ({lang})")
    card = kiosk_scene.card(kiosk_scene.maria)

    def scan(code: str, state: str) -> None:
        page.keyboard.type(code)
        page.keyboard.press("Enter")
        expect(page.locator(f"#state-{state}")).to_be_visible()
        found.check(page, f"kiosk {state}")
        still_showing(page, state)
        expect(page.locator("#state-ready")).to_be_visible(timeout=10_000)

    held = []
    page.route("**/kiosk/api/scan", lambda route: held.append(route))  # the answer waits: "checking"
    page.keyboard.type(card)
    page.keyboard.press("Enter")
    expect(page.locator("#state-checking")).to_be_visible()
    found.check(page, "kiosk checking")
    still_showing(page, "checking")
    held[0].continue_()
    page.unroute("**/kiosk/api/scan")
    expect(page.locator("#state-in")).to_be_visible()
    found.check(page, "kiosk checked in")
    still_showing(page, "in")
    expect(page.locator("#state-ready")).to_be_visible(timeout=10_000)

    scan(card, "already")
    clock.advance(timedelta(minutes=6))
    scan(card, "confirm")  # "Leaving now?", left unanswered: back to Ready
    page.keyboard.type(card)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Check out").click()
    expect(page.locator("#state-out")).to_be_visible()
    found.check(page, "kiosk out")
    still_showing(page, "out")
    expect(page.locator("#state-ready")).to_be_visible(timeout=10_000)
    scan(card[:-4] + "AAAA", "problem")

    page.get_by_role("button", name="Forgot your card?").click()
    expect(page.locator("#state-help")).to_be_visible()
    found.check(page, "kiosk help requested")
    still_showing(page, "help")
    expect(page.locator("#state-ready")).to_be_visible(timeout=12_000)

    page.route("**/kiosk/api/scan", lambda route: route.abort("internetdisconnected"))
    scan(kiosk_scene.card(kiosk_scene.maria), "saved")
    expect(page.locator("#pending")).to_be_visible()
    found.check(page, "kiosk ready with scans waiting to sync")
    found.assert_none()

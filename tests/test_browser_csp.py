"""Every page of every face, in a real browser with the Content-Security-Policy on: no violation is
logged (conftest's watch fails any browser test that meets one), and what the pages do with scripts
(sorting, confirmations, the live connection, the room display, the kiosk's camera worker) works."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from helpers import web
from helpers.web import browser_sign_in

pytestmark = pytest.mark.browser


def test_the_watch_sees_a_violation(live_server, page):
    """The watch itself can fail: an inline script injected into a page is refused and reported."""
    page.goto(live_server.url + "/login")
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
                  " document.body.append(s); }")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None  # the browser did not run it
    seen = list(web.CSP_VIOLATIONS)
    web.CSP_VIOLATIONS.clear()  # expected here: keep the autouse check for the rest
    assert any("script-src" in line for line in seen), seen


def same_site_links(page, base: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    found = set()
    for href in hrefs:
        parts = urlsplit(href)
        if parts.netloc or not parts.path.startswith("/") or parts.path.endswith((".csv", ".crt", ".pdf")):
            continue
        if "/display/" in parts.path or parts.path == "/logout":
            continue
        found.add(parts.path)
    return found


def crawl(page, base: str, starts: list[str], limit: int = 60) -> list[str]:
    seen, queue = [], list(starts)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        response = page.goto(base + path)
        assert response.status < 500, path
        page.wait_for_load_state("load")
        queue += sorted(same_site_links(page, base) - set(seen))
    return seen


def test_every_staff_page_in_a_real_browser(live_server, page, auth, world, live_group):
    scene = live_group(facilitator="dana")
    world.client("C9", "Ona", "Lindqvist", groups=["RP-AM"], plan_start=scene.session.date - timedelta(days=7))
    world.kiosk("Lobby")
    auth.make_user("root", "admin", "correct horse 1")
    browser_sign_in(page, live_server.url, "root", "correct horse 1")
    visited = crawl(page, live_server.url, ["/coordinator/", "/facilitator/", "/password", "/nothing-here"])
    for expected in ("/coordinator/", "/coordinator/clients", "/coordinator/staff", "/coordinator/audit",
                     "/coordinator/kiosks", "/coordinator/cards", "/coordinator/exports", "/coordinator/groups",
                     "/coordinator/levels", "/coordinator/curriculum", "/facilitator/", "/password"):
        assert expected in visited, (expected, visited)
    assert any(re.fullmatch(r"/coordinator/clients/[^/]+", path) for path in visited)
    assert any(re.fullmatch(r"/coordinator/staff/\d+", path) for path in visited)

    # Scripts that run under the policy: the board sorts; a setup link is made (this server listens on
    # this computer only, so the page offers the link for this computer's browser, without a QR code).
    page.goto(live_server.url + "/coordinator/clients")
    page.goto(live_server.url + "/coordinator/kiosks")
    page.get_by_label("Kiosk name").fill("Hallway")
    page.get_by_role("button", name="Create setup link").click()
    expect(page.locator(".setup-link")).to_contain_text("/kiosk/enroll/")

    # The live control page: its socket connects (Socket.IO under connect-src 'self').
    page.goto(f"{live_server.url}/facilitator/sessions/{scene.session_id}")
    expect(page.locator("#connection")).not_to_have_text("Connecting…")
    display = page.get_by_role("link", name=re.compile("Room display")).get_attribute("href")
    page.goto(live_server.url + display)
    expect(page.locator("#reconnecting")).to_be_hidden()
    expect(page.locator("#step-title")).not_to_be_empty()


def test_the_kiosk_pages_and_the_camera_worker_in_a_real_browser(live_server, page, kiosk_scene, app):
    from iop.clinic import kiosks

    page.goto(live_server.url + "/kiosk/")  # not enrolled yet
    expect(page.get_by_text("not set up as a kiosk", exact=False)).to_be_visible()
    page.context.add_cookies([{"name": kiosks.COOKIE_NAME, "value": kiosk_scene.cookie, "domain": "127.0.0.1",
                               "path": "/kiosk"}])
    page.goto(live_server.url + "/kiosk/")
    expect(page.locator("#state-ready")).to_be_visible()
    # The QR decoder's Web Worker loads from this server under worker-src 'self'.
    worker_src = page.locator("[data-worker-src]").get_attribute("data-worker-src")
    answer = page.evaluate("""(src) => new Promise((done) => {
        const worker = new Worker(src);
        worker.onmessage = (event) => { done(event.data === null ? "no code" : "code"); worker.terminate(); };
        worker.onerror = () => done("failed");
        worker.postMessage({ buffer: new Uint8ClampedArray(4 * 8 * 8).buffer, width: 8, height: 8 });
    })""", worker_src)
    assert answer == "no code"
    page.keyboard.type(kiosk_scene.card(kiosk_scene.maria))
    page.keyboard.press("Enter")
    expect(page.locator("#state-in")).to_be_visible()


def test_the_sign_in_pages_in_a_real_browser(live_server, page, auth):
    auth.make_user()
    page.goto(live_server.url + "/login?idle=1")
    expect(page.get_by_role("alert")).to_contain_text("signed out after a while")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("correct horse 1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/facilitator/")
    page.goto(live_server.url + "/facilitator/display/forged-token")
    expect(page.get_by_text("not valid", exact=False)).to_be_visible()


def test_a_tablet_sets_itself_up_over_https_through_the_real_page(app, browser, tmp_path):
    """Over HTTPS, CSRF also checks the referrer: the enrollment page sends it to this site (same-origin)
    but to no other, so its "Set up this tablet" works in a real browser (no-referrer refused it)."""
    import threading

    from werkzeug.serving import make_server

    from iop.clinic import kiosks
    from iop.ops import serving
    from iop.store import db

    crt, key = serving.ensure_local_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(crt, key))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(ignore_https_errors=True)
    try:
        with app.app_context():
            with db.transaction():
                path = kiosks.enrollment_path(kiosks.issue_enrollment("Front desk"))
        page = context.new_page()
        base = f"https://localhost:{server.server_port}"
        page.goto(base + path)
        page.get_by_role("button", name="Set up this tablet").click()
        page.wait_for_url(base + "/kiosk/")
        expect(page.locator("#state-ready")).to_be_visible()
    finally:
        context.close()
        server.shutdown()
        thread.join(5)

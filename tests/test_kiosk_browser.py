"""The kiosk in a real Chromium: a scanner's keystrokes, the camera, the offline queue, help."""
from __future__ import annotations

import re
from datetime import timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from helpers.a11y import assert_accessible
from helpers.web import CHROMIUM, CHROMIUM_ARGS
from helpers.world import local
from iop import clock
from iop.clinic import kiosks
from iop.store import db
from iop.store.models import Attendance

pytestmark = pytest.mark.browser

ASKED_ABOUT_9_05 = re.compile(r"^You checked in at 9:05( AM)?\. Leaving now\?$")


def open_kiosk(page, live_server, scene):
    page.context.add_cookies([{"name": kiosks.COOKIE_NAME, "value": scene.cookie, "domain": "127.0.0.1",
                               "path": "/kiosk", "httpOnly": True, "sameSite": "Strict"}])
    page.goto(live_server.url + "/kiosk/")
    expect(page.locator("#state-ready")).to_be_visible()
    return page


def scan_like_a_scanner(page, code):
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def unvoided_attendances(app):
    with app.app_context():
        return db.session().scalars(select(Attendance).where(Attendance.voided_at.is_(None))
                                    .order_by(Attendance.check_in_at)).all()


def test_scanner_checks_in_then_out_and_the_greeting_leaves_no_trace(kiosk_scene, live_server, page, app, world,
                                                                      freeze):
    monday, wednesday = kiosk_scene.day, kiosk_scene.day + timedelta(days=2)
    world.attendance(kiosk_scene.maria, world.session(kiosk_scene.group, monday, status="closed"),
                     local(monday, 9), local(monday, 12, 30))
    freeze(local(wednesday, 9, 5))
    open_kiosk(page, live_server, kiosk_scene)
    scanner_field = page.get_by_label(re.compile("card", re.I))
    expect(scanner_field).to_be_focused()
    assert scanner_field.get_attribute("inputmode") == "none"
    page.mouse.click(20, 700)  # a tap anywhere keeps the scanner's field focused
    expect(scanner_field).to_be_focused()

    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    greeting = page.locator("#state-in")
    expect(greeting).to_be_visible()
    expect(greeting.get_by_role("heading")).to_have_text("Welcome, Maria G.")
    expect(greeting).to_contain_text("Morning Relapse Prevention · Room B")
    expect(greeting).to_contain_text("3 h this week — your goal is 9 h")
    expect(greeting.get_by_role("progressbar", name="Your hours this week")).to_have_attribute("aria-valuenow", "180")
    expect(greeting).to_contain_text("Checked in")  # words and an icon, not colour alone
    name_size = greeting.get_by_role("heading").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert name_size >= 48
    assert "Gonzalez" not in page.content()
    [record] = [r for r in unvoided_attendances(app) if r.check_out_at is None]
    assert record.check_in_at == local(wednesday, 9, 5).astimezone(timezone.utc)

    # after five seconds the kiosk is ready again, with no trace of Maria anywhere in the page
    expect(page.locator("#state-ready")).to_be_visible(timeout=8000)
    expect(greeting).to_be_hidden()
    assert "Maria" not in page.content()
    expect(scanner_field).to_be_focused()

    clock.advance(timedelta(minutes=6))
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    question = page.locator("#state-confirm")
    expect(question.get_by_role("heading")).to_have_text(ASKED_ABOUT_9_05)
    page.get_by_role("button", name="Check out").click()
    goodbye = page.locator("#state-out")
    expect(goodbye).to_be_visible()
    expect(goodbye.get_by_role("heading")).to_have_text("See you next time, Maria G.")
    expect(goodbye).to_contain_text("Today: 6 min")
    expect(page.locator("#state-ready")).to_be_visible(timeout=8000)
    assert "Maria" not in page.content()
    today = [r for r in unvoided_attendances(app) if r.check_in_at >= local(wednesday, 0).astimezone(timezone.utc)]
    assert len(today) == 1 and today[0].check_out_at == local(wednesday, 9, 11).astimezone(timezone.utc)


def test_the_ready_screen_is_large_and_touchable(kiosk_scene, live_server, page):
    open_kiosk(page, live_server, kiosk_scene)
    expect(page.get_by_role("heading", name="Welcome. Please scan your card.")).to_be_visible()
    expect(page.locator("svg.card-picture")).to_be_visible()
    assert page.get_by_label(re.compile("card", re.I)).count() == 1  # only the scanner's field
    expect(page.locator("#kiosk-clock")).to_have_text(re.compile(r"\d{1,2}:\d{2}"))
    for name in ("Forgot your card?", "Use the camera", "English", "Español"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box["height"] >= 48 and box["width"] >= 48, name
    body = page.locator(".hint").first.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert body >= 24


def test_a_forged_card_gets_words_not_codes_then_ready(kiosk_scene, live_server, page):
    open_kiosk(page, live_server, kiosk_scene)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria)[:-4] + "AAAA")
    problem = page.locator("#state-problem")
    expect(problem).to_be_visible()
    expect(problem.get_by_role("heading")).to_have_text("We could not read this card. Please see staff.")
    assert "unknown_card" not in problem.inner_text()
    expect(page.locator("#state-ready")).to_be_visible(timeout=9000)


def test_a_revoked_card_says_it_was_replaced(kiosk_scene, live_server, page, runner):
    old = kiosk_scene.card(kiosk_scene.maria)
    runner.invoke(args=["card-code", "C1", "--reissue"])
    open_kiosk(page, live_server, kiosk_scene)
    scan_like_a_scanner(page, old)
    expect(page.locator("#state-problem")).to_contain_text("This card was replaced. Please see staff.")


def test_spanish_for_the_person_who_asks(kiosk_scene, live_server, page):
    open_kiosk(page, live_server, kiosk_scene)
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Hola. Por favor, escanee su tarjeta.")).to_be_visible()
    expect(page.get_by_label("Escanee su tarjeta")).to_be_focused()  # the click did not steal the scanner's focus
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#state-in").get_by_role("heading")).to_have_text("Hola, Maria G.")
    expect(page.locator("#state-in")).to_contain_text("0 min esta semana — su meta es 9 h")
    expect(page.get_by_role("progressbar", name="Sus horas de esta semana")).to_be_visible()
    page.reload()  # the choice stays with the kiosk
    expect(page.get_by_role("button", name="Español")).to_have_attribute("aria-pressed", "true")


def test_forgot_your_card_calls_staff_and_asks_nothing(kiosk_scene, live_server, page, monkeypatch):
    from iop.live import roster

    calls = []
    monkeypatch.setattr(roster, "publish_help_request", lambda name: calls.append(name) or 1)
    open_kiosk(page, live_server, kiosk_scene)
    page.get_by_role("button", name="Forgot your card?").click()
    help_screen = page.locator("#state-help")
    expect(help_screen).to_contain_text("Someone is on their way.")
    assert help_screen.locator("input").count() == 0
    page.wait_for_function("() => true")
    for _ in range(50):
        if calls:
            break
        page.wait_for_timeout(100)
    assert calls == ["Front desk"]
    expect(page.get_by_label(re.compile("card", re.I))).to_be_focused()


def test_offline_scans_wait_in_order_and_sync_with_their_own_times(kiosk_scene, live_server, page, app, world):
    james = world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group], plan_start=kiosk_scene.day)
    aisha = world.client("C3", "Aisha", "Rahman", groups=[kiosk_scene.group], plan_start=kiosk_scene.day)
    open_kiosk(page, live_server, kiosk_scene)
    queued_at = clock.now()
    page.route("**/kiosk/api/scan", lambda route: route.abort("internetdisconnected"))
    for person in (kiosk_scene.maria, james, aisha):
        scan_like_a_scanner(page, kiosk_scene.card(person))
        expect(page.locator("#state-saved")).to_contain_text("Saved. We'll sync it when the network is back.")
    expect(page.locator("#pending")).to_have_text(re.compile("3 waiting to sync"))
    assert unvoided_attendances(app) == []

    clock.advance(timedelta(minutes=20))  # the network comes back at 9:25
    page.unroute("**/kiosk/api/scan")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#pending")).to_be_hidden(timeout=10_000)
    records = unvoided_attendances(app)
    assert len(records) == 3
    assert {r.client_key for r in records} == {kiosk_scene.maria.id, james.id, aisha.id}
    for record in records:  # recorded when scanned, not when synced
        assert queued_at <= record.check_in_at <= queued_at + timedelta(seconds=60)
    assert [r.client_key for r in records] == [kiosk_scene.maria.id, james.id, aisha.id]  # in order


def test_a_server_error_is_queued_too(kiosk_scene, live_server, page, app):
    open_kiosk(page, live_server, kiosk_scene)
    page.route("**/kiosk/api/scan", lambda route: route.fulfill(status=503, body="{}",
                                                                content_type="application/json"))
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#pending")).to_have_text(re.compile("1 waiting to sync"))
    page.unroute("**/kiosk/api/scan")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#pending")).to_be_hidden(timeout=10_000)
    assert len(unvoided_attendances(app)) == 1


def test_enrolling_through_a_real_link(app, live_server, page):
    with app.app_context():
        with db.transaction():
            path = kiosks.enrollment_path(kiosks.issue_enrollment("Front desk"))
    page.goto(live_server.url + "/kiosk/")
    expect(page.get_by_role("heading", name="This screen is not set up as a kiosk yet")).to_be_visible()
    assert page.locator("input").count() == 0
    page.goto(live_server.url + path)
    page.get_by_role("button", name="Set up this tablet").click()
    page.wait_for_url(re.compile(r"/kiosk/$"))
    expect(page.get_by_label(re.compile("card", re.I))).to_be_focused()


# ---- the camera ------------------------------------------------------------------------------------

def write_y4m(path, payload: str, width=640, height=480, frames=10):
    """A YUV4MPEG2 clip of a QR code on white (Chromium's fake camera plays it in a loop)."""
    import qrcode
    from PIL import Image

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4, box_size=8)
    qr.add_data(payload)
    qr.make(fit=True)
    code = qr.make_image(fill_color="black", back_color="white").convert("L")
    side = min(height - 40, code.size[0])
    code = code.resize((side, side), Image.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(code, ((width - side) // 2, (height - side) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)


def test_the_camera_checks_a_client_in(kiosk_scene, live_server, playwright_instance, tmp_path, app):
    clip = tmp_path / "card.y4m"
    write_y4m(clip, kiosk_scene.card(kiosk_scene.maria))
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={clip}"])
    try:
        context = browser.new_context(viewport={"width": 1024, "height": 768})
        context.set_default_timeout(15_000)
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        decoder_loaded = []
        page.on("request", lambda request: decoder_loaded.append(request.url) if "jsQR" in request.url else None)
        open_kiosk(page, live_server, kiosk_scene)
        assert decoder_loaded == []  # the decoder loads only when the camera is asked for
        page.get_by_role("button", name="Use the camera").click()
        expect(page.locator("#state-in").get_by_role("heading")).to_have_text("Welcome, Maria G.")
        assert decoder_loaded and all(url.startswith(live_server.url) for url in decoder_loaded)
        assert page.evaluate("document.getElementById('camera-video').srcObject") is None  # camera released
        assert len(unvoided_attendances(app)) == 1
    finally:
        browser.close()


def test_a_slow_answer_shows_a_calm_spinner_then_the_greeting(kiosk_scene, live_server, page):
    open_kiosk(page, live_server, kiosk_scene)

    def slow(route):
        page.wait_for_timeout(800)
        route.continue_()

    page.route("**/kiosk/api/scan", slow)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#state-checking")).to_be_visible()
    expect(page.locator("#state-checking")).to_have_text("")  # a spinner, no words change
    expect(page.locator("#state-in").get_by_role("heading")).to_have_text("Welcome, Maria G.")


def test_reduced_motion_stills_the_page_and_portrait_fits(kiosk_scene, live_server, page):
    page.emulate_media(reduced_motion="reduce")
    page.set_viewport_size({"width": 768, "height": 1024})
    open_kiosk(page, live_server, kiosk_scene)
    moving = page.locator(".card-picture-card").evaluate("el => getComputedStyle(el).animationName")
    assert moving == "none"
    for name in ("Forgot your card?", "Use the camera"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box["y"] + box["height"] <= 1024 and box["x"] >= 0 and box["x"] + box["width"] <= 768


def test_the_week_reads_at_a_glance_with_a_mark_and_words_when_the_goal_is_met(kiosk_scene, live_server, page,
                                                                                world, freeze):
    monday, wednesday, friday = (kiosk_scene.day + timedelta(days=n) for n in (0, 2, 4))
    ana = world.client("C2", "Ana", "Lopez", groups=[kiosk_scene.group], plan_start=monday - timedelta(days=14),
                       weekly_hours=5)
    for day in (monday, wednesday):
        world.attendance(ana, world.session(kiosk_scene.group, day, status="closed"), local(day, 9), local(day, 12))
    freeze(local(friday, 9, 5))
    open_kiosk(page, live_server, kiosk_scene)
    scan_like_a_scanner(page, kiosk_scene.card(ana))
    greeting = page.locator("#state-in")
    expect(greeting.locator(".week-text")).to_have_text("✓Goal met: 6 h this week — your goal is 5 h")
    expect(greeting.locator(".week-mark")).to_be_visible()
    bar = greeting.get_by_role("progressbar", name="Your hours this week")
    expect(bar).to_have_attribute("aria-valuetext", "Goal met: 6 h this week — your goal is 5 h")
    assert_accessible(page, "the kiosk's checked-in state, goal met")

    expect(page.locator("#state-ready")).to_be_visible(timeout=8000)
    page.get_by_role("button", name="Español").click()
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))  # 0 of 9 h: no mark, the plain sentence
    expect(greeting.locator(".week-text")).to_have_text("0 min esta semana — su meta es 9 h")
    expect(greeting.locator(".week-mark")).to_be_hidden()
    expect(greeting.get_by_role("progressbar", name="Sus horas de esta semana")).to_be_visible()


# ---- "Leaving now?": a second scan asks before it checks out ---------------------------------------

def checked_in_an_hour_ago(kiosk_scene, live_server, page, app):
    """Maria checked in at 9:05 on this kiosk; now it is 10:05 and the page's clock can be driven."""
    page.clock.install()
    open_kiosk(page, live_server, kiosk_scene)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#state-in")).to_be_visible()
    page.clock.run_for(6000)
    expect(page.locator("#state-ready")).to_be_visible()
    clock.advance(timedelta(hours=1))
    [record] = unvoided_attendances(app)
    return record


def test_a_second_scan_asks_and_stay_writes_nothing(kiosk_scene, live_server, page, app):
    checked_in_an_hour_ago(kiosk_scene, live_server, page, app)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    question = page.locator("#state-confirm")
    expect(question).to_be_visible()
    expect(question.get_by_role("heading")).to_have_text(ASKED_ABOUT_9_05)
    expect(question).to_contain_text("Maria G.")
    leave = question.get_by_role("button", name="Check out")
    stay = question.get_by_role("button", name="Stay")
    assert leave.bounding_box()["height"] >= 88 and leave.bounding_box()["width"] >= 200  # large, easy to hit
    assert stay.bounding_box()["height"] >= 48
    assert_accessible(page, "the kiosk's question before a check-out")
    stay.click()
    expect(page.locator("#state-ready")).to_be_visible()
    assert "Maria" not in page.content()
    expect(page.get_by_label(re.compile("card", re.I))).to_be_focused()
    [record] = unvoided_attendances(app)
    assert record.check_out_at is None


def test_the_question_goes_after_eight_seconds_and_nothing_is_written(kiosk_scene, live_server, page, app):
    checked_in_an_hour_ago(kiosk_scene, live_server, page, app)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#state-confirm")).to_be_visible()
    page.clock.run_for(7500)
    expect(page.locator("#state-confirm")).to_be_visible()  # still asking at 7.5 s
    page.clock.run_for(600)
    expect(page.locator("#state-ready")).to_be_visible()
    assert "Maria" not in page.content()
    [record] = unvoided_attendances(app)
    assert record.check_out_at is None


def test_the_same_card_again_on_the_question_checks_out(kiosk_scene, live_server, page, app):
    checked_in_an_hour_ago(kiosk_scene, live_server, page, app)
    code = kiosk_scene.card(kiosk_scene.maria)
    scan_like_a_scanner(page, code)
    expect(page.locator("#state-confirm")).to_be_visible()
    page.clock.run_for(4000)  # a person, not the scanner reading one card twice
    scan_like_a_scanner(page, code)
    goodbye = page.locator("#state-out")
    expect(goodbye.get_by_role("heading")).to_have_text("See you next time, Maria G.")
    expect(goodbye).to_contain_text("Today: 1 h")
    [record] = unvoided_attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 10, 5).astimezone(timezone.utc)
    assert record.check_out_source == "kiosk"


def test_another_card_on_the_question_is_a_new_scan(kiosk_scene, live_server, page, app, world):
    james = world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group], plan_start=kiosk_scene.day)
    checked_in_an_hour_ago(kiosk_scene, live_server, page, app)
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    expect(page.locator("#state-confirm")).to_be_visible()
    scan_like_a_scanner(page, kiosk_scene.card(james))
    expect(page.locator("#state-in").get_by_role("heading")).to_have_text("Welcome, James W.")
    assert "Maria" not in page.content()
    records = unvoided_attendances(app)
    assert {r.client_key for r in records} == {kiosk_scene.maria.id, james.id}
    assert all(r.check_out_at is None for r in records)  # Maria is still in


def test_the_question_in_spanish(kiosk_scene, live_server, page, app):
    checked_in_an_hour_ago(kiosk_scene, live_server, page, app)
    page.get_by_role("button", name="Español").click()
    scan_like_a_scanner(page, kiosk_scene.card(kiosk_scene.maria))
    question = page.locator("#state-confirm")
    expect(question.get_by_role("heading")).to_have_text("Registró su llegada a las 9:05. ¿Se va ahora?")
    expect(question.get_by_role("button", name="Registrar salida")).to_be_visible()
    expect(question.get_by_role("button", name="Me quedo")).to_be_visible()
    assert_accessible(page, "the kiosk's question before a check-out, in Spanish")
    page.get_by_role("button", name="English").click()  # switched while asking: the question follows
    expect(question.get_by_role("heading")).to_have_text(ASKED_ABOUT_9_05)
    expect(question.get_by_role("button", name="Check out")).to_be_visible()


def twenty_minutes_on_one_leaves_one_stays(page, kiosk_scene, leaving, staying):
    """Twenty minutes after their 9:05 check-ins, the network still gone, both scan again and are asked:
    `leaving` presses "Check out" (kept to send), `staying` presses "Stay" (nothing kept)."""
    page.clock.fast_forward("20:00")
    clock.advance(timedelta(minutes=20))
    question = page.locator("#state-confirm")
    for person, choice in ((leaving, "Check out"), (staying, "Stay")):
        scan_like_a_scanner(page, kiosk_scene.card(person))
        expect(question.get_by_role("heading")).to_have_text(ASKED_ABOUT_9_05)
        question.get_by_role("button", name=choice).click()
        expect(page.locator("#state-saved" if choice == "Check out" else "#state-ready")).to_be_visible()
        page.clock.run_for(5000)


def test_offline_the_person_chooses_and_the_choice_is_what_is_recorded(kiosk_scene, live_server, page, app):
    """A queued first scan, then a second scan while still offline: the kiosk asks; "Check out" is queued
    and recorded at its own time when the network is back; "Stay" queues nothing."""
    james = kiosk_scene.world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group],
                                     plan_start=kiosk_scene.day)
    page.clock.install()
    open_kiosk(page, live_server, kiosk_scene)
    # Offline is every request failing: the heartbeat's status too, so the kiosk keeps the clock offset
    # it had (a status answered mid fast-forward would set it from a server clock not yet moved on).
    page.route("**/kiosk/api/**", lambda route: route.abort("internetdisconnected"))
    for person in (kiosk_scene.maria, james):
        scan_like_a_scanner(page, kiosk_scene.card(person))
        expect(page.locator("#state-saved")).to_be_visible()
    expect(page.locator("#pending")).to_have_text(re.compile("2 waiting to sync"))
    twenty_minutes_on_one_leaves_one_stays(page, kiosk_scene, leaving=kiosk_scene.maria, staying=james)
    expect(page.locator("#pending")).to_have_text(re.compile("3 waiting to sync"))  # nothing queued for James
    assert unvoided_attendances(app) == []

    page.unroute("**/kiosk/api/**")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#pending")).to_be_hidden(timeout=10_000)
    records = {r.client_key: r for r in unvoided_attendances(app)}
    arrived = records[kiosk_scene.maria.id].check_in_at
    assert local(kiosk_scene.day, 9, 5) <= arrived <= local(kiosk_scene.day, 9, 6)  # when she scanned, offline
    left = records[kiosk_scene.maria.id].check_out_at
    assert local(kiosk_scene.day, 9, 25) <= left <= local(kiosk_scene.day, 9, 26)  # when she pressed it
    assert records[james.id].check_out_at is None


def test_offline_a_card_checked_in_online_is_asked_about_too(kiosk_scene, live_server, page, app):
    """Checked in while the network was up, the same card scanned again after it went asks "Leaving now?"
    as the server would: "Check out" is queued and recorded at its own time; "Stay" queues nothing; once
    the session has ended the card is not asked about (the close checks everyone out)."""
    james = kiosk_scene.world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group],
                                     plan_start=kiosk_scene.day)
    page.clock.install()
    open_kiosk(page, live_server, kiosk_scene)
    for person in (kiosk_scene.maria, james):  # online at 9:05: the server checks them in
        scan_like_a_scanner(page, kiosk_scene.card(person))
        expect(page.locator("#state-in")).to_be_visible()
        page.clock.run_for(6000)
        expect(page.locator("#state-ready")).to_be_visible()
    assert len(unvoided_attendances(app)) == 2

    page.route("**/kiosk/api/**", lambda route: route.abort("internetdisconnected"))  # the network goes
    twenty_minutes_on_one_leaves_one_stays(page, kiosk_scene, leaving=kiosk_scene.maria, staying=james)
    expect(page.locator("#pending")).to_have_text(re.compile("1 waiting to sync"))  # nothing queued for James

    page.unroute("**/kiosk/api/**")
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#pending")).to_be_hidden(timeout=10_000)
    records = {r.client_key: r for r in unvoided_attendances(app)}
    left = records[kiosk_scene.maria.id].check_out_at
    assert local(kiosk_scene.day, 9, 25) <= left <= local(kiosk_scene.day, 9, 26)  # when she pressed it
    assert records[james.id].check_out_at is None

    # After the group's end (12:00) the kiosk no longer asks about James's check-in: the scan waits plainly.
    page.route("**/kiosk/api/**", lambda route: route.abort("internetdisconnected"))
    page.clock.fast_forward("02:45:00")
    scan_like_a_scanner(page, kiosk_scene.card(james))
    expect(page.locator("#state-saved")).to_be_visible()
    expect(page.locator("#pending")).to_have_text(re.compile("1 waiting to sync"))


def test_offline_a_card_the_server_said_is_out_is_not_asked_about(kiosk_scene, live_server, page, app):
    """Checked in here, then out at another kiosk: this kiosk, told so when the card is scanned here again,
    no longer asks "Leaving now?" about that check-in once the network is gone."""
    page.clock.install()
    open_kiosk(page, live_server, kiosk_scene)
    code = kiosk_scene.card(kiosk_scene.maria)
    scan_like_a_scanner(page, code)
    expect(page.locator("#state-in")).to_be_visible()
    page.clock.run_for(6000)
    clock.advance(timedelta(minutes=10))
    elsewhere = kiosk_scene.scan(code, action="check_out")  # the front desk's other kiosk
    assert elsewhere.get_json()["result"] == "checked_out"
    scan_like_a_scanner(page, code)
    expect(page.locator("#state-problem")).to_be_visible()  # already checked out

    page.route("**/kiosk/api/**", lambda route: route.abort("internetdisconnected"))
    page.clock.fast_forward("20:00")
    clock.advance(timedelta(minutes=20))
    scan_like_a_scanner(page, code)
    expect(page.locator("#state-saved")).to_be_visible()
    expect(page.locator("#state-confirm")).to_be_hidden()

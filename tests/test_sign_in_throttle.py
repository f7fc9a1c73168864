"""Sign-in slow-down without lockout abuse or user enumeration: failures make the next try wait, for
the username tried from that address and for the address; a stranger elsewhere cannot make the real
person wait; a username that exists and one that does not get the same words, status and work; every
failed sign-in is audited without the password; an admin lifts a slow-down (audited). The counts are
in the database, shared by every process. X-Forwarded-For counts only when a proxy is trusted."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from iop import clock, create_app
from iop.clinic import sign_in_throttle
from iop.clinic.sign_in_throttle import ADDRESS, PAIR, wait_after
from iop.store import db
from iop.store.models import AuditEvent

START = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
ALERT = re.compile(r'<p class="alert" role="alert">(.*?)</p>', re.S)


@pytest.fixture(autouse=True)
def frozen(freeze):
    freeze(START)


def from_address(app, address: str, **environ):
    http = app.test_client()
    http.environ_base.update(REMOTE_ADDR=address, **environ)
    return http


def try_sign_in(http, username, password, headers=None):
    token = csrf_from(http.get("/login").get_data(as_text=True))
    return http.post("/login", data={"username": username, "password": password, "csrf_token": token},
                     headers=headers or {})


def words(response) -> str:
    found = ALERT.search(response.get_data(as_text=True))
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


def test_the_wait_grows_after_the_free_tries_and_stops_growing():
    assert [wait_after(n, PAIR).total_seconds() for n in range(0, 9)] == [0, 0, 0, 0, 0, 0, 2, 4, 8]
    assert wait_after(40, PAIR) == PAIR.longest == timedelta(minutes=15)
    assert wait_after(ADDRESS.free, ADDRESS) == timedelta(0) and wait_after(99, ADDRESS) == timedelta(minutes=5)


def test_wrong_passwords_slow_that_username_from_that_address_then_it_works_again(app, auth):
    auth.make_user()
    desk = from_address(app, "10.0.0.5")
    for _ in range(PAIR.free + 1):
        assert try_sign_in(desk, "dana", "wrong password").status_code == 401
    slowed = try_sign_in(desk, "dana", "correct horse 1")  # even the right password waits now
    assert slowed.status_code == 429 and "Too many tries. Please wait 2 seconds" in words(slowed)
    assert slowed.headers["Retry-After"] == "2"
    clock.advance(timedelta(seconds=3))
    assert try_sign_in(desk, "dana", "correct horse 1").status_code == 302


def test_a_stranger_elsewhere_cannot_make_the_real_person_wait(app, auth):
    auth.make_user()
    stranger = from_address(app, "203.0.113.9")
    for _ in range(30):
        try_sign_in(stranger, "dana", "guess guess guess")
    assert try_sign_in(stranger, "dana", "correct horse 1").status_code == 429
    assert try_sign_in(from_address(app, "10.0.0.5"), "dana", "correct horse 1").status_code == 302


def test_an_address_trying_many_usernames_is_slowed_for_all_of_them(app, auth):
    auth.make_user()
    sprayer = from_address(app, "198.51.100.7")
    for n in range(ADDRESS.free + 1):
        assert try_sign_in(sprayer, f"user{n}", "Winter2026!!").status_code == 401
    assert try_sign_in(sprayer, "dana", "correct horse 1").status_code == 429
    assert try_sign_in(from_address(app, "10.0.0.5"), "dana", "correct horse 1").status_code == 302


def test_a_known_and_an_unknown_username_get_the_same_words_status_and_work(app, auth, monkeypatch):
    from iop.clinic import staff

    auth.make_user()
    checks = []
    real = staff.check_password_hash
    monkeypatch.setattr(staff, "check_password_hash", lambda stored, given: checks.append(1) or real(stored, given))
    answers = {}
    for username in ("dana", "nobody"):
        http = from_address(app, f"10.0.1.{len(answers) + 1}")
        checks.clear()
        wrong = try_sign_in(http, username, "wrong password")
        answers[username] = [(wrong.status_code, words(wrong), len(checks))]
        for _ in range(PAIR.free):
            try_sign_in(http, username, "wrong password")
        checks.clear()
        slowed = try_sign_in(http, username, "wrong password")
        answers[username].append((slowed.status_code, words(slowed), len(checks)))
    assert answers["dana"] == answers["nobody"]
    assert answers["dana"][0] == (401, "⚠ That username and password do not match.", 1)  # one hash check each
    assert answers["dana"][1][0] == 429 and answers["dana"][1][2] == 0


def test_a_deactivated_account_gets_the_same_words_as_a_wrong_password(app, auth, runner):
    auth.make_user()
    assert runner.invoke(args=["user", "deactivate", "dana"]).exit_code == 0
    refused = try_sign_in(from_address(app, "10.0.0.5"), "dana", "correct horse 1")
    assert refused.status_code == 401 and words(refused) == "⚠ That username and password do not match."


def test_every_failed_sign_in_is_audited_without_the_password(app, auth):
    auth.make_user()
    desk = from_address(app, "10.0.0.5")
    for username in ("dana", "nobody", "dana"):
        try_sign_in(desk, username, "hunter2 secret words")
    for _ in range(PAIR.free):
        try_sign_in(desk, "dana", "hunter2 secret words")
    try_sign_in(desk, "dana", "hunter2 secret words")  # slowed down: audited too
    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "staff.sign_in_failed")
                                      .order_by(AuditEvent.id)).all()
        dana_id = db.session().scalar(select(AuditEvent.target).where(AuditEvent.action == "staff.created"))
    assert len(events) == 3 + PAIR.free + 1
    assert [(e.detail["username_tried"], e.detail["address"], e.detail["why"]) for e in events[:3]] == [
        ("dana", "10.0.0.5", "wrong_password"), ("nobody", "10.0.0.5", "unknown_username"),
        ("dana", "10.0.0.5", "wrong_password")]
    assert events[-1].detail["why"] == "slowed_down"
    assert events[0].target == dana_id and events[1].target == ""
    assert all(e.user_id is None and e.at == START for e in events)
    assert not any("hunter2" in json.dumps(e.detail) for e in events)


def test_an_admin_lifts_a_slow_down_on_the_staff_page_and_it_is_audited(app, auth):
    auth.make_user()
    desk = from_address(app, "10.0.0.5")
    for _ in range(PAIR.free + 3):
        try_sign_in(desk, "dana", "wrong password")
    assert try_sign_in(desk, "dana", "correct horse 1").status_code == 429
    admin = app.test_client()
    AuthActions(admin, app).login("root", role="admin")
    page = admin.get("/coordinator/staff").get_data(as_text=True)
    assert "Sign-in slowed down" in page
    dana_link = re.search(r'href="(/coordinator/staff/\d+)">Change<span class="visually-hidden"> Dana', page).group(1)
    member = admin.get(dana_link).get_data(as_text=True)
    lifted = admin.post(dana_link + "/unlock", data={"csrf_token": csrf_from(member)})
    assert lifted.status_code == 302
    assert try_sign_in(desk, "dana", "correct horse 1").status_code == 302
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "staff.unlocked"))
    assert event.username == "root" and event.detail["cleared"] == 1


def test_the_counts_are_shared_by_every_process(app, app_config, auth):
    """A second app on the same database (another server process) sees the same slow-down."""
    auth.make_user()
    other = create_app(app_config)
    try:
        for _ in range(PAIR.free + 1):
            try_sign_in(from_address(app, "10.0.0.5"), "dana", "wrong password")
        assert try_sign_in(from_address(other, "10.0.0.5"), "dana", "correct horse 1").status_code == 429
    finally:
        db.database(other).engine.dispose()


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(app, app_config, auth):
    auth.make_user()
    direct = from_address(app, "10.0.0.5")
    for n in range(PAIR.free + 1):  # each try claims another address: all count for the real one
        try_sign_in(direct, "dana", "wrong password", headers={"X-Forwarded-For": f"192.0.2.{n}"})
    assert try_sign_in(direct, "dana", "correct horse 1", headers={"X-Forwarded-For": "192.0.2.99"}).status_code == 429
    with app.app_context():
        assert {e.detail["address"] for e in db.session().scalars(
            select(AuditEvent).where(AuditEvent.action == "staff.sign_in_failed"))} == {"10.0.0.5"}

    behind_proxy = create_app({**app_config, "PROXY_HOPS": 1})
    try:
        nginx = from_address(behind_proxy, "127.0.0.1")
        answer = try_sign_in(nginx, "dana", "correct horse 1", headers={"X-Forwarded-For": "10.0.0.77"})
        assert answer.status_code == 302  # another browser behind the proxy: its own address, not slowed
        with behind_proxy.app_context():
            event = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "staff.sign_in")
                                         .order_by(AuditEvent.id.desc())).first()
        assert event.detail["address"] == "10.0.0.77"
    finally:
        db.database(behind_proxy).engine.dispose()


def test_counts_are_forgotten_after_an_hour_without_failures(app, auth):
    auth.make_user()
    desk = from_address(app, "10.0.0.5")
    for _ in range(PAIR.free):
        try_sign_in(desk, "dana", "wrong password")
    clock.advance(timedelta(hours=1, minutes=1))
    assert try_sign_in(desk, "dana", "wrong password").status_code == 401  # counted from 1 again: no wait
    assert try_sign_in(desk, "dana", "correct horse 1").status_code == 302
    with app.app_context():
        assert sign_in_throttle.seconds_to_wait("dana", "10.0.0.5", clock.now()) == 0

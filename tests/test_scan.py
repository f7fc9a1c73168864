"""POST /kiosk/api/scan as docs/interface.md has it: check in, check out, retries, and every bad input."""
from __future__ import annotations

import io
import json
from datetime import timedelta, timezone

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from helpers.world import local
from iop import clock
from iop.store import db
from iop.store.models import Attendance, AuditEvent, Client, GroupSession, KioskDevice, Scan


def attendances(app, client_key=None):
    with app.app_context():
        query = select(Attendance).where(Attendance.voided_at.is_(None))
        if client_key is not None:
            query = query.where(Attendance.client_key == client_key)
        return db.session().scalars(query.order_by(Attendance.id)).all()


def scan_rows(app):
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(Scan))


def assert_refused(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert message and code not in message  # words for the person, not the code
    text = response.get_data(as_text=True)
    assert "Gonzalez" not in text and "Maria" not in text  # an error never names anyone
    return body


# ---- the happy path ------------------------------------------------------------------------------

def test_first_scan_checks_in_with_the_contract_shape(kiosk_scene, app):
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "checked_in"
    assert body["client"] == {"display_name": "Maria G."}
    assert body["session"]["group"] == "Morning Relapse Prevention"
    assert body["session"]["room"] == "Room B"
    assert (body["session"]["starts"], body["session"]["ends"]) == ("09:00", "12:00")
    assert isinstance(body["session"]["id"], int)
    assert body["week"] == {"attended_minutes": 0, "target_minutes": 540}
    assert "Gonzalez" not in response.get_data(as_text=True)
    [record] = attendances(app)
    assert record.check_in_at == local(kiosk_scene.day, 9, 5).astimezone(timezone.utc)
    assert record.source == "kiosk" and record.check_out_at is None


def test_repeat_within_five_minutes_writes_nothing(kiosk_scene, app, freeze):
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=4, seconds=59))
    body = kiosk_scene.scan(code).get_json()
    assert body["result"] == "already_checked_in"
    [record] = attendances(app)
    assert record.check_out_at is None


def test_a_second_scan_after_five_minutes_asks_and_writes_nothing(kiosk_scene, app):
    """Checked out by mistake (issue 12): a second scan asks "Leaving now?" instead of checking out."""
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=5))  # 9:10
    response = kiosk_scene.scan(code)
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "confirm_check_out"
    assert body["client"] == {"display_name": "Maria G."}
    assert body["check_in_at"] == "2026-03-02T09:05:00-05:00"  # the program's local time, for "You checked in at 9:05"
    assert body["session"]["group"] == "Morning Relapse Prevention"
    assert "Gonzalez" not in response.get_data(as_text=True)
    [record] = attendances(app)
    assert record.check_out_at is None  # nothing written
    clock.advance(timedelta(minutes=1))
    assert kiosk_scene.scan(code).get_json()["result"] == "confirm_check_out"  # asked again, still nothing written
    assert attendances(app)[0].check_out_at is None


def test_a_scan_with_action_check_out_checks_out_and_reports_minutes(kiosk_scene, app, monkeypatch):
    from iop.live import roster

    published = []
    monkeypatch.setattr(roster, "publish", published.append)
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(hours=2))  # 11:05
    assert kiosk_scene.scan(code).get_json()["result"] == "confirm_check_out"
    response = kiosk_scene.scan(code, action="check_out")
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "checked_out"
    assert body["client"] == {"display_name": "Maria G."}
    assert body["today"]["attended_minutes"] == 120  # 9:05 to 11:05, whole minutes
    assert body["week"]["attended_minutes"] == 120
    [record] = attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 11, 5).astimezone(timezone.utc)
    assert record.check_out_source == "kiosk"
    assert published == [body["session"]["id"]] * 2  # the check-in and the check-out; the question changed nothing


def test_a_confirmed_check_out_sent_again_is_answered_the_same_and_counted_once(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=30))  # 9:35
    first = kiosk_scene.scan(code, scan_id="leaving-0001", action="check_out")
    clock.advance(timedelta(minutes=10))  # the kiosk's retry, later: the stored answer, nothing moved
    second = kiosk_scene.scan(code, scan_id="leaving-0001", action="check_out")
    assert first.status_code == second.status_code == 200
    assert second.get_json() == first.get_json() and first.get_json()["result"] == "checked_out"
    [record] = attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 9, 35).astimezone(timezone.utc)
    assert scan_rows(app) == 2


def test_a_check_out_within_five_minutes_is_what_the_person_chose(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=1))
    assert kiosk_scene.scan(code, action="check_out").get_json()["result"] == "checked_out"
    [record] = attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 9, 6).astimezone(timezone.utc)


def test_a_check_out_without_a_check_in_is_refused_and_writes_nothing(kiosk_scene, app):
    body = assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), action="check_out"), 409,
                          "not_checked_in")
    assert "staff" in body["error"]["message"]
    assert attendances(app) == []


@pytest.mark.parametrize("action", ["leave", "", "CHECK_OUT", None, 1, ["check_out"], {"check_out": True}])
def test_an_unknown_action_is_a_bad_request(kiosk_scene, app, action):
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), action=action), 400, "bad_request")
    assert attendances(app) == [] and scan_rows(app) == 0


def test_a_scan_after_check_out_is_refused_and_makes_no_second_attendance(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=30))
    kiosk_scene.scan(code, action="check_out")
    clock.advance(timedelta(minutes=30))
    assert_refused(kiosk_scene.scan(code), 409, "already_checked_out")
    assert_refused(kiosk_scene.scan(code, action="check_out"), 409, "already_checked_out")
    [record] = attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 9, 35).astimezone(timezone.utc)


def test_session_opens_thirty_minutes_before_start(kiosk_scene, app, freeze):
    freeze(local(kiosk_scene.day, 8, 30))
    assert kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()["result"] == "checked_in"


def test_week_figures_include_earlier_days(kiosk_scene, app, world):
    earlier = world.session(kiosk_scene.group, kiosk_scene.day - timedelta(days=5), status="closed")  # last Wed
    world.attendance(kiosk_scene.maria, earlier, local(kiosk_scene.day - timedelta(days=5), 9),
                     local(kiosk_scene.day - timedelta(days=5), 12))
    same_week = world.session(kiosk_scene.group, kiosk_scene.day, status="open")
    assert same_week.id
    body = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()
    assert body["week"] == {"attended_minutes": 0, "target_minutes": 540}  # last week is not this week


def test_each_successful_scan_publishes_the_roster_after_commit(kiosk_scene, app, monkeypatch):
    from iop.live import roster

    seen = []

    def publish(session_id):
        with app.app_context():  # the attendance is already committed when the roster is told
            seen.append((session_id, len(attendances(app))))

    monkeypatch.setattr(roster, "publish", publish)
    code = kiosk_scene.card(kiosk_scene.maria)
    body = kiosk_scene.scan(code).get_json()
    assert seen == [(body["session"]["id"], 1)]
    kiosk_scene.scan(code)  # already here: nothing changed, nothing to publish
    assert len(seen) == 1


def test_a_failing_roster_publish_does_not_undo_the_check_in(kiosk_scene, app, monkeypatch):
    from iop.live import roster

    def broken(_session_id):
        raise RuntimeError("socket down")

    monkeypatch.setattr(roster, "publish", broken)
    assert kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).status_code == 200
    assert len(attendances(app)) == 1


def test_scan_updates_the_kiosks_last_activity(kiosk_scene, app):
    clock.advance(timedelta(minutes=20))
    kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))
    with app.app_context():
        device = db.session().get(KioskDevice, kiosk_scene.device.id)
    assert device.last_seen_at == clock.now()


# ---- retries ---------------------------------------------------------------------------------------

def test_the_same_scan_id_twice_is_answered_the_same_and_counted_once(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    first = kiosk_scene.scan(code, scan_id="retry-0001")
    clock.advance(timedelta(minutes=10))  # a retry long after: still the stored answer, not a check-out
    second = kiosk_scene.scan(code, scan_id="retry-0001")
    assert second.status_code == first.status_code == 200
    assert second.get_json() == first.get_json()
    assert scan_rows(app) == 1
    [record] = attendances(app)
    assert record.check_out_at is None


def test_the_same_scan_id_from_another_kiosk_is_not_replayed(kiosk_scene, app, world):
    kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scan_id="shared-0001")
    _device, other_cookie = world.kiosk("Side door")
    from iop.clinic import kiosks

    kiosk_scene.http.set_cookie(kiosks.COOKIE_NAME, other_cookie, path="/kiosk")
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scan_id="shared-0001"), 400, "bad_request")


def test_a_stored_error_is_replayed_too(kiosk_scene, app):
    first = kiosk_scene.scan("not-a-card", scan_id="bad-card-01")
    second = kiosk_scene.scan("not-a-card", scan_id="bad-card-01")
    assert first.get_json() == second.get_json() and second.status_code == 404
    assert scan_rows(app) == 1


# ---- bad cards -------------------------------------------------------------------------------------

def test_forged_truncated_and_foreign_cards_are_unknown(kiosk_scene, app):
    good = kiosk_scene.card(kiosk_scene.maria)
    payload, signature = good.split(".")
    forged_payload = URLSafeSerializer("x").dumps([kiosk_scene.maria.id + 1, 1]).split(".")[0]
    foreign = URLSafeSerializer("some-other-program-secret", salt="iop.card.v1").dumps([kiosk_scene.maria.id, 1])
    for code in (forged_payload + "." + signature, good[:-3], payload, foreign, "", "x" * 300, "[1,1]"):
        assert_refused(kiosk_scene.scan(code), 404, "unknown_card")
        clock.advance(timedelta(seconds=16))  # stay under the bad-scan limit
    assert attendances(app) == []


def test_a_card_signed_with_a_retired_key_still_works(app_config, freeze):
    """IOP_SECRET_KEY_FALLBACKS: printed cards survive a key rotation."""
    from helpers.world import KioskScene, World, reset_schema
    from iop import create_app

    old_key = "old-key-" + "o" * 40
    rotated = create_app({**app_config, "SECRET_KEY_FALLBACKS": [old_key]})
    reset_schema(rotated)
    try:
        scene = KioskScene(rotated, World(rotated), rotated.test_client())
        freeze(local(scene.day, 9, 5))
        old_code = URLSafeSerializer(old_key, salt="iop.card.v1").dumps([scene.maria.id, 1])
        assert old_code != scene.card(scene.maria)
        assert scene.scan(old_code).get_json()["result"] == "checked_in"
    finally:
        db.database(rotated).engine.dispose()


def test_a_reissued_card_revokes_the_old_one(kiosk_scene, app, runner):
    old = kiosk_scene.card(kiosk_scene.maria)
    result = runner.invoke(args=["card-code", "C1", "--reissue"])
    assert result.exit_code == 0
    new = result.output.strip()
    assert new != old
    body = assert_refused(kiosk_scene.scan(old), 410, "revoked_card")
    assert "replaced" in body["error"]["message"]
    assert kiosk_scene.scan(new).get_json()["result"] == "checked_in"


def test_a_discharged_client_gets_clear_words(kiosk_scene, app, world):
    gone = world.client("C9", "Pat", "Lee", groups=[kiosk_scene.group], status="discharged")
    body = assert_refused(kiosk_scene.scan(kiosk_scene.card(gone)), 403, "inactive_client")
    assert "staff" in body["error"]["message"]
    assert "Pat" not in json.dumps(body)


def test_no_session_now(kiosk_scene, app, freeze):
    freeze(local(kiosk_scene.day, 13, 0))  # after the group ended
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)), 409, "no_session_now")
    freeze(local(kiosk_scene.day + timedelta(days=1), 9, 5))  # Tuesday: the group does not meet
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)), 409, "no_session_now")
    assert attendances(app) == []


def test_a_cancelled_session_takes_no_scans(kiosk_scene, app, world):
    world.session(kiosk_scene.group, kiosk_scene.day, status="cancelled")
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)), 409, "no_session_now")


def test_an_excused_record_sends_the_person_to_staff(kiosk_scene, app, world):
    group_session = world.session(kiosk_scene.group, kiosk_scene.day)
    world.attendance(kiosk_scene.maria, group_session, None, None, status="excused", source="manual")
    assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)), 409, "see_staff")


# ---- bad requests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "{not json", "[]", "null", '"a string"', '{"code": 5, "scan_id": "abcdefgh"}',
    '{"code": "x"}', '{"code": "x", "scan_id": "short"}', '{"code": "x", "scan_id": "has spaces in it"}',
    '{"code": "x", "scan_id": "' + "a" * 65 + '"}',
])
def test_malformed_requests_are_bad_requests(kiosk_scene, app, body):
    response = kiosk_scene.http.post("/kiosk/api/scan", data=body, content_type="application/json")
    assert_refused(response, 400, "bad_request")
    assert scan_rows(app) == 0


def test_a_form_post_is_refused(kiosk_scene, app):
    response = kiosk_scene.http.post("/kiosk/api/scan", data={"code": "x", "scan_id": "abcdefgh1"})
    assert_refused(response, 415, "bad_request")


def test_a_huge_body_is_refused_before_it_is_read(kiosk_scene, app):
    body = json.dumps({"code": "x" * 10_000, "scan_id": "abcdefgh1"})
    response = kiosk_scene.http.post("/kiosk/api/scan", data=body, content_type="application/json")
    assert_refused(response, 413, "bad_request")
    assert scan_rows(app) == 0


def test_a_huge_body_without_a_length_is_refused(kiosk_scene, app):
    """A chunked upload has no Content-Length; reading stops at the limit all the same."""
    body = io.BytesIO(json.dumps({"code": "x" * 20_000, "scan_id": "abcdefgh1"}).encode())
    response = kiosk_scene.http.post("/kiosk/api/scan", input_stream=body, content_type="application/json",
                                     environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("scanned_at", [
    "tomorrow", "2026-03-02T09:05:00",  # no zone
    "2026-03-02T14:07:00+00:00",  # two minutes ahead of the server (9:05 New York is 14:05 UTC)
    "2026-03-01T20:00:00+00:00",  # 18 hours old
    12345,
])
def test_scanned_at_in_the_future_or_too_old_is_refused(kiosk_scene, app, scanned_at):
    body = assert_refused(kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scanned_at=scanned_at), 422,
                          "scanned_at_invalid")
    assert body["error"]["message"]
    assert attendances(app) == []


def test_a_little_clock_skew_is_forgiven(kiosk_scene, app):
    ahead = (clock.now() + timedelta(seconds=30)).isoformat()
    assert kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scanned_at=ahead).status_code == 200
    [record] = attendances(app)
    assert record.check_in_at == clock.now()  # never recorded in the future


def test_unenrolled_and_revoked_kiosks_cannot_scan(kiosk_scene, app, client):
    from iop.clinic import kiosks

    code = kiosk_scene.card(kiosk_scene.maria)
    stranger = app.test_client()
    assert_refused(stranger.post("/kiosk/api/scan", json={"code": code, "scan_id": "abcdefgh1"}), 403, "not_enrolled")
    stranger.set_cookie(kiosks.COOKIE_NAME, "forged.cookie", path="/kiosk")
    assert_refused(stranger.post("/kiosk/api/scan", json={"code": code, "scan_id": "abcdefgh2"}), 403, "not_enrolled")
    with app.app_context():
        with db.transaction() as s:
            kiosks.revoke(s.get(KioskDevice, kiosk_scene.device.id))
    assert_refused(kiosk_scene.scan(code), 403, "not_enrolled")
    assert attendances(app) == []


def test_answers_are_in_spanish_when_the_kiosk_is(kiosk_scene, app):
    kiosk_scene.http.set_cookie("iop_kiosk_lang", "es", path="/kiosk")
    body = kiosk_scene.scan("nope").get_json()
    assert body["error"]["code"] == "unknown_card"
    assert "tarjeta" in body["error"]["message"]


# ---- slowing down bad scans -----------------------------------------------------------------------

def test_repeated_bad_scans_slow_the_kiosk_then_good_cards_work_again(kiosk_scene, app):
    good = kiosk_scene.card(kiosk_scene.maria)
    for attempt in range(5):
        assert kiosk_scene.scan(f"forged-{attempt}").status_code == 404
    assert_refused(kiosk_scene.scan(good), 429, "too_many_attempts")  # even a good card waits
    clock.advance(timedelta(seconds=29))
    assert kiosk_scene.scan(good).status_code == 429
    assert attendances(app) == []
    clock.advance(timedelta(seconds=2))
    assert kiosk_scene.scan(good).get_json()["result"] == "checked_in"


def test_the_slow_down_is_per_kiosk(kiosk_scene, app, world):
    from iop.clinic import kiosks

    for attempt in range(5):
        kiosk_scene.scan(f"forged-{attempt}")
    other = app.test_client()
    _device, cookie = world.kiosk("Side door")
    other.set_cookie(kiosks.COOKIE_NAME, cookie, path="/kiosk")
    answer = other.post("/kiosk/api/scan", json={"code": kiosk_scene.card(kiosk_scene.maria), "scan_id": "side-0001"})
    assert answer.get_json()["result"] == "checked_in"


def test_bad_scans_spread_over_time_are_not_slowed(kiosk_scene, app):
    for attempt in range(8):
        assert kiosk_scene.scan(f"forged-{attempt}").status_code == 404
        clock.advance(timedelta(seconds=20))


# ---- offline scans, replayed later -----------------------------------------------------------------

def test_an_offline_scan_is_recorded_at_its_own_time(kiosk_scene, app):
    scanned = local(kiosk_scene.day, 9, 2)
    clock.advance(timedelta(minutes=40))  # the network came back at 9:45
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scanned_at=scanned.isoformat())
    assert response.get_json()["result"] == "checked_in"
    [record] = attendances(app)
    assert record.check_in_at == scanned.astimezone(timezone.utc)


def test_offline_check_in_and_out_replayed_in_order(kiosk_scene, app):
    """A queued first scan, then the queued "Check out" the person pressed: recorded as chosen."""
    code = kiosk_scene.card(kiosk_scene.maria)
    clock.advance(timedelta(hours=4))  # 13:05, after the group ended
    first = kiosk_scene.scan(code, scanned_at=local(kiosk_scene.day, 9, 0).isoformat())
    second = kiosk_scene.scan(code, scanned_at=local(kiosk_scene.day, 11, 50).isoformat(), action="check_out")
    assert [first.get_json()["result"], second.get_json()["result"]] == ["checked_in", "checked_out"]
    [record] = attendances(app)
    assert (record.check_in_at, record.check_out_at) == (local(kiosk_scene.day, 9, 0).astimezone(timezone.utc),
                                                         local(kiosk_scene.day, 11, 50).astimezone(timezone.utc))


def test_an_unconfirmed_offline_second_scan_writes_no_check_out(kiosk_scene, app):
    """A second scan queued without the person's "Check out" is a question nobody answered: nothing."""
    code = kiosk_scene.card(kiosk_scene.maria)
    clock.advance(timedelta(hours=1))  # 10:05
    kiosk_scene.scan(code, scanned_at=local(kiosk_scene.day, 9, 0).isoformat())
    late = kiosk_scene.scan(code, scanned_at=local(kiosk_scene.day, 9, 40).isoformat())
    assert late.get_json()["result"] == "confirm_check_out"
    [record] = attendances(app)
    assert record.check_out_at is None


def test_the_scheduled_check_out_at_the_end_is_unchanged(kiosk_scene, app):
    """Rule 2: whoever did not check out is checked out when the session closes."""
    from iop.clinic import attendance

    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(minutes=30))
    assert kiosk_scene.scan(code).get_json()["result"] == "confirm_check_out"  # "Stay"
    with app.app_context():
        with db.transaction() as s:
            group_session = s.scalars(select(GroupSession).where(GroupSession.group_id == kiosk_scene.group.id)).one()
            attendance.close_session(group_session, local(kiosk_scene.day, 12, 10).astimezone(timezone.utc))
    [record] = attendances(app)
    assert record.check_out_at == local(kiosk_scene.day, 12, 0).astimezone(timezone.utc)
    assert record.check_out_source == "close"


def test_an_offline_check_in_replayed_after_the_session_closed(kiosk_scene, app):
    """Rule 2 still applies: recorded at its time, checked out at the close."""
    from iop.clinic import attendance
    from iop.clinic.sessions import ensure_session

    with app.app_context():
        with db.transaction() as s:
            from iop.store.models import Group

            group_session = ensure_session(s.get(Group, kiosk_scene.group.id), kiosk_scene.day)
            attendance.close_session(group_session, local(kiosk_scene.day, 11, 30).astimezone(timezone.utc))
    clock.advance(timedelta(hours=3))  # 12:05
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria),
                                scanned_at=local(kiosk_scene.day, 9, 10).isoformat())
    assert response.get_json()["result"] == "checked_in"
    [record] = attendances(app)
    assert record.check_in_at == local(kiosk_scene.day, 9, 10).astimezone(timezone.utc)
    assert record.check_out_at == local(kiosk_scene.day, 11, 30).astimezone(timezone.utc)
    assert record.check_out_source == "close"


def test_a_check_in_moves_the_client_out_of_an_earlier_open_session(kiosk_scene, app, world):
    """Attendance.check_in ends an open attendance elsewhere: a client is in one room at a time."""
    noon = world.group(code="NOON", name="Noon Group", room="Room A", start=local(kiosk_scene.day, 11).time(),
                       end=local(kiosk_scene.day, 13).time())
    with app.app_context():
        with db.transaction() as s:
            maria = s.get(Client, kiosk_scene.maria.id)
            maria.groups.append(s.get(type(noon), noon.id))
    code = kiosk_scene.card(kiosk_scene.maria)
    kiosk_scene.scan(code)
    clock.advance(timedelta(hours=3))  # 12:05: the morning group is over, the noon group runs
    body = kiosk_scene.scan(code).get_json()
    assert body["result"] == "checked_in" and body["session"]["group"] == "Noon Group"
    with app.app_context():
        sessions = {m.id: m.group_id for m in db.session().scalars(select(GroupSession))}
    records = attendances(app)
    assert len(records) == 2
    assert {sessions[r.session_id] for r in records} == {kiosk_scene.group.id, noon.id}


# ---- privacy ----------------------------------------------------------------------------------------

def test_no_full_name_or_other_client_in_any_answer_and_no_payload_in_logs(kiosk_scene, app, world, caplog):
    world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group], plan_start=kiosk_scene.day)
    code = kiosk_scene.card(kiosk_scene.maria)
    texts = [kiosk_scene.scan(code).get_data(as_text=True), kiosk_scene.scan(code).get_data(as_text=True),
             kiosk_scene.scan("bogus").get_data(as_text=True)]
    for text in texts:
        assert "Gonzalez" not in text and "James" not in text and "Whitfield" not in text
    assert code not in caplog.text and "Gonzalez" not in caplog.text


def test_reissue_is_audited(kiosk_scene, app, runner):
    runner.invoke(args=["card-code", "C1", "--reissue"])
    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.action == "card.reissue")).all()
    assert len(events) == 1 and events[0].target.startswith("client:") and "Maria" not in json.dumps(events[0].detail)

"""The facilitator's pages over HTTP: today's groups, the control page, attendance by hand, close,
the session summary and its note, the room display's link, and who may do what."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from helpers.world import LIVE_DAY, local
from iop import clock
from iop.clinic import attendance
from iop.live import facilitation
from iop.store import db, hours_queries
from iop.store.models import Attendance, AuditEvent, Client, GroupSession


def signed_in(app, username="dana", role="facilitator"):
    client = app.test_client()
    AuthActions(client, app).login(username, role=role)
    return client


def page_csrf(client, path) -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def records(app, session_id):
    with app.app_context():
        rows = db.session().scalars(select(Attendance).where(Attendance.session_id == session_id)
                                    .order_by(Attendance.id)).all()
        for row in rows:
            db.session().expunge(row)
        return rows


def audit_actions(app):
    with app.app_context():
        return [(e.action, e.username, e.detail) for e in db.session().scalars(select(AuditEvent).order_by(AuditEvent.id))]


def stored(app, session_id) -> GroupSession:
    with app.app_context():
        group_session = db.session().get(GroupSession, session_id)
        db.session().expunge(group_session)
        return group_session


def scan_in(app, session_id, client_id, at):
    with app.app_context():
        with db.transaction() as s:
            person = s.scalar(select(Client).where(Client.client_id == client_id))
            attendance.check_in(s.get(GroupSession, session_id), person, at)


def public_id(app, client_id):
    with app.app_context():
        return db.session().scalar(select(Client.public_id).where(Client.client_id == client_id))


# ---- today's groups ---------------------------------------------------------------------------

def test_home_lists_todays_groups_own_first_each_linking_to_its_control_page(app, live_group):
    theirs = live_group(code="AA-EARLY", facilitator="sam", members=(("C9", "Nina", "Volkova"),))
    mine = live_group()
    scan_in(app, mine.session_id, "C1", local(LIVE_DAY, 9, 1))
    client = signed_in(app)
    html = client.get("/facilitator/").get_data(as_text=True)
    links = re.findall(r'href="/facilitator/sessions/(\d+)"', html)
    assert links == [str(mine.session_id), str(theirs.session_id)]
    assert "Knowing Your Triggers" in html and "1 checked in" in html and "9:00 AM – 12:00 PM" in html
    assert "Run by Sam" in html


def test_home_makes_todays_sessions_from_the_schedule(app, world, auth, freeze):
    freeze(local(LIVE_DAY, 8))
    world.group(code="RP-AM")  # Mon Wed Fri: no session row yet
    auth.login("pat", role="coordinator")
    html = auth._client.get("/facilitator/").get_data(as_text=True)
    assert "Morning Relapse Prevention" in html and "Not started" in html


# ---- the control page -------------------------------------------------------------------------

def test_control_page_has_the_step_controls_roster_and_a_signed_room_display_link(app, live_group):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 9, 3))
    client = signed_in(app)
    html = client.get(f"/facilitator/sessions/{group.session_id}").get_data(as_text=True)
    assert re.search(r"<button[^>]*>Next</button>", html) and re.search(r"<button[^>]*>Previous</button>", html)
    assert "Opening check-in" in html and "Start on time" in html  # the step and its notes
    assert "Maria G." in html and "Gonzalez" not in html
    display = re.search(r'href="(/facilitator/display/[^"]+)"[^>]*>Room display</a>', html).group(1)
    shown = app.test_client().get(display)  # a TV: no staff cookie
    assert shown.status_code == 200
    assert re.search(r"<h1[^>]*>Opening check-in</h1>", shown.get_data(as_text=True))
    assert "Maria" not in shown.get_data(as_text=True) and "1</span> here" in shown.get_data(as_text=True)


def test_another_facilitator_gets_a_clear_refusal_and_a_coordinator_gets_the_page(app, live_group):
    group = live_group()
    live_group(code="TS-PM", facilitator="sam", members=())
    refused = signed_in(app, "sam").get(f"/facilitator/sessions/{group.session_id}")
    assert refused.status_code == 403 and "another facilitator" in refused.get_data(as_text=True)
    assert signed_in(app, "pat", "coordinator").get(f"/facilitator/sessions/{group.session_id}").status_code == 200
    assert signed_in(app, "dana").get("/facilitator/sessions/999").status_code == 404


def test_control_pages_need_a_sign_in(app, live_group):
    group = live_group()
    response = app.test_client().get(f"/facilitator/sessions/{group.session_id}")
    assert response.status_code == 302 and "/login" in response.location


# ---- attendance by hand -----------------------------------------------------------------------

def post_hand(http, session_id, csrf, **body):
    return http.post(f"/facilitator/sessions/{session_id}/attendance", json=body,
                       headers={"X-CSRFToken": csrf, "Accept": "application/json"})


def test_check_in_and_out_by_hand_are_recorded_and_audited_with_the_reason(app, live_group):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    maria = public_id(app, "C1")
    answer = post_hand(client, group.session_id, csrf, action="check_in", client=maria, reason="Forgot card", at="9:04")
    assert answer.status_code == 200 and answer.get_json()["message"] == "Maria G. is checked in at 9:04 AM."
    clock.advance(timedelta(minutes=10))  # (staff screens sign out after 15 idle minutes)
    answer = post_hand(client, group.session_id, csrf, action="check_out", client=maria, reason="Ride came early")
    assert answer.status_code == 200
    record, = records(app, group.session_id)
    assert record.source == "manual" and record.reason == "Forgot card" and record.check_out_source == "manual"
    assert record.check_in_at == local(LIVE_DAY, 9, 4) and record.check_out_at == local(LIVE_DAY, 9, 30)
    trail = [(action, user, detail["reason"]) for action, user, detail in audit_actions(app) if action.startswith("attendance")]
    assert trail == [("attendance.check_in", "dana", "Forgot card"), ("attendance.check_out", "dana", "Ride came early")]


def test_excused_needs_a_reason(app, live_group):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    james = public_id(app, "C2")
    refused = post_hand(client, group.session_id, csrf, action="excuse", client=james, reason="  ")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "reason_required"
    assert records(app, group.session_id) == []
    assert post_hand(client, group.session_id, csrf, action="excuse", client=james, reason="Court date").status_code == 200
    record, = records(app, group.session_id)
    assert record.status == "excused" and record.reason == "Court date"
    assert ("attendance.excuse", "dana", {"reason": "Court date", "session": group.session_id}) in [
        (a, u, {k: d[k] for k in ("reason", "session")}) for a, u, d in audit_actions(app) if a == "attendance.excuse"]


@pytest.mark.parametrize("reason, code, words", [
    ("Forgot\u202e card", "bad_reason", "The reason has a character that cannot be printed."),
    ("Forgot card\nand phone", "bad_reason", "The reason has a line break; it must be one line."),
    ("x" * 301, "reason_too_long", "The reason is longer than 300 characters."),
])
def test_a_reason_is_read_like_every_other_typed_line(app, live_group, reason, code, words):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    refused = post_hand(client, group.session_id, csrf, action="excuse", client=public_id(app, "C2"), reason=reason)
    assert refused.status_code == 400 and refused.get_json()["error"] == {"code": code, "message": words}
    assert records(app, group.session_id) == []
    fine = post_hand(client, group.session_id, csrf, action="excuse", client=public_id(app, "C2"),
                     reason="  Court dat\u0065\u0301  ")  # trimmed, and normalised (NFC)
    assert fine.status_code == 200
    record, = records(app, group.session_id)
    assert record.reason == "Court dat\u00e9"


def test_an_excused_client_who_comes_after_all_is_corrected_not_edited(app, live_group):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    james = public_id(app, "C2")
    post_hand(client, group.session_id, csrf, action="excuse", client=james, reason="Said he was sick")
    assert post_hand(client, group.session_id, csrf, action="check_in", client=james, reason="Came in").status_code == 200
    old, new = records(app, group.session_id)
    assert old.voided_at is not None and new.replaces_id == old.id and new.status == "present"


@pytest.mark.parametrize("body, code", [
    ({"action": "check_in", "client": "not-a-client"}, "unknown_client"),
    ({"action": "delete", "client": "x"}, "bad_request"),
    ({"action": "check_in", "client": "MARIA", "at": "25:99"}, "bad_time"),
    ({"action": "check_in", "client": "MARIA", "at": "11:30"}, "future_time"),
    ({"action": "check_out", "client": "MARIA"}, "not_checked_in"),
])
def test_bad_hand_requests_are_refused_in_words(app, live_group, body, code):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    body = {k: public_id(app, "C1") if v == "MARIA" else v for k, v in body.items()}
    answer = post_hand(client, group.session_id, csrf, **body)
    assert 400 <= answer.status_code < 500 and answer.get_json()["error"]["code"] == code
    assert answer.get_json()["error"]["message"]
    assert records(app, group.session_id) == []


def test_a_client_of_another_group_cannot_be_checked_in_here(app, live_group):
    group = live_group()
    live_group(code="TS-PM", members=(("C3", "Grace", "Kim"),))
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    answer = post_hand(client, group.session_id, csrf, action="check_in", client=public_id(app, "C3"))
    assert answer.get_json()["error"]["code"] == "unknown_client"


def test_hand_changes_need_the_csrf_token_and_the_right_facilitator(app, live_group):
    group = live_group()
    live_group(code="TS-PM", facilitator="sam", members=())
    client = signed_in(app)
    no_token = client.post(f"/facilitator/sessions/{group.session_id}/attendance",
                           json={"action": "check_in", "client": public_id(app, "C1")})
    assert no_token.status_code == 400
    stranger = signed_in(app, "sam")
    csrf = page_csrf(stranger, "/facilitator/")
    refused = post_hand(stranger, group.session_id, csrf, action="check_in", client=public_id(app, "C1"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_your_session"
    assert records(app, group.session_id) == []


def test_a_plain_form_post_works_without_javascript(app, live_group):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}")
    answer = client.post(f"/facilitator/sessions/{group.session_id}/attendance",
                         data={"csrf_token": csrf, "action": "check_in", "client": public_id(app, "C1")})
    assert answer.status_code == 303
    assert "Maria G. is checked in" in client.get(answer.location).get_data(as_text=True)


# ---- close and the summary --------------------------------------------------------------------

def close(client, session_id):
    csrf = page_csrf(client, "/facilitator/")
    return client.post(f"/facilitator/sessions/{session_id}/close", data={"csrf_token": csrf})


def test_close_checks_out_whoever_is_in_and_the_summary_matches_hours(app, live_group, freeze):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 8, 50))  # early: credited from 9:00
    scan_in(app, group.session_id, "C2", local(LIVE_DAY, 9, 25))  # late
    freeze(local(LIVE_DAY, 12, 20))  # closed after the scheduled end
    client = signed_in(app)
    answer = close(client, group.session_id)
    assert answer.status_code == 303 and answer.location.endswith(f"/facilitator/sessions/{group.session_id}/summary")
    maria, james = records(app, group.session_id)
    # Rule 2: the earlier of the close and the scheduled end.
    assert maria.check_out_at == james.check_out_at == local(LIVE_DAY, 12)
    assert maria.check_out_source == "close"
    group_session = stored(app, group.session_id)
    assert group_session.status == "closed" and group_session.closed_at == local(LIVE_DAY, 12, 20)

    html = client.get(answer.location).get_data(as_text=True)
    assert "1 client" not in html and "2 clients still checked in were checked out." in html
    shown = dict(re.findall(r"<td>([^<]+)</td>\s*<td>C\d</td>.*?data-minutes=\"(\d+)\"", html, re.S))
    with app.app_context():
        expected = {client_key: minutes for (client_key, _day), minutes in
                    hours_queries.minutes_by_client_day(LIVE_DAY, LIVE_DAY, clock.now()).items()}
    assert {int(v) for v in shown.values()} == set(expected.values()) == {180, 155}
    assert "Jordan" not in html and "Dana, LCSW" in html  # facilitator with credentials
    assert re.search(r"Headcount</dt><dd[^>]*>2<", html)
    assert "Late" in html and "Topic: Knowing Your Triggers." in html and "Participants: 2." in html


def test_closing_before_the_end_checks_out_at_the_close(app, live_group, freeze):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 9))
    freeze(local(LIVE_DAY, 11, 30))
    close(signed_in(app), group.session_id)
    record, = records(app, group.session_id)
    assert record.check_out_at == local(LIVE_DAY, 11, 30)


def test_a_second_close_is_a_clear_message_and_changes_nothing(app, live_group):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 9))
    client = signed_in(app)
    close(client, group.session_id)
    def changes():
        return [a for a in audit_actions(app) if a[0] != "session.summary_view"]

    before = (stored(app, group.session_id).closed_at, changes())
    clock.advance(timedelta(minutes=5))
    again = close(client, group.session_id)
    assert again.status_code == 303
    assert "already closed at 9:20 AM. Nothing changed." in client.get(again.location).get_data(as_text=True)
    assert (stored(app, group.session_id).closed_at, changes()) == before
    as_json = client.post(f"/facilitator/sessions/{group.session_id}/close", json={},
                          headers={"X-CSRFToken": page_csrf(client, "/facilitator/")})
    assert as_json.status_code == 409 and as_json.get_json()["error"]["code"] == "already_closed"


def test_only_the_sessions_facilitator_or_a_coordinator_may_close(app, live_group):
    group = live_group()
    live_group(code="TS-PM", facilitator="sam", members=())
    refused = close(signed_in(app, "sam"), group.session_id)
    assert refused.status_code == 303  # back to where they were, with the reason
    assert stored(app, group.session_id).status == "scheduled"
    coordinator = signed_in(app, "pat", "coordinator")
    close(coordinator, group.session_id)
    assert stored(app, group.session_id).status == "closed"
    assert coordinator.get(f"/facilitator/sessions/{group.session_id}/summary").status_code == 200
    assert signed_in(app, "sam").get(f"/facilitator/sessions/{group.session_id}/summary").status_code == 403


def test_the_group_note_is_drafted_saved_signed_then_locked(app, live_group):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 9))
    client = signed_in(app)
    close(client, group.session_id)
    summary_url = f"/facilitator/sessions/{group.session_id}/summary"
    html = client.get(summary_url).get_data(as_text=True)
    assert "Goals for this group:" in html and "Name at least three personal triggers." in html
    csrf = csrf_from(html)
    client.post(f"/facilitator/sessions/{group.session_id}/note",
                data={"csrf_token": csrf, "note_text": "Draft one.", "action": "save"})
    assert stored(app, group.session_id).note_text == "Draft one."
    assert stored(app, group.session_id).note_signed_at is None
    client.post(f"/facilitator/sessions/{group.session_id}/note",
                data={"csrf_token": csrf, "note_text": "Final note.\nAll engaged.", "action": "sign"})
    group_session = stored(app, group.session_id)
    assert group_session.note_text == "Final note.\nAll engaged." and group_session.note_signed_at == clock.now()
    assert group_session.note_signed_by_id == group.facilitator_id
    refused = client.post(f"/facilitator/sessions/{group.session_id}/note",
                          data={"csrf_token": csrf, "note_text": "Changed!", "action": "save"})
    assert "signed, so it can no longer be changed" in client.get(refused.location).get_data(as_text=True)
    assert stored(app, group.session_id).note_text == "Final note.\nAll engaged."
    actions = [a for a, _u, _d in audit_actions(app)]
    assert "session.note_saved" in actions and "session.note_signed" in actions
    assert "Signed</strong> by Dana, LCSW" in client.get(summary_url).get_data(as_text=True)


def test_an_empty_note_cannot_be_signed(app, live_group):
    group = live_group()
    client = signed_in(app)
    csrf = page_csrf(client, f"/facilitator/sessions/{group.session_id}/summary")
    client.post(f"/facilitator/sessions/{group.session_id}/note", data={"csrf_token": csrf, "note_text": " ", "action": "sign"})
    assert stored(app, group.session_id).note_signed_at is None


def test_a_note_keeps_its_lines_but_no_other_control_characters(app, live_group):
    group = live_group()
    client = signed_in(app)
    summary_url = f"/facilitator/sessions/{group.session_id}/summary"
    csrf = page_csrf(client, summary_url)
    refused = client.post(f"/facilitator/sessions/{group.session_id}/note",
                          data={"csrf_token": csrf, "note_text": "Goals met.\x1b[2J", "action": "save"})
    assert "The note has a character that cannot be printed." in client.get(refused.location).get_data(as_text=True)
    assert stored(app, group.session_id).note_text is None
    client.post(f"/facilitator/sessions/{group.session_id}/note",
                data={"csrf_token": csrf, "note_text": "Goals met.\r\n\tAll engaged.\r\n", "action": "save"})
    assert stored(app, group.session_id).note_text == "Goals met.\n\tAll engaged."


# ---- the module chooser -----------------------------------------------------------------------

def test_the_module_can_be_chosen_before_the_start_only(app, live_group):
    group = live_group()
    client = signed_in(app)
    url = f"/facilitator/sessions/{group.session_id}"
    html = client.get(url).get_data(as_text=True)
    assert 'name="module_id"' in html
    client.post(url + "/module", data={"csrf_token": csrf_from(html), "module_id": "rp-02-cravings-and-urges"})
    assert stored(app, group.session_id).module_id == "rp-02-cravings-and-urges"
    with app.app_context():
        with db.transaction() as s:
            facilitation.step_to(s.get(GroupSession, group.session_id), 0, s.get(facilitation.StaffUser, group.facilitator_id), clock.now())
    answer = client.post(url + "/module", data={"csrf_token": csrf_from(html), "module_id": "rp-01-triggers"})
    assert "already started" in client.get(answer.location).get_data(as_text=True)
    assert stored(app, group.session_id).module_id == "rp-02-cravings-and-urges"
    assert 'name="module_id"' not in client.get(url).get_data(as_text=True)


# ---- the room display page --------------------------------------------------------------------

def test_a_forged_display_link_gets_a_page_for_a_person(app, live_group):
    group = live_group()
    with app.app_context():
        token = facilitation.display_token(group.session_id)
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "nonsense", "x" * 500):
        answer = app.test_client().get(f"/facilitator/display/{bad}")
        assert answer.status_code == 403
        assert "not valid" in answer.get_data(as_text=True)


def test_a_display_link_ends_when_its_session_closes_or_its_time_is_past(app, live_group, freeze):
    group = live_group()
    with app.app_context():
        token = facilitation.display_token(group.session_id)
    tv = app.test_client()
    assert tv.get(f"/facilitator/display/{token}").status_code == 200
    freeze(local(LIVE_DAY, 13, 5))
    gone = tv.get(f"/facilitator/display/{token}")
    assert gone.status_code == 410 and "has ended" in gone.get_data(as_text=True)
    freeze(local(LIVE_DAY, 11))
    close(signed_in(app), group.session_id)
    assert tv.get(f"/facilitator/display/{token}").status_code == 410


def test_the_display_page_tells_no_one_anything_private(app, live_group):
    group = live_group()
    scan_in(app, group.session_id, "C1", local(LIVE_DAY, 9))
    with app.app_context():
        token = facilitation.display_token(group.session_id)
    answer = app.test_client().get(f"/facilitator/display/{token}?theme=dark")
    html = answer.get_data(as_text=True)
    assert 'class="face-display theme-dark"' in html
    assert "Maria" not in html and "Start on time" not in html  # no names, no presenter notes
    assert answer.headers["Referrer-Policy"] == "no-referrer" and answer.headers["Cache-Control"] == "no-store"

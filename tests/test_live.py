"""The live group over Socket.IO: join, state from the database, stepping, who may step, roster pushes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from helpers.web import AuthActions
from helpers.world import LIVE_DAY, local
from iop import clock, socketio
from iop.clinic import attendance
from iop.live import facilitation, roster
from iop.store import db
from iop.store.models import AuditEvent, Client, GroupSession, WeekFlag


def events(sio, name=None):
    received = sio.get_received()
    return [(e["name"], e["args"][0] if e["args"] else None) for e in received if name is None or e["name"] == name]


def staff_socket(app, username="dana", role="facilitator"):
    """A Socket.IO test client signed in as `username` (its own Flask test client and cookie)."""
    client = app.test_client()
    actions = AuthActions(client, app)
    actions.login(username, role=role)
    return socketio.test_client(app, flask_test_client=client)


def display_socket(app, session_id):
    with app.app_context():
        token = facilitation.display_token(session_id)
    return socketio.test_client(app, auth={"display_token": token})


def stored(app, session_id) -> GroupSession:
    with app.app_context():
        group_session = db.session().get(GroupSession, session_id)
        db.session().expunge(group_session)
        return group_session


def check_in(app, session_id, client_id, at):
    with app.app_context():
        with db.transaction() as s:
            group_session = s.get(GroupSession, session_id)
            person = s.query(Client).filter_by(client_id=client_id).one()
            attendance.check_in(group_session, person, at.astimezone(clock.now().tzinfo))
        roster.publish(session_id)


# ---- connecting and joining -------------------------------------------------------------------

def test_anonymous_socket_is_refused(app, live_group):
    live_group()
    anonymous = socketio.test_client(app)
    assert not anonymous.is_connected()


def test_forged_display_token_is_refused(app, live_group):
    group = live_group()
    forged = socketio.test_client(app, auth={"display_token": "eyJzIjox.forged"})
    assert not forged.is_connected()
    with app.app_context():
        other_salt = facilitation.display_token(group.session_id)[:-3] + "abc"
    assert not socketio.test_client(app, auth={"display_token": other_salt}).is_connected()


def test_staff_join_gets_the_state_from_the_database(app, live_group):
    group = live_group()
    sio = staff_socket(app)
    assert sio.is_connected()
    sio.emit("join", {"session_id": group.session_id})
    (name, state), = events(sio, "state")
    assert state["step_title"] == "Opening check-in"
    assert state["step_index"] == 0 and state["step_count"] == 7
    assert state["module_title"] == "Knowing Your Triggers"
    assert state["started"] is False and state["headcount"] == 0
    assert "Start on time" in state["notes"]  # the presenter notes reach the facilitator
    assert {e["name"] for e in state["roster"]["not_here"]} == {"Maria G.", "James W."}


def test_display_join_gets_the_step_but_no_notes_and_no_names(app, live_group):
    group = live_group()
    check_in(app, group.session_id, "C1", local(LIVE_DAY, 9, 2))
    display = display_socket(app, group.session_id)
    assert display.is_connected()
    display.emit("join", {"session_id": group.session_id})
    (name, state), = events(display, "state")
    assert state["step_title"] == "Opening check-in" and state["headcount"] == 1
    assert "notes" not in state and "roster" not in state
    assert "Maria" not in repr(state) and "Gonzalez" not in repr(state)


def test_a_display_follows_only_its_own_session(app, live_group):
    group = live_group()
    other = live_group(code="TS-PM", members=(("C3", "Grace", "Kim"),), module_id="ts-01-acceptance")
    display = display_socket(app, group.session_id)
    display.emit("join", {"session_id": other.session_id})
    (name, error), = events(display)
    assert name == "error" and error["code"] == "wrong_session"


# ---- stepping ---------------------------------------------------------------------------------

def test_next_and_previous_reach_the_sessions_room_only(app, live_group):
    group = live_group()
    other = live_group(code="TS-PM", members=(("C3", "Grace", "Kim"),), module_id="ts-01-acceptance")
    facilitator = staff_socket(app)
    facilitator.emit("join", {"session_id": group.session_id})
    display = display_socket(app, group.session_id)
    display.emit("join", {"session_id": group.session_id})
    elsewhere = staff_socket(app)
    elsewhere.emit("join", {"session_id": other.session_id})
    other_display = display_socket(app, other.session_id)
    other_display.emit("join", {"session_id": other.session_id})
    for sio in (facilitator, display, elsewhere, other_display):
        sio.get_received()

    facilitator.emit("step", {"session_id": group.session_id, "index": 1})  # Next
    (name, step), = events(display)
    assert name == "step" and step["step_title"] == "What is a trigger?" and step["step_index"] == 1
    assert "notes" not in step
    assert [n for n, _ in events(facilitator)] == ["step"]
    assert events(elsewhere) == [] and events(other_display) == []

    group_session = stored(app, group.session_id)
    assert group_session.current_step == 1 and group_session.status == "open"
    assert group_session.started_at == clock.now() and group_session.step_started_at == clock.now()

    clock.advance(timedelta(minutes=3))
    facilitator.emit("step", {"session_id": group.session_id, "index": 0})  # Previous
    (name, step), = events(display)
    assert step["step_title"] == "Opening check-in"
    group_session = stored(app, group.session_id)
    assert group_session.current_step == 0 and group_session.step_started_at == clock.now()
    assert group_session.started_at == clock.now() - timedelta(minutes=3)  # the first step change started it
    assert events(other_display) == []


def test_a_reconnecting_display_asks_for_state_and_gets_the_current_step(app, live_group):
    group = live_group()
    facilitator = staff_socket(app)
    facilitator.emit("join", {"session_id": group.session_id})
    facilitator.emit("step", {"session_id": group.session_id, "index": 2})
    display = display_socket(app, group.session_id)
    display.emit("state", {"session_id": group.session_id})
    (name, state), = events(display)
    assert state["step_title"] == "My trigger map" and state["step_started_at"] == clock.now().isoformat()


@pytest.mark.parametrize("index", [-1, 7, 10**12])
def test_an_index_out_of_range_is_refused(app, live_group, index):
    group = live_group()
    facilitator = staff_socket(app)
    facilitator.emit("join", {"session_id": group.session_id})
    facilitator.get_received()
    facilitator.emit("step", {"session_id": group.session_id, "index": index})
    (name, error), = events(facilitator)
    assert name == "error" and error["code"] in ("step_out_of_range", "bad_request")
    assert error["message"]
    group_session = stored(app, group.session_id)
    assert group_session.current_step == 0 and group_session.started_at is None


SID = object()  # stands for the real session id in the payloads below


@pytest.mark.parametrize("payload", [None, "next", 3, [1], {"session_id": "1", "index": 1}, {"index": 1},
                                     {"session_id": SID, "index": True}, {"session_id": SID, "index": 1.0},
                                     {"session_id": SID, "index": "2"}, {"session_id": SID}])
def test_bad_step_payloads_get_an_error_and_never_crash(app, live_group, payload):
    group = live_group()
    if isinstance(payload, dict):
        payload = {key: group.session_id if value is SID else value for key, value in payload.items()}
    facilitator = staff_socket(app)
    facilitator.emit("step", payload)
    (name, error), = events(facilitator)
    assert name == "error" and error["code"] in ("bad_request", "unknown_session") and error["message"]
    assert facilitator.is_connected()
    facilitator.emit("join", {"session_id": group.session_id})  # still works afterwards
    assert [n for n, _ in events(facilitator)] == ["state"]
    assert stored(app, group.session_id).current_step == 0


@pytest.mark.parametrize("payload", [None, "join", [1], {}, {"session_id": "1"}, {"session_id": None}])
def test_bad_join_payloads_get_an_error(app, live_group, payload):
    live_group()
    facilitator = staff_socket(app)
    facilitator.emit("join", payload)
    facilitator.emit("state", payload)
    assert [(n, e["code"]) for n, e in events(facilitator)] == [("error", "bad_request")] * 2


def test_a_display_cannot_step(app, live_group):
    group = live_group()
    display = display_socket(app, group.session_id)
    display.emit("join", {"session_id": group.session_id})
    display.get_received()
    display.emit("step", {"session_id": group.session_id, "index": 3})
    (name, error), = events(display)
    assert name == "error" and error["code"] == "display_cannot_step"
    assert stored(app, group.session_id).current_step == 0


def test_another_facilitators_session_is_refused_and_a_coordinator_may_step(app, live_group):
    group = live_group()
    live_group(code="TS-PM", facilitator="sam", members=(("C3", "Grace", "Kim"),), module_id="ts-01-acceptance")
    stranger = staff_socket(app, "sam")
    stranger.emit("join", {"session_id": group.session_id})
    stranger.emit("step", {"session_id": group.session_id, "index": 1})
    received = events(stranger)
    assert [(n, e["code"]) for n, e in received] == [("error", "not_your_session"), ("error", "not_your_session")]
    assert stored(app, group.session_id).current_step == 0

    coordinator = staff_socket(app, "pat", role="coordinator")
    coordinator.emit("join", {"session_id": group.session_id})
    coordinator.emit("step", {"session_id": group.session_id, "index": 1})
    assert [n for n, _ in events(coordinator)] == ["state", "step"]
    assert stored(app, group.session_id).current_step == 1


def test_a_closed_or_unknown_session_cannot_step(app, live_group):
    group = live_group()
    facilitator = staff_socket(app)
    facilitator.emit("step", {"session_id": 999, "index": 0})
    with app.app_context():
        with db.transaction() as s:
            facilitation.close(s.get(GroupSession, group.session_id), s.get(facilitation.StaffUser, group.facilitator_id), clock.now())
    facilitator.emit("step", {"session_id": group.session_id, "index": 1})
    assert [e["code"] for _, e in events(facilitator)] == ["unknown_session", "session_closed"]
    assert stored(app, group.session_id).current_step == 0


def test_a_signed_out_socket_cannot_step(app, live_group):
    group = live_group()
    client = app.test_client()
    AuthActions(client, app).login("dana")
    sio = socketio.test_client(app, flask_test_client=client)
    with app.app_context():
        with db.transaction() as s:
            s.get(facilitation.StaffUser, group.facilitator_id).active = False  # the account was switched off
    sio.emit("step", {"session_id": group.session_id, "index": 1})
    (name, error), = events(sio)
    assert error["code"] == "signed_out"
    assert stored(app, group.session_id).current_step == 0


def test_the_module_cannot_be_stepped_without_one(app, live_group):
    group = live_group(module_id=None)
    with app.app_context():
        with db.transaction() as s:
            s.get(GroupSession, group.session_id).module_id = None
    facilitator = staff_socket(app)
    facilitator.emit("step", {"session_id": group.session_id, "index": 0})
    (name, error), = events(facilitator)
    assert error["code"] == "no_module"


# ---- roster pushes ----------------------------------------------------------------------------

def test_a_scan_pushes_the_roster_to_staff_and_only_the_headcount_to_displays(app, live_group):
    group = live_group()
    facilitator = staff_socket(app)
    facilitator.emit("join", {"session_id": group.session_id})
    display = display_socket(app, group.session_id)
    display.emit("join", {"session_id": group.session_id})
    facilitator.get_received()
    display.get_received()

    check_in(app, group.session_id, "C1", local(LIVE_DAY, 9, 15))  # 15 minutes in: late (grace 10)
    staff_events = dict(events(facilitator))
    entry, = staff_events["roster"]["entries"]
    assert entry["name"] == "Maria G." and entry["state"] == "in" and entry["late"] is True
    assert entry["time_in"] == "9:15 AM"
    assert staff_events["headcount"] == {"session_id": group.session_id, "count": 1}
    assert [p["name"] for p in staff_events["roster"]["not_here"]] == ["James W."]
    display_events = events(display)
    assert display_events == [("headcount", {"session_id": group.session_id, "count": 1})]


def test_roster_flags_on_time_late_left_early_new_and_at_risk(app, live_group, world):
    group = live_group()
    # James had this module in an earlier, closed session (all of it), so he is not new to it.
    earlier = world.session("RP-AM", LIVE_DAY - timedelta(days=2), status="closed", module_id="rp-01-triggers")
    world.attendance(group.clients[1], earlier, local(earlier.date, 9), local(earlier.date, 12))
    check_in(app, group.session_id, "C1", local(LIVE_DAY, 9, 5))
    check_in(app, group.session_id, "C2", local(LIVE_DAY, 9, 11))
    with app.app_context():
        with db.transaction() as s:
            s.add(WeekFlag(client_key=group.clients[0].id, week_start=LIVE_DAY - timedelta(days=2), status="at_risk"))
            record = attendance.unvoided_attendance(group.session_id, group.clients[1].id)
            attendance.check_out(record, local(LIVE_DAY, 9, 19))
        entries = {e["name"]: e for e in roster.roster_payload(db.session().get(GroupSession, group.session_id))["entries"]}
    maria, james = entries["Maria G."], entries["James W."]
    assert (maria["late"], maria["left_early"], maria["new_to_module"], maria["at_risk"]) == (False, False, True, True)
    assert (james["late"], james["left_early"], james["new_to_module"], james["at_risk"]) == (True, True, False, False)
    assert james["state"] == "out"


def test_help_request_alerts_the_staff_of_sessions_open_now(app, live_group, world):
    group = live_group()
    world.group(code="LATE", name="Evening", weekdays="Wed", start=local(LIVE_DAY, 18).time(), end=local(LIVE_DAY, 21).time())
    evening = world.session("LATE", LIVE_DAY)
    facilitator = staff_socket(app)
    facilitator.emit("join", {"session_id": group.session_id})
    display = display_socket(app, group.session_id)
    display.emit("join", {"session_id": group.session_id})
    evening_staff = staff_socket(app, "pat", role="coordinator")
    evening_staff.emit("join", {"session_id": evening.id})
    for sio in (facilitator, display, evening_staff):
        sio.get_received()
    with app.app_context():
        assert roster.publish_help_request("Front desk") == 1
    (name, alert), = events(facilitator)
    assert name == "help" and alert["kiosk"] == "Front desk" and alert["time"] == "9:20 AM"
    assert events(display) == [] and events(evening_staff) == []


def test_publish_survives_an_unknown_session(app):
    with app.app_context():
        roster.publish(12345)  # nothing to push, nothing raised


# ---- the display link -------------------------------------------------------------------------

def test_display_links_are_bound_to_their_session_and_end_with_it(app, live_group, freeze):
    group = live_group()
    with app.app_context():
        token = facilitation.display_token(group.session_id)
        assert facilitation.display_session(token).id == group.session_id
        with pytest.raises(facilitation.LiveError) as forged:
            facilitation.display_session(token[:-2] + "xx")
        assert forged.value.status == 403
        with pytest.raises(facilitation.LiveError) as late:
            facilitation.display_session(token, now=local(LIVE_DAY, 13, 1))  # past the end and its hour of margin
        assert late.value.status == 410
        assert facilitation.display_session(token, now=local(LIVE_DAY, 12, 59)).id == group.session_id
        with db.transaction() as s:
            facilitation.close(s.get(GroupSession, group.session_id), s.get(facilitation.StaffUser, group.facilitator_id), clock.now())
        with pytest.raises(facilitation.LiveError) as closed:
            facilitation.display_session(token)
        assert closed.value.status == 410


def test_step_changes_are_audited_once_at_start(app, live_group):
    group = live_group()
    facilitator = staff_socket(app)
    for index in (0, 1, 2):
        facilitator.emit("step", {"session_id": group.session_id, "index": index})
    with app.app_context():
        starts = db.session().query(AuditEvent).filter_by(action="session.start").all()
    assert len(starts) == 1 and starts[0].target == f"session:{group.session_id}"


def test_seconds_left_counts_down_from_the_steps_minutes():
    start = local(LIVE_DAY, 9)
    assert facilitation.seconds_left(None, 20, start) == 1200
    assert facilitation.seconds_left(start, 20, start + timedelta(minutes=5, seconds=30)) == 870
    assert facilitation.seconds_left(start, 20, start + timedelta(minutes=21)) == -60
    assert facilitation.step_problem(7, 7).code == "step_out_of_range"
    assert facilitation.step_problem(0, 0).code == "no_module"
    assert facilitation.step_problem(6, 7) is None

"""Property-based fuzzing of the live group's Socket.IO events (hypothesis): any event name and payload
from a facilitator's screen, a room display or a stranger is handled without an exception escaping a
handler and without a "server_error" (an unexpected failure inside one); only a valid step by the
session's facilitator changes the stored step, and nothing else writes.
"""
from __future__ import annotations

import logging
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.web import AuthActions
from iop.extensions import socketio
from iop.live import facilitation
from iop.store import db
from iop.store.models import GroupSession

EXAMPLES = int(os.environ.get("IOP_FUZZ_EXAMPLES", "3000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
TABLES = ("attendance", "scan", "client", "group_session", "audit_event", "kiosk_device")

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=10)


def messages(session_id: int, step_count: int):
    """(event, payload): real steps now and then, among every event with every kind of payload."""
    real_steps = st.tuples(st.just("step"), st.fixed_dictionaries(
        {"session_id": st.just(session_id), "index": st.integers(0, step_count - 1)}))
    return st.one_of(real_steps, st.tuples(EVENTS, payloads(session_id)))


def payloads(session_id: int):
    """Mostly the shapes the screens send, with every field swapped for odd values now and then."""
    ids = st.one_of(st.just(session_id), st.integers(-3, session_id + 3), scalars, st.just(str(session_id)),
                    st.just(float(session_id)), st.just(True))
    indexes = st.one_of(st.integers(-2, 12), scalars, st.just("1"), st.just(1.0), st.just(2**31))
    shaped = st.fixed_dictionaries({"session_id": ids}, optional={"index": indexes, "module_id": values,
                                                                  "extra": values})
    return st.one_of(shaped, values)


EVENTS = st.one_of(st.sampled_from(["join", "leave", "state", "step", "step", "step"]),
                   st.sampled_from(["connect", "disconnect", "roster", "headcount", "message", "error", "closed"]),
                   st.text(min_size=1, max_size=20))


def counts(app) -> dict[str, int]:
    from sqlalchemy import text

    with db.database(app).engine.connect() as connection:
        row = connection.execute(text("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES))).one()
    return dict(zip(TABLES, row))


def stored_step(app, session_id: int) -> int | None:
    with app.app_context():
        return db.session().get(GroupSession, session_id).current_step


def is_valid_step(event, payload, session_id, step_count) -> bool:
    if event != "step" or not isinstance(payload, dict):
        return False
    sid, index = payload.get("session_id"), payload.get("index")
    return (type(sid) is int and sid == session_id and type(index) is int and 0 <= index < step_count)


def test_any_event_from_any_screen_is_handled_and_only_valid_steps_write(app, live_group, caplog):
    scene = live_group(facilitator="dana")
    session_id = scene.session_id
    http = app.test_client()
    AuthActions(http, app).login("dana", role="facilitator")
    staff = socketio.test_client(app, flask_test_client=http)
    with app.app_context():
        token = facilitation.display_token(session_id)
        step_count = len(facilitation.module_of(db.session().get(GroupSession, session_id)).steps)
    display = socketio.test_client(app, auth={"display_token": token})
    assert staff.is_connected() and display.is_connected()
    staff.emit("join", {"session_id": session_id})
    display.emit("join", {"session_id": session_id})
    staff.get_received(), display.get_received()
    expected = {"step": stored_step(app, session_id)}
    tally = {"events": 0, "valid_steps": 0, "refusals": 0}

    @FUZZ
    @given(who=st.sampled_from(["staff", "display"]), message=messages(session_id, step_count),
           extra_args=st.one_of(st.just([]), st.lists(values, max_size=2)))
    def run(who, message, extra_args):
        event, payload = message
        sender = staff if who == "staff" else display
        before = counts(app)
        sender.emit(event, payload, *extra_args)  # an exception escaping a handler fails the test here
        tally["events"] += 1
        for screen in (staff, display):
            for received in screen.get_received():
                if received["name"] == "error":
                    error = received["args"][0]
                    assert error["code"] != "server_error", (event, payload)
                    tally["refusals"] += 1
        valid = who == "staff" and is_valid_step(event, payload, session_id, step_count)  # extra args are ignored
        if valid:
            expected["step"] = payload["index"]
            tally["valid_steps"] += 1
        assert stored_step(app, session_id) == expected["step"], (who, event, payload)
        if not valid:
            assert counts(app) == before, (who, event, payload)
        assert staff.is_connected() and display.is_connected()

    with caplog.at_level(logging.WARNING):
        run()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert not failures, [r.getMessage() for r in failures[:5]]
    assert tally["valid_steps"] > 0 and tally["refusals"] > 0, tally
    print(f"\nsocket fuzz: {tally}")


def test_any_connect_payload_from_a_stranger_is_refused_cleanly(app, live_group):
    live_group(facilitator="dana")
    tally = {"refused": 0}

    @settings(FUZZ, max_examples=max(50, EXAMPLES // 10))
    # Socket.IO's auth is an object (a bare number would be read as the packet's ack id by the protocol).
    @given(auth=st.one_of(st.none(), st.dictionaries(st.text(max_size=12), values, max_size=4),
                          st.fixed_dictionaries({"display_token": values})))
    def run(auth):
        stranger = socketio.test_client(app, auth=auth)
        assert not stranger.is_connected()
        tally["refused"] += 1

    run()
    assert tally["refused"] >= 50

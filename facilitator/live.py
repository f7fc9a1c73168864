"""Socket.IO events of the live group: control pages and room displays join, ask for state, step.

Who a socket is gets settled at connect: a signed-in staff user (the Flask session cookie) or a
room display (a signed display token in the connect `auth` payload). Both are checked again on
every event. Displays join only the session's room; facilitator screens also join its staff room,
where the roster and help alerts (which carry names) go. Refusals go to the sender alone as an
`error` event {code, message}; nothing a socket sends can crash a handler.
"""
from __future__ import annotations

import functools
import logging

from flask import request, session
from flask_socketio import ConnectionRefusedError, emit, join_room, leave_room

from iop import clock
from iop.clinic.staff import has_role
from iop.extensions import socketio
from iop.live import facilitation, realtime
from iop.store import db
from iop.web.auth import current_session_key, current_user

log = logging.getLogger(__name__)
IDENTITY = "iop_live"  # this socket's own session entry: {"kind": "staff"} or {"kind": "display", "token": ...}


def _identity() -> tuple[str, object]:
    """('staff', StaffUser) or ('display', GroupSession), checked again now: a staff screen's sign-in
    must still be live (not ended, not idle, its person active) on every event."""
    who = session.get(IDENTITY) or {}
    if who.get("kind") == "display":
        return "display", facilitation.display_session(who.get("token"))
    user = current_user()
    if (who.get("kind") != "staff" or user is None or not has_role(user, "facilitator")
            or current_session_key() != who.get("key")):
        raise facilitation.LiveError("signed_out", "Please sign in again.", 401)
    return "staff", user


def _data(payload) -> dict:
    if not isinstance(payload, dict):
        raise facilitation.LiveError("bad_request", "The request could not be read.")
    return payload


def socket_event(handler):
    """Refusals become an `error` event to the sender; anything unexpected is logged without content."""

    @functools.wraps(handler)
    def wrapped(payload=None, *_extra):
        try:
            return handler(payload)
        except facilitation.LiveError as exc:
            emit("error", exc.as_dict())
        except Exception as exc:  # a bad payload or a fault must not take the socket down
            log.warning("live event %s failed: %s", handler.__name__, type(exc).__name__)
            emit("error", {"code": "server_error", "message": "Something went wrong on our side. Please try again."})
        return None

    return wrapped


def _session_for(kind: str, who, payload: dict):
    """The session this socket asks about, when it may: displays only their own, staff those they may run."""
    if kind == "display":
        wanted = payload.get("session_id", who.id)
        if facilitation.parse_int(wanted, "session_id") != who.id:
            raise facilitation.LiveError("wrong_session", "This room display link is for another group.", 403)
        return who
    group_session = facilitation.find_session(payload.get("session_id"))
    facilitation.require_may_run(who, group_session)
    return group_session


def _state_for(kind: str, group_session) -> dict:
    return facilitation.staff_state(group_session) if kind == "staff" else facilitation.public_state(group_session)


def _display_token(auth) -> str | None:
    """A room display's link token: in the connect URL (so the connection itself is checked) or auth."""
    token = auth.get("display_token") if isinstance(auth, dict) else None
    return token if token is not None else request.args.get("display_token")


def admitted() -> bool:
    """May this new connection be held? A signed-in staff member's screen or a valid room display link;
    anything else (a kiosk tablet has no screen to follow, and its cookie is for /kiosk only) is refused."""
    user = current_user()
    if user is not None and has_role(user, "facilitator"):
        return True
    token = request.args.get("display_token")
    if token is None:
        return False
    try:
        facilitation.display_session(token)
    except facilitation.LiveError:
        return False
    return True


def guard_connections(app) -> None:
    """Refuse at once, before any WebSocket is accepted, every connection that is not a signed-in staff
    member's or a valid display link's (a 401 to the Engine.IO handshake: no thread is held for it),
    and more than SOCKETS_PER_ADDRESS connections from one address (in this process)."""
    import threading
    from collections import Counter

    from iop.web.auth import client_address

    eio = socketio.server.eio
    admit, leave = eio.handlers["connect"], eio.handlers["disconnect"]
    held: Counter[str] = Counter()
    address_of: dict[str, str] = {}
    lock = threading.Lock()
    cap = app.config["SOCKETS_PER_ADDRESS"]

    def on_eio_connect(eio_sid, environ):
        with app.request_context(environ):
            address = client_address()
            try:
                if not admitted():
                    return False
            except Exception as exc:  # the database is away: nobody can be checked, so nobody is held
                log.warning("socket refused, sign-in not checked: %s", type(exc).__name__)
                return False
        with lock:
            if held[address] >= cap:
                log.warning("socket refused: %d connections from one address already", cap)
                return False
            held[address] += 1
            address_of[eio_sid] = address
        return admit(eio_sid, environ)

    def on_eio_disconnect(eio_sid, reason=None):
        with lock:
            address = address_of.pop(eio_sid, None)
            if address is not None:
                held[address] -= 1
                if held[address] <= 0:
                    del held[address]
        return leave(eio_sid, reason)

    eio.on("connect", on_eio_connect)
    eio.on("disconnect", on_eio_disconnect)


def on_connect(auth=None):
    token = _display_token(auth)
    try:
        if token is not None:
            facilitation.display_session(token)
            session[IDENTITY] = {"kind": "display", "token": token}
            return True
        user = current_user()
        if user is None or not has_role(user, "facilitator"):
            raise facilitation.LiveError("signed_out", "Please sign in again.", 401)
        session[IDENTITY] = {"kind": "staff", "key": current_session_key()}
        realtime.staff_screens().add(request.sid, current_session_key(), user.id)
        return True
    except facilitation.LiveError as exc:
        _close_connection_soon(request.sid)
        raise ConnectionRefusedError(exc.as_dict()) from None


def _close_connection_soon(sid: str) -> None:
    """A refused Socket.IO session leaves its Engine.IO connection open: close it once the refusal
    (which says why) has gone out, so nothing is held for it."""
    eio_sid = socketio.server.manager.eio_sid_from_sid(sid, "/")

    def close():
        socketio.sleep(0.5)
        realtime.close_connection(eio_sid)

    if eio_sid is not None:
        socketio.start_background_task(close)


def on_disconnect(_reason=None):
    realtime.staff_screens().remove(request.sid)


@socket_event
def on_join(payload):
    """Follow a session: its room (and, for staff, its staff room); the state comes back at once."""
    data = _data(payload)
    kind, who = _identity()
    group_session = _session_for(kind, who, data)
    for joined in session.get("iop_joined", []):  # a screen follows one session at a time
        if joined != group_session.id:
            leave_room(realtime.session_room(joined))
            leave_room(realtime.staff_room(joined))
    join_room(realtime.session_room(group_session.id))
    if kind == "staff":
        join_room(realtime.staff_room(group_session.id))
    session["iop_joined"] = [group_session.id]
    emit("state", _state_for(kind, group_session))


@socket_event
def on_leave(payload):
    data = _data(payload)
    _identity()
    session_id = facilitation.parse_int(data.get("session_id"), "session_id")
    leave_room(realtime.session_room(session_id))
    leave_room(realtime.staff_room(session_id))
    session["iop_joined"] = [s for s in session.get("iop_joined", []) if s != session_id]


@socket_event
def on_state(payload):
    """The current step, timer and headcount from the database (after a reconnect, say)."""
    data = _data(payload)
    kind, who = _identity()
    emit("state", _state_for(kind, _session_for(kind, who, data)))


@socket_event
def on_step(payload):
    """Make a step current (staff who may run the session only), then tell every screen of the session."""
    data = _data(payload)
    kind, who = _identity()
    if kind != "staff":
        raise facilitation.LiveError("display_cannot_step", "A room display cannot change the step.", 403)
    with db.transaction():
        group_session = facilitation.find_session(data.get("session_id"), for_update=True)
        facilitation.step_to(group_session, data.get("index"), who, clock.now())
    realtime.emit_to_session("step", facilitation.public_state(group_session), group_session.id)


HANDLERS = {"connect": on_connect, "disconnect": on_disconnect, "join": on_join, "leave": on_leave, "state": on_state, "step": on_step}


def register(_setup_state=None) -> None:
    """Attach the handlers to the Socket.IO server of the app being made.

    Each create_app() makes a new server, and Flask-SocketIO's decorators bind to the server that
    exists at import time only, so the blueprint calls this for every app it is registered on."""
    for event, handler in HANDLERS.items():
        socketio.on_event(event, handler)
    if _setup_state is not None:
        guard_connections(_setup_state.app)

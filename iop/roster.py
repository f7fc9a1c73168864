"""What the session's screens are told when its roster changes.

Kiosk scans and manual changes call `publish(session_id)` after their transaction commits: the
roster (display names and flags) goes to the facilitator screens only, the headcount to every
screen of the session, the room display included. A failed push never undoes a check-in.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from iop import clock, db, hours, realtime
from iop.models import Attendance, Client, GroupSession, WeekFlag

log = logging.getLogger(__name__)


def headcount(session_id: int) -> int:
    """Clients in the room now: checked in and not yet out."""
    return db.session().scalar(select(func.count()).select_from(Attendance).where(
        Attendance.session_id == session_id, Attendance.voided_at.is_(None), Attendance.status == "present",
        Attendance.check_in_at.is_not(None), Attendance.check_out_at.is_(None))) or 0


def checked_in_counts(session_ids: list[int]) -> dict[int, int]:
    """{session_id: clients who checked in at all} for a list of sessions (one query)."""
    if not session_ids:
        return {}
    rows = db.session().execute(
        select(Attendance.session_id, func.count()).where(
            Attendance.session_id.in_(session_ids), Attendance.voided_at.is_(None),
            Attendance.status == "present", Attendance.check_in_at.is_not(None))
        .group_by(Attendance.session_id))
    return {session_id: count for session_id, count in rows}


def _new_to_module(client_pks: list[int], module_id: str | None) -> set[int]:
    from curriculum.catalog import catalog

    if not module_id or catalog().module(module_id) is None:
        return set()
    from curriculum.completion import new_to_module

    return new_to_module(client_pks, module_id)


def _at_risk(client_pks: list[int], meeting: GroupSession) -> set[int]:
    if not client_pks:
        return set()
    return set(db.session().scalars(select(WeekFlag.client_id).where(
        WeekFlag.client_id.in_(client_pks), WeekFlag.week_start == hours.week_start(meeting.date),
        WeekFlag.status == "at_risk")))


def roster_payload(meeting: GroupSession) -> dict:
    """The facilitator's roster: who is in (newest first), who left, who is excused, who is not here.

    Display names only ("Maria G."); clients are named in actions by their opaque public_id."""
    from iop.attendance import session_members
    from iop.live import iso, time_text

    grace = current_app.config["GRACE_MINUTES"]
    records = db.session().execute(
        select(Attendance, Client).join(Client, Client.id == Attendance.client_id)
        .where(Attendance.session_id == meeting.id, Attendance.voided_at.is_(None))
        .execution_options(populate_existing=True)).all()
    pks = [client.id for _record, client in records]
    new = _new_to_module(pks, meeting.module_id)
    members = session_members(meeting)
    at_risk = _at_risk([m.id for m in members] + pks, meeting)
    entries = []
    for record, client in records:
        if record.status == "excused":
            state = "excused"
        elif record.check_out_at is not None:
            state = "out"
        else:
            state = "in"
        entries.append({
            "id": client.public_id,
            "name": client.display_name,
            "state": state,
            "check_in_at": iso(record.check_in_at),
            "time_in": time_text(record.check_in_at),
            "time_out": time_text(record.check_out_at),
            "late": state != "excused" and hours.is_late(record.check_in_at, meeting.starts_at, grace),
            "left_early": state == "out" and hours.left_early(record.check_out_at, meeting.ends_at, grace),
            "new_to_module": client.id in new,
            "at_risk": client.id in at_risk,
            "manual": record.source == "manual",
        })
    # In the room first, newest arrival on top (the facilitator looks up when someone walks in);
    # then those who left, then the excused.
    order = {"in": 0, "out": 1, "excused": 2}
    entries.sort(key=lambda e: e["check_in_at"] or "", reverse=True)
    entries.sort(key=lambda e: order[e["state"]])
    recorded = set(pks)
    not_here = [{"id": member.public_id, "name": member.display_name, "at_risk": member.id in at_risk}
                for member in members if member.id not in recorded]
    return {"session_id": meeting.id, "entries": entries, "not_here": not_here,
            "headcount": sum(1 for e in entries if e["state"] == "in")}


PUBLISH_EVERY = 0.25  # seconds: at most one roster build per session in this time


def publish(session_id: int) -> None:
    """Push the session's roster to its facilitator screens and the headcount to its displays.

    Coalesced per session: the first change after a quiet spell is pushed at once, on the caller's
    thread; changes within PUBLISH_EVERY of a push are pushed together, once, by a background task
    at the end of that time, built from the database as it stands then (so the last push is always
    the final roster). Nothing is built when no screen of this process follows the session and no
    message queue carries pushes to other processes' screens."""
    if not _followed(session_id):
        return
    app = current_app._get_current_object()
    if _coalescer(app).claim(session_id):
        try:
            _push(session_id)
        finally:
            _coalescer(app).done(session_id)


def _push(session_id: int) -> None:
    try:
        meeting = db.session().get(GroupSession, session_id, populate_existing=True)
        if meeting is None:
            return
        payload = roster_payload(meeting)
        realtime.emit_to_staff("roster", payload, session_id)
        realtime.emit_to_session("headcount", {"session_id": session_id, "count": payload["headcount"]}, session_id)
    except Exception as exc:  # the check-in is saved; a screen that missed this asks for state on reconnect
        log.warning("roster push for session %s failed: %s", session_id, type(exc).__name__)


def _followed(session_id: int) -> bool:
    """Whether a push for this session can reach any screen: one of this process's sockets is in the
    session's rooms, or a message queue may carry it to another process's screens."""
    import socketio as python_socketio

    from iop import socketio

    server = socketio.server
    if server is None or isinstance(server.manager, python_socketio.PubSubManager):
        return True
    rooms = server.manager.rooms.get("/") or {}
    return bool(rooms.get(realtime.session_room(session_id))) or bool(rooms.get(realtime.staff_room(session_id)))


class _Coalescer:
    """Per app: when each session's roster was last pushed, and the pushes waiting for their time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Condition()
        self.last: dict[int, float] = {}  # session id -> monotonic time its last push began
        self.due: dict[int, float] = {}  # session id -> when its waiting push is due
        self.busy: set[int] = set()  # sessions being pushed now
        self.worker_running = False

    def claim(self, session_id: int) -> bool:
        """True: push now (the caller does, then calls done). False: a push is already due or
        running, or one went out less than PUBLISH_EVERY ago: the background task pushes later."""
        now = time.monotonic()
        with self.lock:
            last = self.last.get(session_id)
            if session_id not in self.busy and session_id not in self.due and (
                    last is None or now - last >= PUBLISH_EVERY):
                self.busy.add(session_id)
                self.last[session_id] = now
                if len(self.last) > 1000:  # forget sessions quiet for a while
                    self.last = {sid: t for sid, t in self.last.items() if now - t < PUBLISH_EVERY}
                return True
            if session_id not in self.due:
                # A push running now may have read the database before this change committed.
                self.due[session_id] = max(now, (last or now) + PUBLISH_EVERY)
                self.lock.notify()
                if not self.worker_running:
                    self.worker_running = True
                    from iop import socketio

                    socketio.start_background_task(self._work)
            return False

    def done(self, session_id: int) -> None:
        with self.lock:
            self.busy.discard(session_id)
            if session_id in self.due:
                self.lock.notify()

    def _work(self) -> None:
        """Push each waiting session when it is due; stop after a quiet second (started again on demand)."""
        while True:
            with self.lock:
                while True:
                    now = time.monotonic()
                    ready = [sid for sid, at in self.due.items() if at <= now and sid not in self.busy]
                    if ready:
                        break
                    if not self.due:
                        self.lock.wait(1.0)
                        if not self.due:
                            self.worker_running = False
                            return
                        continue
                    self.lock.wait(max(0.001, min(self.due.values()) - now))
                for sid in ready:
                    del self.due[sid]
                    self.busy.add(sid)
                    self.last[sid] = now
            for sid in ready:
                try:
                    with self.app.app_context():
                        _push(sid)
                finally:
                    self.done(sid)


def _coalescer(app) -> _Coalescer:
    coalescer = app.extensions.get("iop.roster_coalescer")
    if coalescer is None:
        with _COALESCER_LOCK:
            coalescer = app.extensions.setdefault("iop.roster_coalescer", _Coalescer(app))
    return coalescer


_COALESCER_LOCK = threading.Lock()


def publish_help_request(kiosk_name: str) -> int:
    """Alert the facilitators of every session open now that someone at a kiosk needs help.

    Returns how many sessions were alerted."""
    from iop.attendance import is_open_at
    from iop.live import iso, time_text

    now = clock.now()
    candidates = db.session().scalars(select(GroupSession).where(
        GroupSession.status.not_in(("closed", "cancelled")),
        GroupSession.starts_at <= now + timedelta(minutes=current_app.config["SESSION_OPENS_BEFORE_MINUTES"]),
        GroupSession.ends_at > now)).all()
    alerted = 0
    for meeting in candidates:
        if is_open_at(meeting, now):
            realtime.emit_to_staff("help", {"session_id": meeting.id, "kiosk": str(kiosk_name or "")[:80],
                                            "at": iso(now), "time": time_text(now)}, meeting.id)
            alerted += 1
    return alerted

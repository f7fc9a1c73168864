"""What the session's screens are told when its roster changes.

Kiosk scans and manual changes call `publish(session_id)` after their transaction commits: the
roster (display names and flags) goes to the facilitator screens only, the headcount to every
screen of the session, the room display included. A failed push never undoes a check-in.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import date, datetime, timedelta
from typing import NamedTuple

from flask import current_app, has_request_context
from sqlalchemy import func, select

from iop import clock, config
from iop.live import realtime
from iop.rules import hours
from iop.store import db
from iop.store.models import Attendance, Client, ClientGroup, GroupSession, WeekFlag

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


def _new_to_module(client_keys: list[int], module_id: str | None) -> set[int]:
    from curriculum.catalog import catalog

    if not module_id or catalog().module(module_id) is None:
        return set()
    from curriculum.completion import new_to_module

    return new_to_module(client_keys, module_id)


class _SessionRow(NamedTuple):
    """What a roster needs of its session."""

    id: int
    group_id: int
    module_id: str | None
    date: date
    starts_at: datetime
    ends_at: datetime


@functools.cache
def _statements():
    """The roster's reads for many sessions at once (built once, bound per call)."""
    group_session, record, client = GroupSession.__table__.c, Attendance.__table__.c, Client.__table__.c
    member, flag = ClientGroup.__table__.c, WeekFlag.__table__.c
    sessions = select(group_session.id, group_session.group_id, group_session.module_id, group_session.date, group_session.starts_at,
                      group_session.ends_at).where(db.one_of(group_session.id, "session_ids"))
    records = (select(record.session_id, record.status, record.check_in_at, record.check_out_at, record.source,
                      record.modality, client.id.label("client_key"), client.public_id, client.first_name,
                      client.last_name)
               .select_from(Attendance.__table__.join(Client.__table__, client.id == record.client_key))
               .where(db.one_of(record.session_id, "session_ids"), record.voided_at.is_(None))
               .order_by(record.id))
    members = (select(member.group_id, client.id.label("client_key"), client.public_id, client.first_name,
                      client.last_name)
               .select_from(Client.__table__.join(ClientGroup.__table__, member.client_key == client.id))
               .where(db.one_of(member.group_id, "group_ids"), client.status == "active")
               .order_by(client.first_name, client.last_name, client.id))
    at_risk = select(flag.client_key, flag.week_start).where(
        db.one_of(flag.week_start, "weeks"), flag.status == "at_risk",
        db.one_of(flag.client_key, "client_keys"))
    return sessions, records, members, at_risk


class _Person(NamedTuple):
    id: int
    public_id: str
    first_name: str
    last_name: str

    @property
    def display_name(self) -> str:
        return Client.display_name.fget(self)  # "Maria G.": the one rule, on plain values


class _Record(NamedTuple):
    """An unvoided attendance in a session, with its client."""

    status: str
    check_in_at: datetime | None
    check_out_at: datetime | None
    source: str
    person: _Person
    modality: str  # in_person or telehealth


def _person(row) -> _Person:
    return _Person(row.client_key, row.public_id, row.first_name, row.last_name)


def roster_payload(group_session: GroupSession) -> dict:
    """The facilitator's roster: who is in (newest first), who left, who is excused, who is not here.

    Display names only ("Maria G."); clients are named in actions by their opaque public_id."""
    return roster_payloads([_SessionRow(group_session.id, group_session.group_id, group_session.module_id, group_session.date,
                                     group_session.starts_at, group_session.ends_at)])[group_session.id]


def roster_payloads(group_sessions: list[_SessionRow]) -> dict[int, dict]:
    """roster_payload for several sessions in four queries (and one per module for "new to it")."""
    from iop.clock import iso, time_text

    if not group_sessions:
        return {}
    _sessions, records_sql, members_sql, at_risk_sql = _statements()
    connection = db.session().connection()
    grace = config.grace_minutes()
    session_ids = [m.id for m in group_sessions]
    records: dict[int, list[_Record]] = {m.id: [] for m in group_sessions}
    for row in connection.execute(records_sql, {"session_ids": session_ids}):
        records[row.session_id].append(_Record(row.status, row.check_in_at, row.check_out_at, row.source,
                                               _person(row), row.modality))
    members: dict[int, list[_Person]] = {}
    for row in connection.execute(members_sql, {"group_ids": sorted({m.group_id for m in group_sessions})}):
        members.setdefault(row.group_id, []).append(_person(row))
    everyone = {p.id for m in group_sessions for p in members.get(m.group_id, ())} | {
        r.person.id for m in group_sessions for r in records[m.id]}
    weeks = sorted({hours.week_start(m.date) for m in group_sessions})
    at_risk = {(client_key, week) for client_key, week in connection.execute(
        at_risk_sql, {"weeks": weeks, "client_keys": sorted(everyone)})} if everyone else set()
    new: dict[str | None, set[int]] = {}
    for module_id in {m.module_id for m in group_sessions}:
        client_keys = sorted({r.person.id for m in group_sessions if m.module_id == module_id for r in records[m.id]})
        new[module_id] = _new_to_module(client_keys, module_id) if client_keys else set()

    payloads = {}
    for group_session in group_sessions:
        week = hours.week_start(group_session.date)
        entries = []
        for status, check_in, check_out, source, person, modality in records[group_session.id]:  # a _Record
            if status == "excused":
                state = "excused"
            elif check_out is not None:
                state = "out"
            else:
                state = "in"
            late, left_early = hours.attendance_flags(status == "present", check_in, check_out,
                                                      group_session.starts_at, group_session.ends_at, grace)
            entries.append({
                "id": person.public_id,
                "name": person.display_name,
                "state": state,
                "check_in_at": iso(check_in),
                "time_in": time_text(check_in),
                "time_out": time_text(check_out),
                "late": late,
                "left_early": left_early,
                "new_to_module": person.id in new[group_session.module_id],
                "at_risk": (person.id, week) in at_risk,
                "manual": source == "manual",
                "video": modality == "telehealth",
            })
        # In the room first, newest arrival on top (the facilitator looks up when someone walks in);
        # then those who left, then the excused.
        order = {"in": 0, "out": 1, "excused": 2}
        entries.sort(key=lambda e: e["check_in_at"] or "", reverse=True)
        entries.sort(key=lambda e: order[e["state"]])
        recorded = {r.person.id for r in records[group_session.id]}
        not_here = [{"id": member.public_id, "name": member.display_name, "at_risk": (member.id, week) in at_risk}
                    for member in members.get(group_session.group_id, ()) if member.id not in recorded]
        payloads[group_session.id] = {"session_id": group_session.id, "entries": entries, "not_here": not_here,
                                "headcount": sum(1 for e in entries if e["state"] == "in")}
    return payloads


PUBLISH_EVERY = 1.0  # seconds: at most one roster build per session in this time (a busy room: once a second)
BATCH_EVERY = 0.2  # seconds between two batches at least: a busy program's changes meet in one


def publish(session_id: int) -> None:
    """Push the session's roster to its facilitator screens and the headcount to its displays.

    From a request (a scan, a facilitator's change) the push is handed to the app's publisher and
    the request answers at once: the publisher pushes it within moments, coalesced per session (at
    most one build per PUBLISH_EVERY; changes meanwhile go out together, read from the database as
    it stands then, so the last push is the final roster) and batched across sessions (a busy
    program's rosters are read in a few queries, not a few per scan). Outside a request (a job, a
    one-off script that may exit next) it is pushed now. Nothing is built when no screen of this
    process follows the session and no message queue carries pushes to other processes' screens."""
    if not _followed(session_id):
        return
    if has_request_context():
        _publisher(current_app._get_current_object()).schedule(session_id)
    else:
        _push([session_id])


def _push(session_ids: list[int]) -> None:
    try:
        _sessions_sql = _statements()[0]
        group_sessions = [_SessionRow(**row._mapping) for row in db.session().connection().execute(
            _sessions_sql, {"session_ids": session_ids})]
        for session_id, payload in roster_payloads(group_sessions).items():
            realtime.emit_to_staff("roster", payload, session_id)
            realtime.emit_to_session("headcount", {"session_id": session_id, "count": payload["headcount"]},
                                     session_id)
    except Exception as exc:  # the check-in is saved; a screen that missed this asks for state on reconnect
        log.warning("roster push for sessions %s failed: %s", session_ids[:10], type(exc).__name__)


def _followed(session_id: int) -> bool:
    """Whether a push for this session can reach any screen: one of this process's sockets is in the
    session's rooms, or a message queue may carry it to another process's screens."""
    import socketio as python_socketio

    from iop.extensions import socketio

    server = socketio.server
    if server is None or isinstance(server.manager, python_socketio.PubSubManager):
        return True
    rooms = server.manager.rooms.get("/") or {}
    return bool(rooms.get(realtime.session_room(session_id))) or bool(rooms.get(realtime.staff_room(session_id)))


class _Publisher:
    """Per app: one background task pushing the rosters that are due, in batches."""

    IDLE_SECONDS = 2.0  # the task ends after this long without work (started again on demand)

    def __init__(self, app):
        self.app = app
        self.lock = threading.Condition()
        self.last: dict[int, float] = {}  # session id -> monotonic time its last build began
        self.due: dict[int, float] = {}  # session id -> when its next build is due
        self.running = False

    def schedule(self, session_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            if session_id in self.due:
                return  # a build is already waiting: it will read this change too
            last = self.last.get(session_id)
            self.due[session_id] = now if last is None else max(now, last + PUBLISH_EVERY)
            self.lock.notify()
            if not self.running:
                self.running = True
                from iop.extensions import socketio

                socketio.start_background_task(self._run)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # noqa: BLE001  (never leave the publisher marked running when it is not)
            log.exception("roster publisher stopped")
        finally:
            with self.lock:
                self.running = False
                if self.due:  # work arrived as it stopped: start again
                    self.running = True
                    from iop.extensions import socketio

                    socketio.start_background_task(self._run)

    def _loop(self) -> None:
        previous = float("-inf")
        while True:
            with self.lock:
                while True:
                    now = time.monotonic()
                    if now < previous + BATCH_EVERY:
                        self.lock.wait(previous + BATCH_EVERY - now)
                        continue
                    batch = [sid for sid, at in self.due.items() if at <= now]
                    if batch:
                        previous = now
                        break
                    if not self.due:
                        self.lock.wait(self.IDLE_SECONDS)
                        if not self.due:
                            return
                        continue
                    self.lock.wait(min(self.due.values()) - now)
                for sid in batch:
                    del self.due[sid]
                    self.last[sid] = now  # a change from now on waits PUBLISH_EVERY for the next build
                if len(self.last) > 1000:  # forget sessions quiet for a while
                    self.last = {sid: at for sid, at in self.last.items() if now - at < PUBLISH_EVERY}
            with self.app.app_context():
                _push(batch)


def _publisher(app) -> _Publisher:
    publisher = app.extensions.get("iop.roster_publisher")
    if publisher is None:
        with _PUBLISHER_LOCK:
            publisher = app.extensions.setdefault("iop.roster_publisher", _Publisher(app))
    return publisher


_PUBLISHER_LOCK = threading.Lock()


def publish_help_request(kiosk_name: str) -> int:
    """Alert the facilitators of every session open now that someone at a kiosk needs help.

    Returns how many sessions were alerted."""
    from iop.clinic.attendance import is_open_at
    from iop.clock import iso, time_text

    now = clock.now()
    candidates = db.session().scalars(select(GroupSession).where(
        GroupSession.status.not_in(("closed", "cancelled")),
        GroupSession.starts_at <= now + timedelta(minutes=current_app.config["SESSION_OPENS_BEFORE_MINUTES"]),
        GroupSession.ends_at > now)).all()
    alerted = 0
    for group_session in candidates:
        if is_open_at(group_session, now):
            realtime.emit_to_staff("help", {"session_id": group_session.id, "kiosk": str(kiosk_name or "")[:80],
                                            "at": iso(now), "time": time_text(now)}, group_session.id)
            alerted += 1
    return alerted

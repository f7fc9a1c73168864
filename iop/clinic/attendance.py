"""Writing attendance: check-in, check-out, excused, close, corrections. The one place that writes it.

Callers hold the unit of work (`with db.transaction():`); these functions add and flush, and
audit every manual change. Corrections void a record and add a new one; nothing is edited silently.
"""
from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select

from iop import clock
from iop.clinic import audit
from iop.clinic.sessions import ensure_session
from iop.clock import local_date, local_to_utc, program_tz
from iop.rules import hours
from iop.rules.entry import weekday_numbers
from iop.store import db
from iop.store.models import Attendance, Client, ClientGroup, Group, GroupSession, StaffUser


class AttendanceError(ValueError):
    """A refused attendance change: `code` for programs, the message for the person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def opens_at(group_session: GroupSession) -> datetime:
    return _opens_before(group_session.starts_at)


def _opens_before(starts: datetime) -> datetime:
    return starts - timedelta(minutes=current_app.config["SESSION_OPENS_BEFORE_MINUTES"])


def is_open_at(group_session: GroupSession, moment: datetime) -> bool:
    """A session takes check-ins from 30 minutes before its start until its end, unless closed."""
    return group_session.status not in ("closed", "cancelled") and opens_at(group_session) <= moment < group_session.ends_at


class OpenSession(NamedTuple):
    """A session as the kiosk needs it: its window, state, and the group's name and room."""

    id: int
    group_id: int
    date: date
    starts_at: datetime
    ends_at: datetime
    status: str
    closed_at: datetime | None
    group_name: str
    room: str


class ClientFacts(NamedTuple):
    """What a scan checks of the client: the card's version, whether active, and the names."""

    card_version: int
    status: str
    first_name: str
    last_name: str


class Visit(NamedTuple):
    """An unvoided attendance as the kiosk decides on it (plain values, no ORM object to build)."""

    id: int
    session_id: int
    status: str
    check_in_at: datetime | None
    check_out_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.check_in_at is not None and self.check_out_at is None


class GroupWindow(NamedTuple):
    """A client's group as a scan needs it: whether it meets, on which weekdays, from when to when."""

    id: int
    active: bool
    weekdays: str
    start: time
    end: time


class SessionsNear(NamedTuple):
    """A client and their groups' sessions around a moment, as read in one query (client_sessions_near)."""

    client: ClientFacts | None  # None: no such client
    day: date  # the moment's local date
    groups: list[GroupWindow]  # in group code order
    sessions: dict[tuple[int, date], OpenSession]  # by (group id, date), dated `day` or the day after
    visits: dict[int, Visit]  # the client's unvoided record in each of those sessions, by session id
    open_visits: int  # the client's records checked in, not out, in sessions ending after the moment


@functools.cache
def client_sessions_statement():
    """Each named client's (:client_keys) row, each of their groups (by code), its sessions dated :day
    or :next_day and the client's unvoided record in each; and how many of the client's records are
    open in sessions ending after :at. Its columns are labelled (sessions_near_from_rows reads them by
    name); callers may add columns after these (the scan adds whether its scan_id is known)."""
    from sqlalchemy import and_, func

    client, member = Client.__table__.c, ClientGroup.__table__.c
    group, group_session, record = Group.__table__.c, GroupSession.__table__.c, Attendance.__table__.c
    other, other_group_session = Attendance.__table__.alias("other"), GroupSession.__table__.alias("other_group_session")
    open_visits = (select(func.count()).select_from(other.join(other_group_session, other_group_session.c.id == other.c.session_id))
                   .where(other.c.client_key == client.id, other.c.voided_at.is_(None),
                          other.c.check_in_at.is_not(None), other.c.check_out_at.is_(None),
                          other_group_session.c.ends_at > bindparam("at"))
                   .scalar_subquery())
    return (select(client.id.label("client_key"), client.card_version, client.status.label("client_status"),
                   client.first_name, client.last_name,
                   group.id.label("group_id"), group.active, group.weekdays, group.start, group.end,
                   group.name.label("group_name"), group.room,
                   group_session.id.label("session_id"), group_session.date, group_session.starts_at,
                   group_session.ends_at, group_session.status.label("session_status"), group_session.closed_at,
                   record.id.label("visit_id"), record.status.label("visit_status"), record.check_in_at,
                   record.check_out_at, open_visits.label("open_visits"))
            .select_from(Client.__table__
                         .outerjoin(ClientGroup.__table__, member.client_key == client.id)
                         .outerjoin(Group.__table__, group.id == member.group_id)
                         .outerjoin(GroupSession.__table__,
                                    and_(group_session.group_id == group.id,
                                         group_session.date.in_([bindparam("day"), bindparam("next_day")])))
                         .outerjoin(Attendance.__table__,
                                    and_(record.session_id == group_session.id, record.client_key == client.id,
                                         record.voided_at.is_(None))))
            .where(db.one_of(client.id, "client_keys"))
            .order_by(client.id, group.code, group_session.date))


def sessions_near_parameters(client_keys: list[int], moment: datetime) -> dict:
    """The parameters of client_sessions_statement for these clients around `moment`."""
    day = local_date(moment, program_tz())
    return {"client_keys": list(client_keys), "day": day, "next_day": day + timedelta(days=1), "at": moment}


def sessions_near_from_rows(rows, moment: datetime) -> dict[int, SessionsNear]:
    """The rows of client_sessions_statement (read for `moment`) gathered by client (a client not
    found is left out)."""
    found: dict[int, tuple] = {}
    for row in rows:
        facts, groups, sessions, visits, _open = found.setdefault(row.client_key, (
            ClientFacts(row.card_version, row.client_status, row.first_name, row.last_name), {}, {}, {},
            row.open_visits or 0))
        if row.group_id is None:
            continue  # in no group
        groups.setdefault(row.group_id, GroupWindow(row.group_id, row.active, row.weekdays, row.start, row.end))
        if row.session_id is not None:
            sessions[(row.group_id, row.date)] = OpenSession(
                row.session_id, row.group_id, row.date, row.starts_at, row.ends_at, row.session_status,
                row.closed_at, row.group_name, row.room or "")
            if row.visit_id is not None:
                visits[row.session_id] = Visit(row.visit_id, row.session_id, row.visit_status, row.check_in_at,
                                               row.check_out_at)
    day = local_date(moment, program_tz())
    return {client_key: SessionsNear(facts, day, list(groups.values()), sessions, visits, open_count)
            for client_key, (facts, groups, sessions, visits, open_count) in found.items()}


def no_such_client(moment: datetime) -> SessionsNear:
    """What client_sessions_near says of a client key that names no one."""
    return SessionsNear(None, local_date(moment, program_tz()), [], {}, {}, 0)


def client_sessions_near(client_key: int, moment: datetime) -> SessionsNear:
    """The client, their groups, those groups' sessions dated the moment's local day or the day
    after and the client's records in them, in one query (client_sessions_statement)."""
    return clients_sessions_near([client_key], moment).get(client_key) or no_such_client(moment)


def clients_sessions_near(client_keys: list[int], moment: datetime) -> dict[int, SessionsNear]:
    """client_sessions_near for several clients at once, by client (a client not found is left out).
    Open visits are counted in sessions ending after `moment`: give the earliest of the scans' times."""
    rows = db.session().connection().execute(client_sessions_statement(),
                                             sessions_near_parameters(client_keys, moment))
    return sessions_near_from_rows(rows, moment)


def session_open_for(near: SessionsNear, moment: datetime) -> OpenSession | None:
    """The client's group session open at `moment`, from `near` (read for that moment's day); made
    from the schedule only when the day has no session yet and its window is open now (the
    scheduler makes the others)."""
    tz = program_tz()
    day = local_date(moment, tz)
    assert near.day == day, "read the client's sessions for the moment's day"
    candidates = []
    for group in near.groups:
        meets = set(weekday_numbers(group.weekdays)) if group.active else set()
        for date_ in (day, day + timedelta(days=1)):  # a session just after midnight opens the day before
            if date_.weekday() not in meets:
                continue
            group_session = near.sessions.get((group.id, date_))
            if group_session is None:
                starts, ends = local_to_utc(date_, group.start, tz), local_to_utc(date_, group.end, tz)
                if not _opens_before(starts) <= moment < ends:
                    continue
                group_session = _open_session(ensure_session(db.session().get(Group, group.id), date_))
            if is_open_at(group_session, moment):
                candidates.append(group_session)
    return min(candidates, key=lambda m: m.starts_at) if candidates else None


def _open_session(group_session: GroupSession) -> OpenSession:
    return OpenSession(group_session.id, group_session.group_id, group_session.date, group_session.starts_at, group_session.ends_at, group_session.status,
                       group_session.closed_at, group_session.group.name, group_session.group.room or "")


def unvoided_attendance(session_id: int, client_key: int) -> Attendance | None:
    """The client's record at this session that counts (docs/architecture.md, glossary: unvoided)."""
    return db.session().scalar(select(Attendance).where(
        Attendance.session_id == session_id, Attendance.client_key == client_key, Attendance.voided_at.is_(None)))


def _audit_manual(action: str, record: Attendance, by_user: StaffUser | None, reason: str | None) -> None:
    if by_user is not None:
        audit.record(action, target=f"attendance:{record.id}", user=by_user, session=record.session_id,
                     reason=reason or "")


def check_in(group_session: GroupSession, client: Client, at: datetime, source: str = "kiosk",
             by_user: StaffUser | None = None, reason: str | None = None, modality: str = "in_person") -> Attendance:
    """A new check-in (in person, or by video: `modality` telehealth). Any other open attendance of the
    client ends at `at` (they moved rooms)."""
    if unvoided_attendance(group_session.id, client.id) is not None:
        raise AttendanceError("already_checked_in", "This client is already checked in to this group.")
    for other in db.session().scalars(select(Attendance).join(GroupSession).where(
            Attendance.client_key == client.id, Attendance.voided_at.is_(None),
            Attendance.check_in_at.is_not(None), Attendance.check_out_at.is_(None),
            GroupSession.id != group_session.id, GroupSession.ends_at > at)):
        if other.check_in_at <= at:
            check_out(other, at, source, by_user)
    record = Attendance(session_id=group_session.id, client_key=client.id, status="present", source=source,
                        check_in_at=at, reason=reason, recorded_by_id=by_user.id if by_user else None,
                        modality=modality)
    db.session().add(record)
    db.session().flush()
    _audit_manual("attendance.check_in_video" if modality == "telehealth" else "attendance.check_in", record, by_user,
                  reason)
    return record


def check_out(record: Attendance, at: datetime, source: str = "kiosk", by_user: StaffUser | None = None,
              reason: str | None = None) -> Attendance:
    if record.check_in_at is None:
        raise AttendanceError("not_checked_in", "This client is not checked in.")
    if record.check_out_at is not None:
        raise AttendanceError("already_checked_out", "This client is already checked out.")
    if at < record.check_in_at:
        raise AttendanceError("check_out_before_check_in", "The check-out would be before the check-in.")
    record.check_out_at = at
    record.check_out_source = source
    db.session().flush()
    _audit_manual("attendance.check_out", record, by_user, reason)
    return record


@functools.cache
def _visits_statement():
    from sqlalchemy import union_all

    record, group_session = Attendance.__table__.c, GroupSession.__table__.c
    columns = (record.id, record.session_id, record.status, record.check_in_at, record.check_out_at)
    here = select(*columns).where(record.session_id == bindparam("session_id"),
                                  record.client_key == bindparam("client_key"), record.voided_at.is_(None))
    elsewhere = (select(*columns).select_from(Attendance.__table__.join(GroupSession.__table__,
                                                                         group_session.id == record.session_id))
                 .where(record.client_key == bindparam("client_key"), record.voided_at.is_(None),
                        record.check_in_at.is_not(None), record.check_out_at.is_(None),
                        group_session.id != bindparam("session_id"), group_session.ends_at > bindparam("at")))
    return union_all(here, elsewhere)


def kiosk_visits(near: SessionsNear, session_id: int, client_key: int, at: datetime
                 ) -> tuple[Visit | None, list[Visit]]:
    """The client's unvoided record in this session (or None), and their records open in other sessions
    that end after `at` (check_in ends those: one room at a time). `near` was read in this
    transaction for `at`, with the session found in it or made since (so it has no record yet): it
    tells both unless a record is open elsewhere, which takes one query."""
    here = near.visits.get(session_id)
    if near.open_visits == (1 if here is not None and here.is_open else 0):
        return here, []
    here, elsewhere = None, []
    for row in db.session().connection().execute(
            _visits_statement(), {"session_id": session_id, "client_key": client_key, "at": at}):
        visit = Visit(**row._mapping)
        if visit.session_id == session_id:
            here = visit
        else:
            elsewhere.append(visit)
    return here, elsewhere


class CheckIns:
    """Scans' new kiosk check-ins, written together (one statement) when flushed: before any read
    that must see them, and before the scans' answers are read."""

    def __init__(self):
        self.rows: list[dict] = []

    def flush(self) -> None:
        if self.rows:
            db.session().connection().execute(Attendance.__table__.insert(), self.rows)
            self.rows = []


def kiosk_check_in(check_ins: CheckIns, session_id: int, client_key: int, at: datetime, elsewhere: list[Visit],
                   check_out_at: datetime | None = None, check_out_source: str | None = None) -> None:
    """check_in(source="kiosk") in plain statements, for the scan's short transaction: the same rows.
    The caller found no unvoided record here (kiosk_visits); a racing one meets the unique index
    (IntegrityError). `check_out_at` closes the visit at once (a replayed scan of a closed session).
    The other visits end now; the new record is written when `check_ins` is flushed."""
    connection = db.session().connection()
    for other in elsewhere:
        if other.check_in_at <= at:
            _kiosk_check_out(connection, other.id, at, "kiosk")
    row = {"session_id": session_id, "client_key": client_key, "status": "present", "source": "kiosk",
           "check_in_at": at, "check_out_at": check_out_at, "check_out_source": check_out_source}
    check_ins.rows.append(row)


def kiosk_check_out(visit: Visit, at: datetime) -> None:
    """check_out(source="kiosk") of an unvoided record the caller read in this transaction."""
    if visit.check_in_at is None or visit.check_out_at is not None or at < visit.check_in_at:
        raise AttendanceError("cannot_check_out", "This visit cannot be checked out now.")
    _kiosk_check_out(db.session().connection(), visit.id, at, "kiosk")


@functools.cache
def _check_out_statement():
    record = Attendance.__table__
    return (record.update().where(record.c.id == bindparam("attendance_id"))
            .values(check_out_at=bindparam("out_at"), check_out_source=bindparam("out_source")))


def _kiosk_check_out(connection, attendance_id: int, at: datetime, source: str) -> None:
    connection.execute(_check_out_statement(), {"attendance_id": attendance_id, "out_at": at, "out_source": source})


def excuse(group_session: GroupSession, client: Client, by_user: StaffUser, reason: str) -> Attendance:
    """An excused absence: no minutes, no change to the target (rule 7)."""
    reason = (reason or "").strip()
    if not reason:
        raise AttendanceError("reason_required", "Please give a reason for the excused absence.")
    existing = unvoided_attendance(group_session.id, client.id)
    if existing is not None:
        if existing.status == "excused":
            return existing
        raise AttendanceError("already_checked_in", "This client checked in; correct the record instead.")
    record = Attendance(session_id=group_session.id, client_key=client.id, status="excused", source="manual",
                        reason=reason, recorded_by_id=by_user.id)
    db.session().add(record)
    db.session().flush()
    _audit_manual("attendance.excuse", record, by_user, reason)
    return record


def correct(record: Attendance, check_in: datetime | None, check_out: datetime | None, by_user: StaffUser,
            reason: str, status: str = "present", modality: str | None = None) -> Attendance:
    """Void `record` and add its replacement with the given times (audited, with the reason)."""
    reason = (reason or "").strip()
    if not reason:
        raise AttendanceError("reason_required", "Please say why the record is being corrected.")
    if check_in is not None and check_out is not None and check_out < check_in:
        raise AttendanceError("check_out_before_check_in", "The check-out would be before the check-in.")
    now = clock.now()
    record.voided_at, record.voided_by_id, record.void_reason = now, by_user.id, reason
    db.session().flush()
    replacement = Attendance(session_id=record.session_id, client_key=record.client_key, status=status,
                             source="manual", check_in_at=check_in, check_out_at=check_out,
                             check_out_source="manual" if check_out else None, reason=reason,
                             recorded_by_id=by_user.id, replaces_id=record.id,
                             modality=modality or record.modality)
    db.session().add(replacement)
    db.session().flush()
    audit.record("attendance.correct", target=f"attendance:{replacement.id}", user=by_user,
                 replaces=record.id, session=record.session_id, reason=reason)
    return replacement


def close_session(group_session: GroupSession, closed_at: datetime, by_user: StaffUser | None = None) -> int:
    """Rule 2: check out everyone still in at the earlier of close and scheduled end, then close.

    Idempotent: a closed session is left as it is. Returns how many were checked out."""
    if group_session.status == "closed":
        return 0
    at = hours.close_check_out(closed_at, group_session.ends_at)
    still_in = db.session().scalars(select(Attendance).where(
        Attendance.session_id == group_session.id, Attendance.voided_at.is_(None),
        Attendance.check_in_at.is_not(None), Attendance.check_out_at.is_(None))).all()
    for record in still_in:
        record.check_out_at = max(at, record.check_in_at)
        record.check_out_source = "close"
    group_session.status = "closed"
    group_session.closed_at = closed_at
    db.session().flush()
    audit.record("session.close", target=f"session:{group_session.id}", user=by_user, checked_out=len(still_in))
    return len(still_in)


def session_members(group_session: GroupSession) -> list[Client]:
    """Active clients in the session's group (for manual check-in lists)."""
    return list(db.session().scalars(
        select(Client).join(ClientGroup, ClientGroup.client_key == Client.id)
        .where(ClientGroup.group_id == group_session.group_id, Client.status == "active")
        .order_by(Client.first_name, Client.last_name)))

"""Writing attendance: check-in, check-out, excused, close, corrections. The one place that writes it.

Callers hold the unit of work (`with db.transaction():`); these functions add and flush, and
audit every manual change. Corrections void a record and add a new one; nothing is edited silently.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from iop import audit, clock, db, hours
from iop.models import Attendance, Client, ClientGroup, GroupSession, StaffUser
from iop.sessions import ensure_session, local_date, meets_on, program_tz


class AttendanceError(ValueError):
    """A refused attendance change: `code` for programs, the message for the person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def opens_at(meeting: GroupSession) -> datetime:
    return meeting.starts_at - timedelta(minutes=current_app.config["SESSION_OPENS_BEFORE_MINUTES"])


def is_open_at(meeting: GroupSession, moment: datetime) -> bool:
    """A session takes check-ins from 30 minutes before its start until its end, unless closed."""
    return meeting.status not in ("closed", "cancelled") and opens_at(meeting) <= moment < meeting.ends_at


def session_open_for(client: Client, moment: datetime) -> GroupSession | None:
    """The client's group session open at `moment` (made from the schedule if the job has not yet)."""
    day = local_date(moment, program_tz())
    candidates = []
    for group in client.groups:
        for date_ in (day, day + timedelta(days=1)):  # a session just after midnight opens the day before
            if meets_on(group, date_):
                meeting = ensure_session(group, date_)
                if is_open_at(meeting, moment):
                    candidates.append(meeting)
    return min(candidates, key=lambda m: m.starts_at) if candidates else None


def live_attendance(meeting_id: int, client_pk: int) -> Attendance | None:
    return db.session().scalar(select(Attendance).where(
        Attendance.session_id == meeting_id, Attendance.client_id == client_pk, Attendance.voided_at.is_(None)))


def _audit_manual(action: str, record: Attendance, by_user: StaffUser | None, reason: str | None) -> None:
    if by_user is not None:
        audit.record(action, target=f"attendance:{record.id}", user=by_user, session=record.session_id,
                     reason=reason or "")


def check_in(meeting: GroupSession, client: Client, at: datetime, source: str = "kiosk",
             by_user: StaffUser | None = None, reason: str | None = None) -> Attendance:
    """A new check-in. Any other open attendance of the client ends at `at` (they moved rooms)."""
    if live_attendance(meeting.id, client.id) is not None:
        raise AttendanceError("already_checked_in", "This client is already checked in to this group.")
    for other in db.session().scalars(select(Attendance).join(GroupSession).where(
            Attendance.client_id == client.id, Attendance.voided_at.is_(None),
            Attendance.check_in_at.is_not(None), Attendance.check_out_at.is_(None),
            GroupSession.id != meeting.id, GroupSession.ends_at > at)):
        if other.check_in_at <= at:
            check_out(other, at, source, by_user)
    record = Attendance(session_id=meeting.id, client_id=client.id, status="present", source=source,
                        check_in_at=at, reason=reason, recorded_by_id=by_user.id if by_user else None)
    db.session().add(record)
    db.session().flush()
    _audit_manual("attendance.check_in", record, by_user, reason)
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


def excuse(meeting: GroupSession, client: Client, by_user: StaffUser, reason: str) -> Attendance:
    """An excused absence: no minutes, no change to the target (rule 7)."""
    reason = (reason or "").strip()
    if not reason:
        raise AttendanceError("reason_required", "Please give a reason for the excused absence.")
    existing = live_attendance(meeting.id, client.id)
    if existing is not None:
        if existing.status == "excused":
            return existing
        raise AttendanceError("already_checked_in", "This client checked in; correct the record instead.")
    record = Attendance(session_id=meeting.id, client_id=client.id, status="excused", source="manual",
                        reason=reason, recorded_by_id=by_user.id)
    db.session().add(record)
    db.session().flush()
    _audit_manual("attendance.excuse", record, by_user, reason)
    return record


def correct(record: Attendance, check_in: datetime | None, check_out: datetime | None, by_user: StaffUser,
            reason: str, status: str = "present") -> Attendance:
    """Void `record` and add its replacement with the given times (audited, with the reason)."""
    reason = (reason or "").strip()
    if not reason:
        raise AttendanceError("reason_required", "Please say why the record is being corrected.")
    if check_in is not None and check_out is not None and check_out < check_in:
        raise AttendanceError("check_out_before_check_in", "The check-out would be before the check-in.")
    now = clock.now()
    record.voided_at, record.voided_by_id, record.void_reason = now, by_user.id, reason
    db.session().flush()
    replacement = Attendance(session_id=record.session_id, client_id=record.client_id, status=status,
                             source="manual", check_in_at=check_in, check_out_at=check_out,
                             check_out_source="manual" if check_out else None, reason=reason,
                             recorded_by_id=by_user.id, replaces_id=record.id)
    db.session().add(replacement)
    db.session().flush()
    audit.record("attendance.correct", target=f"attendance:{replacement.id}", user=by_user,
                 replaces=record.id, session=record.session_id, reason=reason)
    return replacement


def close_session(meeting: GroupSession, closed_at: datetime, by_user: StaffUser | None = None) -> int:
    """Rule 2: check out everyone still in at the earlier of close and scheduled end, then close.

    Idempotent: a closed session is left as it is. Returns how many were checked out."""
    if meeting.status == "closed":
        return 0
    at = hours.close_check_out(closed_at, meeting.ends_at)
    still_in = db.session().scalars(select(Attendance).where(
        Attendance.session_id == meeting.id, Attendance.voided_at.is_(None),
        Attendance.check_in_at.is_not(None), Attendance.check_out_at.is_(None))).all()
    for record in still_in:
        record.check_out_at = max(at, record.check_in_at)
        record.check_out_source = "close"
    meeting.status = "closed"
    meeting.closed_at = closed_at
    db.session().flush()
    audit.record("session.close", target=f"session:{meeting.id}", user=by_user, checked_out=len(still_in))
    return len(still_in)


def session_members(meeting: GroupSession) -> list[Client]:
    """Active clients in the session's group (for manual check-in lists)."""
    return list(db.session().scalars(
        select(Client).join(ClientGroup, ClientGroup.client_id == Client.id)
        .where(ClientGroup.group_id == meeting.group_id, Client.status == "active")
        .order_by(Client.first_name, Client.last_name)))

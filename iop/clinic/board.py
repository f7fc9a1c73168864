"""The coordinator's hours pages as rows: the week's board (one row a client, those someone can still
help first) and a client's attendance with its credited minutes and flags.

The figures are the hours rules' (iop.rules.hours; iop.store.hours_queries for many rows at once);
this module adds who the clients are, their groups and the week's flags, so the views only show them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from iop import clock, config
from iop.rules import hours
from iop.store import db, hours_queries
from iop.store.models import Attendance, Client, ClientGroup, Group, GroupSession, WeekFlag

# at_risk and short first (someone can still act on them), then the rest.
STATUS_ORDER = {"at_risk": 0, "short": 1, "on_track": 2, "no_plan": 3, "met": 4}


# ---- the week's board ----------------------------------------------------------------------------

@dataclass
class BoardRow:
    client: Client
    figures: hours.WeekFigures
    groups: list[str]
    flagged: bool

    @property
    def percent(self) -> int:
        target = self.figures.target_minutes
        if not target:
            return 100 if self.figures.attended_minutes else 0
        return min(100, round(100 * self.figures.attended_minutes / target))

    @property
    def sort_key(self):
        return (STATUS_ORDER[self.figures.status], self.percent, self.client.client_id)


def board_rows(monday: date, now: datetime, group_code: str | None = None,
               level_code: str | None = None) -> list[BoardRow]:
    """Active clients with a plan touching the week or attendance in it, at_risk and short first;
    only a group's members with `group_code`, only a level's weeks with `level_code`."""
    figures = hours_queries.week_figures(monday, now, clock.program_tz())
    if not figures:
        return []
    session = db.session()
    clients = {c.id: c for c in session.scalars(
        select(Client).where(Client.status == "active", Client.id.in_(list(figures))))}
    groups_of: dict[int, list[str]] = {}
    for client_key, code in session.execute(
            select(ClientGroup.client_key, Group.code).join(Group, Group.id == ClientGroup.group_id)
            .order_by(Group.code)):
        groups_of.setdefault(client_key, []).append(code)
    flagged = set(session.scalars(select(WeekFlag.client_key).where(WeekFlag.week_start == monday)))
    rows = []
    for client_key, figure in figures.items():
        client = clients.get(client_key)
        if client is None:
            continue
        codes = groups_of.get(client_key, [])
        if group_code and group_code not in codes:
            continue
        if level_code and figure.level_of_care != level_code:
            continue
        rows.append(BoardRow(client, figure, codes, client_key in flagged))
    return sorted(rows, key=lambda row: row.sort_key)


# ---- a client's attendance -----------------------------------------------------------------------

@dataclass
class AttendanceRow:
    day: date
    group: str
    check_in: str  # local HH:MM, empty when none
    check_out: str
    minutes: int
    late: bool
    left_early: bool
    status: str
    still_in: bool


def client_attendance(client_key: int, first: date, last: date, now: datetime) -> list[AttendanceRow]:
    """The client's unvoided attendance in sessions dated first..last, newest first, each with the
    minutes credited so far and the late and left-early flags (rules 1, 2, 7 and 8)."""
    grace, tz = config.grace_minutes(), clock.program_tz()
    found = db.session().execute(
        select(Attendance, GroupSession, Group.code)
        .join(GroupSession, GroupSession.id == Attendance.session_id).join(Group, Group.id == GroupSession.group_id)
        .where(Attendance.client_key == client_key, Attendance.voided_at.is_(None),
               GroupSession.date.between(first, last))
        .order_by(GroupSession.date.desc(), GroupSession.starts_at.desc())).all()
    rows = []
    for record, group_session, code in found:
        present, starts, ends = record.status == "present", group_session.starts_at, group_session.ends_at
        late, left_early = hours.attendance_flags(present, record.check_in_at, record.check_out_at, starts, ends, grace)
        rows.append(AttendanceRow(
            day=group_session.date, group=code, check_in=_local_time(record.check_in_at, tz),
            check_out=_local_time(record.check_out_at, tz),
            minutes=hours.credited_so_far(present, record.check_in_at, record.check_out_at, starts, ends, now),
            late=late, left_early=left_early, status=record.status,
            still_in=present and record.check_in_at is not None and record.check_out_at is None))
    return rows


def _local_time(moment: datetime | None, tz) -> str:
    return moment.astimezone(tz).strftime("%H:%M") if moment else ""

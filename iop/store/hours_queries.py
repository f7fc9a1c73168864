"""The hours rules applied to many rows at once: SQL that computes credited minutes, days and
weeks in the database, and the week figures the board, the kiosk and the exports show.
"""
from __future__ import annotations

import functools
import sqlite3
from datetime import date, datetime, timedelta
from typing import Iterable, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, case, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from iop.rules.entry import weekday_numbers
from iop.rules.hours import (
    FULL_DAY_MINUTES,
    SIX_DAYS,
    Phase,
    PlanTerms,
    days_attended,
    decimal_hours,
    is_full_day,
    plan_in_effect,
    plan_week_target,
    remaining_minutes,
    week_bounds,
    week_start,
    week_status,
    week_target,
    weeks_overlapping,
)
from iop.store.db import one_of

# ---- SQL: rule 1 for many rows at once -------------------------------------------------------

_SQLITE_HAS_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)  # a third faster than strftime('%s')


class epoch_seconds(FunctionElement):
    """Seconds since 1970 of a stored (naive UTC) timestamp, as an integer, on SQLite and PostgreSQL."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': cut the fraction (SQLite would round it to the
    # millisecond first, and 09:00:00.9996 would become 09:00:01; Python truncates).
    stamp = "substr(%s, 1, 19)" % compiler.process(element.clauses, **kw)
    return f"unixepoch({stamp})" if _SQLITE_HAS_UNIXEPOCH else f"CAST(strftime('%%s', {stamp}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    return "CAST(FLOOR(EXTRACT(EPOCH FROM %s)) AS BIGINT)" % compiler.process(element.clauses, **kw)


class least(FunctionElement):
    type = Integer()
    inherit_cache = True


class greatest(FunctionElement):
    type = Integer()
    inherit_cache = True


@compiles(least, "sqlite")
def _least_sqlite(element, compiler, **kw):
    return "MIN(%s)" % compiler.process(element.clauses, **kw)


@compiles(greatest, "sqlite")
def _greatest_sqlite(element, compiler, **kw):
    return "MAX(%s)" % compiler.process(element.clauses, **kw)


@compiles(least, "postgresql")
def _least_pg(element, compiler, **kw):
    return "LEAST(%s)" % compiler.process(element.clauses, **kw)


@compiles(greatest, "postgresql")
def _greatest_pg(element, compiler, **kw):
    return "GREATEST(%s)" % compiler.process(element.clauses, **kw)


class floor_div_60(FunctionElement):
    """Whole minutes of a non-negative number of seconds."""

    type = Integer()
    inherit_cache = True


@compiles(floor_div_60, "sqlite")
def _div_sqlite(element, compiler, **kw):
    return "((%s) / 60)" % compiler.process(element.clauses, **kw)


@compiles(floor_div_60, "postgresql")
def _div_pg(element, compiler, **kw):
    return "((%s) / 60)" % compiler.process(element.clauses, **kw)  # BIGINT / INT truncates; input >= 0


def credited_minutes_sql(attendance, group_session, now: datetime | None) -> ColumnElement[int]:
    """Rule 1 (with rule 2's open check-out up to now) as a column expression over a join of
    Attendance and GroupSession; 0 for excused records (rule 7, even if times were typed on them)
    and for records without a check-in.
    With `now` None the statement takes it at execution, as the parameter `hours_now`.

    The earlier end and the later start are chosen on the stored times themselves (on SQLite the
    fixed-width text sorts as time does), so each row converts two instants to seconds, not four."""
    from iop.store.models import UTCDateTime

    now_param = bindparam("hours_now", type_=UTCDateTime()) if now is None else \
        bindparam("hours_now", now, type_=UTCDateTime())
    seconds = (epoch_seconds(least(func.coalesce(attendance.check_out_at, now_param), group_session.ends_at))
               - epoch_seconds(greatest(attendance.check_in_at, group_session.starts_at)))
    return case((attendance.check_in_at.is_(None), 0), (attendance.status != "present", 0),
                else_=floor_div_60(greatest(0, seconds)))


# ---- one week for many clients ---------------------------------------------------------------

class WeekFigures(NamedTuple):
    """A client's week: every number the kiosk, the board and the hours export show."""

    client_key: int
    week_start: date
    level_of_care: str
    target_minutes: int
    attended_minutes: int
    days_attended: int
    status: str
    full_days: int = 0

    @property
    def attended_hours(self) -> str:
        return decimal_hours(self.attended_minutes)


# The board's statements are built once, with parameters, and only bound per call: building and
# keying an expression this deep costs about as much as running it on a week of a large program.

@functools.cache
def _minutes_by_day_statement(for_named_clients: bool):
    """(client_key, day, minutes) per client and day for sessions dated :first..:last.

    It starts from the sessions' dates (indexed) and reaches attendance through its (session,
    client) index, so its cost follows the range's rows, not the table's."""
    from sqlalchemy import select

    from iop.store.models import Attendance, GroupSession

    query = (
        select(Attendance.client_key.label("client_key"), GroupSession.date.label("day"),
               func.sum(credited_minutes_sql(Attendance, GroupSession, None)).label("minutes"))
        .select_from(GroupSession)
        .join(Attendance, GroupSession.id == Attendance.session_id)
        .where(GroupSession.date.between(bindparam("first"), bindparam("last")), Attendance.voided_at.is_(None),
               Attendance.status == "present")
        .group_by(Attendance.client_key, GroupSession.date)
    )
    if for_named_clients:
        query = query.where(one_of(Attendance.client_key, "client_keys"))
    return query


@functools.cache
def _totals_statement(for_named_clients: bool):
    from sqlalchemy import select

    days = _minutes_by_day_statement(for_named_clients).subquery()
    return select(
        days.c.client_key, func.sum(days.c.minutes),
        func.sum(case((days.c.minutes > 0, 1), else_=0)),
        func.sum(case((days.c.minutes >= bindparam("full_day"), 1), else_=0)),
    ).group_by(days.c.client_key)


def _range_params(first: date, last: date, now: datetime | None, client_keys: Sequence[int] | None) -> dict:
    params = {"first": first, "last": last, "hours_now": now}
    if client_keys is not None:
        params["client_keys"] = list(client_keys)
    return params


def minutes_by_client_day(first: date, last: date, now: datetime, client_keys: Sequence[int] | None = None):
    """{(client_key, date): credited minutes} for sessions dated first..last: one GROUP BY in SQL."""
    from iop.store import db

    rows = db.session().execute(_minutes_by_day_statement(client_keys is not None),
                                _range_params(first, last, now, client_keys))
    return {(client_key, day): int(minutes or 0) for client_key, day, minutes in rows}


def totals_by_client(first: date, last: date, now: datetime, full_day_minutes: int,
                     client_keys: Sequence[int] | None = None) -> dict[int, tuple[int, int, int]]:
    """{client_key: (credited minutes, days attended, full days)} over first..last, summed in SQL
    from the per-day minutes (rule 3), so one row a client comes back, not one a day."""
    from iop.store import db

    params = {**_range_params(first, last, now, client_keys), "full_day": full_day_minutes}
    rows = db.session().connection().execute(_totals_statement(client_keys is not None), params).all()
    return {client_key: (int(minutes or 0), int(attended or 0), int(full or 0))
            for client_key, minutes, attended, full in rows}


@functools.cache
def _plans_statement(for_named_clients: bool, for_one_client: bool = False):
    """The plans touching :first..:last, one row per plan or per phase of a plan with phases.
    Plans are found by their end (indexed: open, or on or after :first). Dates come as ISO text,
    read in Python: SQLAlchemy's SQLite date reader runs a regular expression per value."""
    from sqlalchemy import or_, select

    from iop.store.models import Plan, PlanPhase

    plan, phase = Plan.__table__.c, PlanPhase.__table__.c  # plain rows: no ORM objects to build
    query = (select(plan.id, plan.client_key, _iso_text(plan.start_date), _iso_text(plan.end_date),
                    plan.weekly_minutes, plan.days_per_week, plan.level_of_care, phase.first_week, phase.last_week,
                    phase.weekly_minutes, phase.days_per_week)
             .select_from(Plan.__table__.outerjoin(PlanPhase.__table__, phase.plan_id == plan.id))
             .where(plan.start_date <= bindparam("last"),
                    or_(plan.end_date.is_(None), plan.end_date >= bindparam("first"))))
    if for_one_client:  # a plain parameter: an expanding IN list is rendered again on every call
        query = query.where(plan.client_key == bindparam("client_key"))
    elif for_named_clients:
        query = query.where(one_of(plan.client_key, "client_keys"))
    return query


def plans_touching(first: date, last: date, client_keys: Sequence[int] | None = None) -> dict[int, list[PlanTerms]]:
    """{client_key: [PlanTerms]} of the plans whose dates touch first..last (one plain query)."""
    from iop.store import db

    return _plans_from_rows(db.session().connection().execute(_plans_statement(client_keys is not None),
                                                              _range_params(first, last, None, client_keys)).all())


def _plans_from_rows(rows) -> dict[int, list[PlanTerms]]:
    plans: dict[int, list[PlanTerms]] = {}
    staged: dict[int, tuple] = {}  # plans with phases wait until all their phases are read
    iso = date.fromisoformat
    for plan_id, client_key, start, end, weekly, days, level, *phase in rows:
        if phase[0] is None:
            plans.setdefault(client_key, []).append(
                PlanTerms(iso(start), iso(end) if end else None, weekly, days, level, ()))
        elif plan_id in staged:
            staged[plan_id][1].append(Phase(*phase))
        else:
            staged[plan_id] = ((client_key, start, end, weekly, days, level), [Phase(*phase)])
    for (client_key, start, end, weekly, days, level), phases in staged.values():
        plans.setdefault(client_key, []).append(
            PlanTerms(iso(start), iso(end) if end else None, weekly, days, level, tuple(sorted(phases))))
    return plans


def _iso_text(column):
    from sqlalchemy import String, cast

    return cast(column, String)


@functools.cache
def _week_sessions_statement():
    from sqlalchemy import select

    from iop.store.models import GroupSession

    group_session = GroupSession.__table__.c
    return select(group_session.group_id, group_session.date, group_session.status, group_session.starts_at, group_session.ends_at).where(
        group_session.date.between(bindparam("first"), bindparam("last")))


@functools.cache
def _active_groups_statement():
    from sqlalchemy import select

    from iop.store.models import Group

    group = Group.__table__.c
    return select(group.id, group.weekdays, group.start, group.end).where(group.active.is_(True))


def group_windows(monday: date, tz: ZoneInfo) -> dict[int, list[tuple[datetime, datetime]]]:
    """Each active group's session windows in the week that can still be attended.

    A dated session keeps its own window (the group's schedule may have changed since it was made);
    a cancelled or closed session offers nothing more; days without a session row follow the schedule."""
    from iop.store import db

    sunday = monday + timedelta(days=6)
    connection = db.session().connection()
    dated: dict[tuple[int, date], tuple[str, datetime, datetime]] = {
        (group_id, day): (status, starts, ends) for group_id, day, status, starts, ends
        in connection.execute(_week_sessions_statement(), {"first": monday, "last": sunday}).all()}
    return _windows_of(monday, tz, connection.execute(_active_groups_statement()).all(), dated)


def _windows_of(monday: date, tz: ZoneInfo, groups, dated) -> dict[int, list[tuple[datetime, datetime]]]:
    """group_windows from its rows: `groups` (id, weekdays, start, end) of active groups and the week's
    `dated` sessions {(group_id, day): (status, starts, ends)}. Shared with the one-client week below."""
    from iop.clock import local_to_utc
    windows: dict[int, list[tuple[datetime, datetime]]] = {}
    for group_id, weekdays, start, end in groups:
        meets = set(weekday_numbers(weekdays))
        for offset in range(7):
            day = monday + timedelta(days=offset)
            session_row = dated.get((group_id, day))
            if session_row is not None:
                status, starts, ends = session_row
                if status not in ("cancelled", "closed"):
                    windows.setdefault(group_id, []).append((starts, ends))
            elif day.weekday() in meets:
                windows.setdefault(group_id, []).append((local_to_utc(day, start, tz), local_to_utc(day, end, tz)))
    return windows


def merged_windows(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping windows joined: a client in two groups at once can only sit in one room."""
    merged: list[tuple[datetime, datetime]] = []
    for starts, ends in sorted(windows):
        if merged and starts <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((starts, ends))
    return merged


@functools.cache
def _membership_statement(for_named_clients: bool):
    from sqlalchemy import select

    from iop.store.models import ClientGroup

    member = ClientGroup.__table__.c
    query = select(member.client_key, member.group_id)
    if for_named_clients:
        query = query.where(one_of(member.client_key, "client_keys"))
    return query


def remaining_by_client(monday: date, now: datetime, tz: ZoneInfo,
                        client_keys: Sequence[int] | None = None) -> dict[int, int]:
    """{client_key: minutes still to come this week in their groups' sessions} (rule 6)."""
    from iop.store import db

    windows = group_windows(monday, tz)
    if not windows:
        return {}
    per_group = {group_id: remaining_minutes(group_windows_, now) for group_id, group_windows_ in windows.items()}
    params = {} if client_keys is None else {"client_keys": list(client_keys)}
    groups_of: dict[int, list[int]] = {}
    for client_key, group_id in db.session().connection().execute(
            _membership_statement(client_keys is not None), params).all():
        if group_id in windows:
            groups_of.setdefault(client_key, []).append(group_id)
    remaining = {}
    for client_key, group_ids in groups_of.items():
        if len(group_ids) == 1:
            remaining[client_key] = per_group[group_ids[0]]
        else:
            remaining[client_key] = _remaining_across(windows, group_ids, now)
    return remaining


def _remaining_across(windows: dict[int, list[tuple[datetime, datetime]]], group_ids: Sequence[int],
                      now: datetime) -> int:
    """Minutes still to come in several groups' windows, overlaps counted once."""
    return remaining_minutes(merged_windows(w for group_id in group_ids for w in windows[group_id]), now)


def _full_day_minutes(full_day_minutes: int | None) -> int:
    if full_day_minutes is not None:
        return full_day_minutes
    from flask import current_app, has_app_context

    return current_app.config.get("FULL_DAY_MINUTES", FULL_DAY_MINUTES) if has_app_context() else FULL_DAY_MINUTES


def figures_for_week(client_key: int, monday: date, totals: tuple[int, int, int], plans: Sequence[PlanTerms],
                     week_over: bool, still_possible: int) -> WeekFigures:
    """One client's WeekFigures from their (minutes, days attended, full days) and plans (pure)."""
    attended, days, full_days = totals
    if len(plans) == 1:  # the usual case, kept cheap: the board does this for every client
        target = plan_week_target(plans[0], monday)
        in_effect = plans[0] if target is not None else None
    else:
        target, in_effect = week_target(plans, monday), plan_in_effect(plans, monday)
    return WeekFigures(
        client_key=client_key, week_start=monday, level_of_care=in_effect.level_of_care if in_effect else "",
        target_minutes=target or 0, attended_minutes=attended, days_attended=days,
        status=week_status(target, attended, week_over, still_possible), full_days=full_days,
    )


NOTHING = (0, 0, 0)


def week_figures(monday: date, now: datetime, tz: ZoneInfo, client_keys: Sequence[int] | None = None,
                 full_day_minutes: int | None = None) -> dict[int, WeekFigures]:
    """WeekFigures for the week of `monday`, for the named clients (or every client with a plan
    touching the week or attendance in it)."""
    sunday = monday + SIX_DAYS
    totals = totals_by_client(monday, sunday, now, _full_day_minutes(full_day_minutes), client_keys)
    plans = plans_touching(monday, sunday, client_keys)
    wanted = set(client_keys) if client_keys is not None else plans.keys() | totals.keys()
    if not wanted:
        return {}
    week_over = now >= week_bounds(monday, tz)[1]
    remaining = {} if week_over else remaining_by_client(monday, now, tz, client_keys)
    # figures_for_week, unrolled: the board runs this for every client in the program.
    figures = {}
    for client_key in wanted:
        attended, days, full_days = totals.get(client_key, NOTHING)
        client_plans = plans.get(client_key, ())
        if len(client_plans) == 1:
            target = plan_week_target(client_plans[0], monday)
            level = client_plans[0].level_of_care if target is not None else ""
        else:
            target, in_effect = week_target(client_plans, monday), plan_in_effect(client_plans, monday)
            level = in_effect.level_of_care if in_effect else ""
        figures[client_key] = WeekFigures(
            client_key, monday, level, target or 0, attended, days,
            week_status(target, attended, week_over, remaining.get(client_key, 0)), full_days)
    return figures


def client_weeks(client_key: int, first_monday: date, last_monday: date, now: datetime, tz: ZoneInfo,
                 full_day_minutes: int | None = None) -> list[WeekFigures]:
    """One client's WeekFigures for every week first_monday..last_monday (a client page's history),
    in a few queries rather than a few per week."""
    last_sunday = last_monday + timedelta(days=6)
    full_day = _full_day_minutes(full_day_minutes)
    by_week: dict[date, dict[date, int]] = {}
    for (_pk, day), minutes in minutes_by_client_day(first_monday, last_sunday, now, [client_key]).items():
        by_week.setdefault(week_start(day), {})[day] = minutes
    plans = plans_touching(first_monday, last_sunday, [client_key]).get(client_key, [])
    weeks = []
    for monday in weeks_overlapping(first_monday, last_monday):
        week_over = now >= week_bounds(monday, tz)[1]
        still_possible = 0 if week_over else remaining_by_client(monday, now, tz, [client_key]).get(client_key, 0)
        by_day = by_week.get(monday, {})
        totals = (sum(by_day.values()), days_attended(by_day),
                  sum(1 for minutes in by_day.values() if is_full_day(minutes, full_day)))
        weeks.append(figures_for_week(client_key, monday, totals, plans, week_over, still_possible))
    return weeks


# ---- one client's week (the kiosk's greeting) --------------------------------------------------
# week_figures for one client, in three small indexed queries: the client's plans, their attendance
# of the week (by ix_attendance_client_id) and only their own groups' windows. The kiosk answers
# every scan with the first two; tests/test_scan_speed_paths.py holds client_week equal to week_figures.

def client_plans(client_key: int, first: date, last: date) -> tuple[PlanTerms, ...]:
    """The client's plans whose dates touch first..last (plans_touching for one client)."""
    from iop.store import db

    rows = db.session().connection().execute(_plans_statement(True, True),
                                             {"client_key": client_key, "first": first, "last": last}).all()
    return tuple(_plans_from_rows(rows).get(client_key, ()))


@functools.cache
def _client_groups_week_statement():
    """The client's active groups, each with its sessions dated :first..:last (if any)."""
    from sqlalchemy import and_, select

    from iop.store.models import ClientGroup, Group, GroupSession

    member, group, group_session = ClientGroup.__table__.c, Group.__table__.c, GroupSession.__table__.c
    return (select(group.id, group.weekdays, group.start, group.end, group_session.date, group_session.status,
                   group_session.starts_at, group_session.ends_at)
            .select_from(ClientGroup.__table__.join(Group.__table__, group.id == member.group_id)
                         .outerjoin(GroupSession.__table__,
                                    and_(group_session.group_id == group.id,
                                         group_session.date.between(bindparam("first"), bindparam("last")))))
            .where(member.client_key == bindparam("client_key"), group.active.is_(True)))


def client_remaining(client_key: int, monday: date, now: datetime, tz: ZoneInfo) -> int:
    """remaining_by_client for one client: from only their own groups' windows (one query)."""
    from iop.store import db

    groups, dated = {}, {}
    for group_id, weekdays, start, end, day, status, starts, ends in db.session().connection().execute(
            _client_groups_week_statement(), {"client_key": client_key, "first": monday, "last": monday + SIX_DAYS}):
        groups[group_id] = (group_id, weekdays, start, end)
        if day is not None:
            dated[(group_id, day)] = (status, starts, ends)
    windows = _windows_of(monday, tz, groups.values(), dated)
    group_ids = [group_id for group_id in groups if group_id in windows]
    if not group_ids:
        return 0
    if len(group_ids) == 1:
        return remaining_minutes(windows[group_ids[0]], now)
    return _remaining_across(windows, group_ids, now)


@functools.cache
def _client_days_statement():
    """(client_key, day, credited minutes) of the named clients for sessions dated :first..:last, from
    their own attendance (ix_attendance_client_id), with the same rule-1 expression as the board's."""
    from sqlalchemy import select

    from iop.store.models import Attendance, GroupSession

    return (select(Attendance.client_key, GroupSession.date,
                   func.sum(credited_minutes_sql(Attendance, GroupSession, None)))
            .select_from(Attendance)
            .join(GroupSession, GroupSession.id == Attendance.session_id)
            .where(one_of(Attendance.client_key, "client_keys"), Attendance.voided_at.is_(None),
                   Attendance.status == "present",
                   GroupSession.date.between(bindparam("first"), bindparam("last")))
            .group_by(Attendance.client_key, GroupSession.date))


def clients_minutes_by_day(client_keys: Sequence[int], first: date, last: date, now: datetime
                           ) -> dict[tuple[int, date], int]:
    """{(client_key, date): credited minutes} of a few clients for sessions dated first..last (one
    indexed query: the kiosk's greetings of a batch of scans)."""
    from iop.store import db

    rows = db.session().connection().execute(_client_days_statement(), {
        "client_keys": list(client_keys), "first": first, "last": last, "hours_now": now})
    return {(client_key, day): int(minutes or 0) for client_key, day, minutes in rows}


def client_minutes_by_day(client_key: int, first: date, last: date, now: datetime) -> dict[date, int]:
    """{date: credited minutes} of one client for sessions dated first..last."""
    return {day: minutes for (_pk, day), minutes in clients_minutes_by_day([client_key], first, last, now).items()}


def week_minutes(minutes_by_date: dict[date, int], monday: date) -> list[int]:
    """The credited minutes of each attended date of the week of `monday` (other dates left out)."""
    sunday = monday + SIX_DAYS
    return [minutes for day, minutes in minutes_by_date.items() if monday <= day <= sunday]


def client_week(client_key: int, monday: date, now: datetime, tz: ZoneInfo,
                full_day_minutes: int | None = None) -> WeekFigures:
    """week_figures(monday, now, tz, [client_key])[client_key], for one client in three small queries."""
    sunday = monday + SIX_DAYS
    full_day = _full_day_minutes(full_day_minutes)
    week = week_minutes(client_minutes_by_day(client_key, monday, sunday, now), monday)
    totals = (sum(week), sum(1 for minutes in week if minutes > 0),
              sum(1 for minutes in week if is_full_day(minutes, full_day)))
    week_over = now >= week_bounds(monday, tz)[1]
    still_possible = 0 if week_over else client_remaining(client_key, monday, now, tz)
    return figures_for_week(client_key, monday, totals, client_plans(client_key, monday, sunday), week_over,
                            still_possible)

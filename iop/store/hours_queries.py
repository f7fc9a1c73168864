"""The hours rules applied to many rows at once: SQL that computes credited minutes, days and
weeks in the database, and the week figures the board, the client page and the exports show.

Read top-down: rule 1 as a column expression; the statements (built once, bound per call); what
they read (minutes per client and day, a week's totals, plans, the sessions still to come); and the
two ways to ask for week figures: one week of many clients (`week_figures`: the board, the hours
export, the noon check) and many weeks of one client (`client_weeks`: the client page). Both put
each week together with iop.rules.hours.figures_for_week; the pure rules live there.
"""
from __future__ import annotations

import functools
import sqlite3
from datetime import date, datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, case, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from iop import config
from iop.clock import local_to_utc
from iop.rules.entry import weekday_numbers
from iop.rules.hours import (
    SIX_DAYS,
    Phase,
    PlanTerms,
    WeekFigures,
    figures_for_week,
    merged_windows,
    remaining_minutes,
    week_bounds,
    week_start,
    week_totals,
    weeks_overlapping,
)
from iop.store.db import one_of

__all__ = ["WeekFigures", "client_weeks", "credited_minutes_sql", "group_windows", "minutes_by_client_day",
           "minutes_by_day_statement", "plans_touching", "range_params", "remaining_by_client", "totals_by_client",
           "week_figures"]

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


# ---- the statements ------------------------------------------------------------------------------
# Built once, with parameters (:first, :last, :hours_now, :client_keys), and only bound per call:
# building and keying an expression this deep costs about as much as running it on a week of a
# large program.

@functools.cache
def minutes_by_day_statement(for_named_clients: bool = False, with_sessions: bool = False):
    """(client_key, day, minutes[, sessions]) per client and day for sessions dated :first..:last:
    the one statement of credited minutes per day (rules 1 and 3), for the board, the client page,
    the kiosk's greeting and the days export (`sessions`: how many sessions earned minutes).
    Parameters from `range_params`.

    It names the sessions' dates (indexed) and the attendance's (session, client) index; for a
    few named clients the database starts from their own attendance (ix_attendance_client_key)
    instead, so its cost follows the rows asked for, not the table's."""
    from sqlalchemy import select

    from iop.store.models import Attendance, GroupSession

    credited = credited_minutes_sql(Attendance, GroupSession, None)
    columns = [Attendance.client_key.label("client_key"), GroupSession.date.label("day"),
               func.sum(credited).label("minutes")]
    if with_sessions:
        columns.append(func.sum(case((credited > 0, 1), else_=0)).label("sessions"))
    query = (
        select(*columns)
        .select_from(GroupSession)
        .join(Attendance, GroupSession.id == Attendance.session_id)
        .where(GroupSession.date.between(bindparam("first"), bindparam("last")), Attendance.voided_at.is_(None),
               Attendance.status == "present")
        .group_by(Attendance.client_key, GroupSession.date)
    )
    if for_named_clients:
        query = query.where(one_of(Attendance.client_key, "client_keys"))
    return query


def range_params(first: date, last: date, now: datetime | None, client_keys: Sequence[int] | None = None) -> dict:
    """The parameters of the statements here for sessions dated first..last (open check-outs count to `now`)."""
    params = {"first": first, "last": last, "hours_now": now}
    if client_keys is not None:
        params["client_keys"] = list(client_keys)
    return params


@functools.cache
def _totals_statement(for_named_clients: bool):
    from sqlalchemy import select

    days = minutes_by_day_statement(for_named_clients).subquery()
    return select(
        days.c.client_key, func.sum(days.c.minutes),
        func.sum(case((days.c.minutes > 0, 1), else_=0)),
        func.sum(case((days.c.minutes >= bindparam("full_day"), 1), else_=0)),
    ).group_by(days.c.client_key)


@functools.cache
def _plans_statement(for_named_clients: bool):
    """The plans touching :first..:last, one row per plan or per phase of a plan with phases.
    Plans are found by their end (indexed: open, or on or after :first). Dates come as ISO text,
    read in Python: SQLAlchemy's SQLite date reader runs a regular expression per value."""
    from sqlalchemy import String, cast, or_, select

    from iop.store.models import Plan, PlanPhase

    plan, phase = Plan.__table__.c, PlanPhase.__table__.c  # plain rows: no ORM objects to build
    query = (select(plan.id, plan.client_key, cast(plan.start_date, String), cast(plan.end_date, String),
                    plan.weekly_minutes, plan.days_per_week, plan.level_of_care, phase.first_week, phase.last_week,
                    phase.weekly_minutes, phase.days_per_week)
             .select_from(Plan.__table__.outerjoin(PlanPhase.__table__, phase.plan_id == plan.id))
             .where(plan.start_date <= bindparam("last"),
                    or_(plan.end_date.is_(None), plan.end_date >= bindparam("first"))))
    if for_named_clients:
        query = query.where(one_of(plan.client_key, "client_keys"))
    return query


@functools.cache
def _week_sessions_statement():
    from sqlalchemy import select

    from iop.store.models import GroupSession

    group_session = GroupSession.__table__.c
    return select(group_session.group_id, group_session.date, group_session.status, group_session.starts_at,
                  group_session.ends_at).where(group_session.date.between(bindparam("first"), bindparam("last")))


@functools.cache
def _active_groups_statement():
    from sqlalchemy import select

    from iop.store.models import Group

    group = Group.__table__.c
    return select(group.id, group.weekdays, group.start, group.end).where(group.active.is_(True))


@functools.cache
def _membership_statement(for_named_clients: bool):
    from sqlalchemy import select

    from iop.store.models import ClientGroup

    member = ClientGroup.__table__.c
    query = select(member.client_key, member.group_id)
    if for_named_clients:
        query = query.where(one_of(member.client_key, "client_keys"))
    return query


# ---- what they read ------------------------------------------------------------------------------

def minutes_by_client_day(first: date, last: date, now: datetime,
                          client_keys: Sequence[int] | None = None) -> dict[tuple[int, date], int]:
    """{(client_key, date): credited minutes} for sessions dated first..last, of every client or
    of the named ones: one GROUP BY in SQL."""
    from iop.store import db

    rows = db.session().connection().execute(minutes_by_day_statement(client_keys is not None),
                                             range_params(first, last, now, client_keys))
    return {(client_key, day): int(minutes or 0) for client_key, day, minutes in rows}


def totals_by_client(first: date, last: date, now: datetime, full_day_minutes: int,
                     client_keys: Sequence[int] | None = None) -> dict[int, tuple[int, int, int]]:
    """{client_key: (credited minutes, days attended, full days)} over first..last, summed in SQL
    from the per-day minutes (rule 3), so one row a client comes back, not one a day."""
    from iop.store import db

    params = {**range_params(first, last, now, client_keys), "full_day": full_day_minutes}
    rows = db.session().connection().execute(_totals_statement(client_keys is not None), params).all()
    return {client_key: (int(minutes or 0), int(attended or 0), int(full or 0))
            for client_key, minutes, attended, full in rows}


def plans_touching(first: date, last: date, client_keys: Sequence[int] | None = None) -> dict[int, list[PlanTerms]]:
    """{client_key: [PlanTerms]} of the plans whose dates touch first..last (one plain query)."""
    from iop.store import db

    rows = db.session().connection().execute(_plans_statement(client_keys is not None),
                                             range_params(first, last, None, client_keys)).all()
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


def group_windows(monday: date, tz: ZoneInfo) -> dict[int, list[tuple[datetime, datetime]]]:
    """Each active group's session windows in the week that can still be attended.

    A dated session keeps its own window (the group's schedule may have changed since it was made);
    a cancelled or closed session offers nothing more; days without a session row follow the schedule."""
    from iop.store import db

    connection = db.session().connection()
    dated: dict[tuple[int, date], tuple[str, datetime, datetime]] = {
        (group_id, day): (status, starts, ends) for group_id, day, status, starts, ends
        in connection.execute(_week_sessions_statement(), {"first": monday, "last": monday + SIX_DAYS}).all()}
    windows: dict[int, list[tuple[datetime, datetime]]] = {}
    for group_id, weekdays, start, end in connection.execute(_active_groups_statement()).all():
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


def remaining_by_client(monday: date, now: datetime, tz: ZoneInfo,
                        client_keys: Sequence[int] | None = None) -> dict[int, int]:
    """{client_key: minutes still to come this week in their groups' sessions} (rule 6; a client in
    two groups at once counts the overlap once)."""
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
            remaining[client_key] = remaining_minutes(
                merged_windows(w for group_id in group_ids for w in windows[group_id]), now)
    return remaining


# ---- the week figures ----------------------------------------------------------------------------

NOTHING = (0, 0, 0)


def week_figures(monday: date, now: datetime, tz: ZoneInfo,
                 client_keys: Sequence[int] | None = None) -> dict[int, WeekFigures]:
    """WeekFigures for the week of `monday`, for the named clients (or every client with a plan
    touching the week or attendance in it), in four queries whatever the number of clients."""
    sunday = monday + SIX_DAYS
    totals = totals_by_client(monday, sunday, now, config.full_day_minutes(), client_keys)
    plans = plans_touching(monday, sunday, client_keys)
    wanted = set(client_keys) if client_keys is not None else plans.keys() | totals.keys()
    if not wanted:
        return {}
    week_over = now >= week_bounds(monday, tz)[1]
    remaining = {} if week_over else remaining_by_client(monday, now, tz, client_keys)
    return {client_key: figures_for_week(client_key, monday, totals.get(client_key, NOTHING),
                                         plans.get(client_key, ()), week_over, remaining.get(client_key, 0))
            for client_key in wanted}


def client_weeks(client_key: int, first_monday: date, last_monday: date, now: datetime,
                 tz: ZoneInfo) -> list[WeekFigures]:
    """One client's WeekFigures for every week first_monday..last_monday (a client page's history),
    in a few queries rather than a few per week; each week as week_figures gives it."""
    last_sunday = last_monday + SIX_DAYS
    full_day = config.full_day_minutes()
    by_week: dict[date, dict[date, int]] = {}
    for (_client_key, day), minutes in minutes_by_client_day(first_monday, last_sunday, now, [client_key]).items():
        by_week.setdefault(week_start(day), {})[day] = minutes
    plans = plans_touching(first_monday, last_sunday, [client_key]).get(client_key, [])
    weeks = []
    for monday in weeks_overlapping(first_monday, last_monday):
        week_over = now >= week_bounds(monday, tz)[1]
        still_possible = 0 if week_over else remaining_by_client(monday, now, tz, [client_key]).get(client_key, 0)
        weeks.append(figures_for_week(client_key, monday, week_totals(by_week.get(monday, {}), full_day), plans,
                                      week_over, still_possible))
    return weeks

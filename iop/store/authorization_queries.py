"""The reads authorizations need: each client's attended days (credited minutes and sessions with
minutes, by the hours rules' own SQL expression), their authorizations, and the weekdays their
groups meet. The rules themselves are in iop.rules.authorizations.
"""
from __future__ import annotations

import functools
from datetime import date, datetime
from typing import NamedTuple, Sequence

from sqlalchemy import bindparam, case, func, select

from iop.rules.authorizations import DayAttended
from iop.rules.entry import weekday_numbers
from iop.store import db, hours_queries
from iop.store.db import one_of


@functools.cache
def _days_statement(for_named_clients: bool):
    """(client_key, day, minutes, sessions with minutes) for sessions dated :first..:last.

    The per-session rows are fenced off (OFFSET 0) so their credited minutes are computed once a row:
    folded into the sums, the expression was evaluated twice (SQLite and PostgreSQL repeat it for
    each sum that names it), a third of the statement's time on a quarter of a large program's attendance."""
    from iop.store.models import Attendance, GroupSession

    per_session = (
        select(Attendance.client_key.label("client_key"), GroupSession.date.label("day"),
               hours_queries.credited_minutes_sql(Attendance, GroupSession, None).label("minutes"))
        .select_from(GroupSession)
        .join(Attendance, GroupSession.id == Attendance.session_id)
        .where(GroupSession.date.between(bindparam("first"), bindparam("last")), Attendance.voided_at.is_(None),
               Attendance.status == "present")
    )
    if for_named_clients:
        per_session = per_session.where(one_of(Attendance.client_key, "client_keys"))
    per_session = per_session.offset(0).subquery()
    return (select(per_session.c.client_key, per_session.c.day, func.sum(per_session.c.minutes),
                   func.sum(case((per_session.c.minutes > 0, 1), else_=0)))
            .group_by(per_session.c.client_key, per_session.c.day))


def attended_days(first: date, last: date, now: datetime, client_keys: Sequence[int] | None = None
                  ) -> dict[int, dict[date, DayAttended]]:
    """{client_key: {date: DayAttended}} for sessions dated first..last (dates with minutes or sessions)."""
    params = {"first": first, "last": last, "hours_now": now}
    if client_keys is not None:
        if not client_keys:
            return {}
        params["client_keys"] = list(client_keys)
    found: dict[int, dict[date, DayAttended]] = {}
    for client_key, day, minutes, sessions in db.session().connection().execute(
            _days_statement(client_keys is not None), params):
        if isinstance(day, str):
            day = date.fromisoformat(day)
        found.setdefault(client_key, {})[day] = DayAttended(int(minutes or 0), int(sessions or 0))
    return found


@functools.cache
def _units_statement(for_named_clients: bool):
    """(authorization id, units counted) of the authorizations touching :range_first..:range_last: full days
    (for `day`) or sessions with minutes (for `session`) dated from their start to the earlier of their end
    and :on. Rule 10 over many authorizations in one statement, from the same per-day minutes as
    attended_days (iop.rules.authorizations.usage is the same rule for one client, and the tests hold
    the two equal)."""
    from sqlalchemy import and_

    from iop.store.models import Authorization

    per_day = _days_statement(False).subquery()
    client_key, day, minutes, sessions = per_day.c
    auth = Authorization.__table__.c
    units = case((auth.unit == "day", case((minutes >= bindparam("full_day"), 1), else_=0)), else_=sessions)
    query = (select(auth.id, func.sum(units))
             .select_from(Authorization.__table__.join(per_day, and_(client_key == auth.client_key,
                                                                    day >= auth.start_date, day <= auth.end_date)))
             .where(auth.start_date <= bindparam("range_last"), auth.end_date >= bindparam("range_first"))
             .group_by(auth.id))
    if for_named_clients:
        query = query.where(one_of(auth.client_key, "client_keys"))
    return query


def units_counted(range_first: date, range_last: date, days_first: date, on: date, now: datetime,
                  full_day_minutes: int, client_keys: Sequence[int] | None = None) -> dict[int, int]:
    """{authorization id: units counted up to `on`} for the authorizations touching range_first..range_last
    (those with none counted are left out)."""
    if on < days_first:
        return {}
    params = {"range_first": range_first, "range_last": range_last, "first": days_first, "last": on,
              "hours_now": now, "full_day": full_day_minutes}
    if client_keys is not None:
        params["client_keys"] = list(client_keys)
    return {authorization_id: int(counted or 0) for authorization_id, counted in db.session().connection().execute(
        _units_statement(client_keys is not None), params)}


def plans_of(first: date, last: date, client_keys: Sequence[int] | None = None):
    """{client_key: [PlanTerms]} touching first..last (the hours rules' own read)."""
    return hours_queries.plans_touching(first, last, client_keys)


class AuthorizationRecord(NamedTuple):
    """An authorization as the utilization reads it: plain values, no ORM object to build (thousands a page)."""

    id: int
    client_key: int
    payer: str
    number: str
    service: str
    unit: str
    units: int
    start_date: date
    end_date: date
    note: str


def authorizations_touching(first: date, last: date, client_keys: Sequence[int] | None = None
                            ) -> list[tuple[AuthorizationRecord, str, str, str, str]]:
    """(record, client_id, first_name, last_name, public_id) of the authorizations whose dates touch
    first..last, by client_id then start."""
    from iop.store.models import Authorization, Client

    auth = Authorization.__table__.c
    query = (select(auth.id, auth.client_key, auth.payer, auth.number, auth.service, auth.unit, auth.units,
                    auth.start_date, auth.end_date, auth.note, Client.client_id, Client.first_name, Client.last_name,
                    Client.public_id)
             .join(Client, Client.id == auth.client_key)
             .where(auth.start_date <= last, auth.end_date >= first)
             .order_by(Client.client_id, auth.start_date, auth.service, auth.number))
    if client_keys is not None:
        query = query.where(auth.client_key.in_(list(client_keys)))
    return [(AuthorizationRecord(*row[:10]), *row[10:]) for row in db.session().execute(query)]


def authorization_records(first: date, last: date, client_keys: Sequence[int] | None = None
                          ) -> list[AuthorizationRecord]:
    """The authorizations whose dates touch first..last as plain rows, without their clients' names and
    in no order (the board's marks and the days without one need only the dates and counts)."""
    from iop.store.models import Authorization

    auth = Authorization.__table__.c
    query = select(auth.id, auth.client_key, auth.payer, auth.number, auth.service, auth.unit, auth.units,
                   auth.start_date, auth.end_date, auth.note).where(auth.start_date <= last, auth.end_date >= first)
    if client_keys is not None:
        if not client_keys:
            return []
        query = query.where(auth.client_key.in_(list(client_keys)))
    return [AuthorizationRecord(*row) for row in db.session().execute(query)]


def group_member_keys(group_code: str) -> list[int]:
    """The client keys of a group's active members (none for a code no group has)."""
    from iop.store.models import Client, ClientGroup, Group

    return list(db.session().scalars(
        select(ClientGroup.client_key).join(Group, Group.id == ClientGroup.group_id)
        .join(Client, Client.id == ClientGroup.client_key).where(Group.code == group_code, Client.status == "active")))


def client_authorizations(client_key: int):
    from iop.store.models import Authorization

    return list(db.session().scalars(select(Authorization).where(Authorization.client_key == client_key)
                                     .order_by(Authorization.start_date.desc(), Authorization.service)))


def authorization(client_key: int, authorization_id: int):
    from iop.store.models import Authorization

    return db.session().scalar(select(Authorization).where(Authorization.id == authorization_id,
                                                           Authorization.client_key == client_key))


def sessions_by_weekday(client_keys: Sequence[int] | None = None) -> dict[int, dict[int, int]]:
    """{client_key: {weekday: scheduled sessions that weekday}} of each client's active groups."""
    from iop.store.models import ClientGroup, Group

    query = (select(ClientGroup.client_key, Group.weekdays).join(Group, Group.id == ClientGroup.group_id)
             .where(Group.active.is_(True)))
    if client_keys is not None:
        query = query.where(ClientGroup.client_key.in_(list(client_keys)))
    found: dict[int, dict[int, int]] = {}
    for client_key, weekdays in db.session().execute(query):
        week = found.setdefault(client_key, {})
        for number in _weekday_numbers(weekdays):
            week[number] = week.get(number, 0) + 1
    return found


@functools.lru_cache(maxsize=256)
def _weekday_numbers(weekdays: str) -> tuple[int, ...]:
    return tuple(weekday_numbers(weekdays))


def clients_by_id(client_ids: Sequence[str]) -> dict[str, int]:
    """{client_id: client_key} of the named clients that exist."""
    from iop.store.models import Client

    found: dict[str, int] = {}
    ids = sorted(set(client_ids))
    for start in range(0, len(ids), 500):
        found.update(db.session().execute(select(Client.client_id, Client.id)
                                          .where(Client.client_id.in_(ids[start:start + 500]))).all())
    return found


def people(client_keys: Sequence[int]) -> dict[int, tuple[str, str, str, str]]:
    """{client_key: (client_id, first_name, last_name, public_id)}."""
    from iop.store.models import Client

    found = {}
    keys = sorted(set(client_keys))
    for start in range(0, len(keys), 500):
        for row in db.session().execute(select(Client.id, Client.client_id, Client.first_name, Client.last_name,
                                               Client.public_id).where(Client.id.in_(keys[start:start + 500]))):
            found[row[0]] = tuple(row[1:])
    return found

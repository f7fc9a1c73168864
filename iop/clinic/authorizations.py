"""Payer authorizations: keeping them (audited; two of one client for one service never overlap) and
their utilization: units used, left and over, status on a date and the forecast (iop.rules.authorizations),
for the client page, the utilization page, the week board's marks and the utilization export.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Sequence

from flask import current_app

from iop.clinic import audit
from iop.clinic.program import Page, rows_page
from iop.rules import authorizations as rules
from iop.rules import entry
from iop.rules.hours import FULL_DAY_MINUTES
from iop.rules.hours import week_start as hours_week_start
from iop.store import authorization_queries as queries
from iop.store import db
from iop.store.models import Authorization, Client, StaffUser

RECENTLY_ENDED_DAYS = 30  # the export also lists authorizations that ended this many days before its date
MARKED = ("over", "exhausted", "expiring")  # the statuses the board and the client page mark
STATUS_WORDS = {"over": "Over", "exhausted": "Exhausted", "expired": "Expired", "future": "Not started",
                "expiring": "Expiring", "active": "Active"}


class AuthorizationError(entry.Refused):
    """An authorization that cannot be saved; `problems` are sentences for the coordinator."""


@dataclass(frozen=True)
class AuthorizationFields:
    payer: str
    number: str
    service: str
    unit: str
    units: int
    start: date
    end: date
    note: str = ""

    @property
    def terms(self) -> rules.Terms:
        return rules.Terms(self.service, self.unit, self.units, self.start, self.end)


def terms_of(record) -> rules.Terms:
    return rules.Terms(record.service, record.unit, record.units, record.start_date, record.end_date)


def _full_day() -> int:
    return current_app.config.get("FULL_DAY_MINUTES", FULL_DAY_MINUTES)


def overlap_problem(fields: AuthorizationFields, others: Sequence[Authorization]) -> str | None:
    """Why these dates cannot be kept beside the client's other authorizations of the service, or None."""
    for other in others:
        if rules.overlaps(fields.terms, terms_of(other)):
            return (f"These dates overlap authorization {other.number} for {other.service} "
                    f"({other.start_date} to {other.end_date}); two authorizations of one service may not overlap.")
    return None


def save(client: Client, fields: AuthorizationFields, by_user: StaffUser | None,
         record: Authorization | None = None, via: str = "app") -> Authorization:
    """Add an authorization to the client (record None) or change one; audited with the fields that changed."""
    others = [a for a in queries.client_authorizations(client.id) if record is None or a.id != record.id]
    problems = []
    if fields.end < fields.start:
        problems.append("The end date is before the start date.")
    elif (problem := overlap_problem(fields, others)) is not None:
        problems.append(problem)
    if any(a.service == fields.service and a.number == fields.number for a in others):
        problems.append(f"{client.client_id} already has authorization {fields.number} for {fields.service}.")
    if problems:
        raise AuthorizationError(problems)
    values = dict(payer=fields.payer, number=fields.number, service=fields.service, unit=fields.unit,
                  units=fields.units, start_date=fields.start, end_date=fields.end, note=fields.note)
    if record is None:
        record = Authorization(client_key=client.id, **values)
        db.session().add(record)
        db.session().flush()
        audit.record("authorization.created", target=f"client:{client.public_id}", user=by_user,
                     authorization=record.id, via=via)
        return record
    changed = sorted(name for name, value in values.items() if getattr(record, name) != value)
    for name in changed:
        setattr(record, name, values[name])
    db.session().flush()
    if changed:
        audit.record("authorization.updated", target=f"client:{client.public_id}", user=by_user,
                     authorization=record.id, fields=changed, via=via)
    return record


def of_client(client: Client) -> list[Authorization]:
    return queries.client_authorizations(client.id)


def find(client: Client, authorization_id: int) -> Authorization | None:
    return queries.authorization(client.id, authorization_id)


# ---- utilization -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Utilization:
    """One authorization on a date: every figure the pages and the export show."""

    record: queries.AuthorizationRecord
    client_key: int
    client_id: str
    client_name: str
    public_id: str
    usage: rules.Usage
    status: str
    forecast: rules.Forecast

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.usage.used / self.record.units)) if self.record.units else 0

    @property
    def status_words(self) -> str:
        return STATUS_WORDS[self.status]


def _utilization(found, on: date, now: datetime, range_first: date, range_last: date,
                 client_keys: Sequence[int] | None = None, detailed: bool = False, forecasting: bool = True
                 ) -> list[Utilization]:
    """Utilization of authorization rows (authorizations_touching's for range_first..range_last) on `on`.

    Many authorizations: their units counted in one statement (forecasts: `with_forecasts`, for the rows
    shown). `detailed` (one client's page): every day read, so each unit keeps its date (which were over)."""
    if not found:
        return []
    full_day = _full_day()
    days = None
    if detailed:
        first = min(row[0].start_date for row in found)
        days = queries.attended_days(first, on, now, client_keys) if first <= on else {}
        used = {row[0].id: rules.usage(terms_of(row[0]), days.get(row[0].client_key, {}), on, full_day)
                for row in found}
    else:
        counted = _units_counted([row[0] for row in found], on, now, range_first, range_last, client_keys)
        used = {row[0].id: rules.usage_of(terms_of(row[0]), counted.get(row[0].id, 0)) for row in found}
    nothing = rules.Forecast(None, 0, "")
    rows = [Utilization(record, record.client_key, client_id, f"{first_name} {last_name}".strip(), public_id,
                        used[record.id], rules.status_on(terms_of(record), used[record.id], on), nothing)
            for record, client_id, first_name, last_name, public_id in found]
    return with_forecasts(rows, on, now, days) if forecasting else rows


def _units_counted(records: Sequence[queries.AuthorizationRecord], on: date, now: datetime, range_first: date,
                   range_last: date, client_keys: Sequence[int] | None = None) -> dict[int, int]:
    """{authorization id: units counted up to `on`} of records touching range_first..range_last, in one statement."""
    if not records:
        return {}
    if client_keys is None and len({record.client_key for record in records}) <= 200:
        client_keys = sorted({record.client_key for record in records})  # a few clients: start from theirs
    first = min(record.start_date for record in records)
    return queries.units_counted(range_first, range_last, first, on, now, _full_day(), client_keys)


def with_forecasts(rows: list[Utilization], on: date, now: datetime,
                   days: dict[int, dict[date, rules.DayAttended]] | None = None) -> list[Utilization]:
    """The rows with their forecasts, reading only their clients' plans, groups and week in progress (the
    days before `on` that week, unless `days` has them): a page of rows costs its own clients' reads."""
    if not rows:
        return rows
    keys = sorted({row.client_key for row in rows})
    keys_asked = keys if len(keys) <= 500 else None  # most of a program: one read of everyone's is cheaper
    first = min(row.record.start_date for row in rows)
    last = max(row.record.end_date for row in rows)
    if days is None:
        week_begun = hours_week_start(on + timedelta(days=1))
        days = queries.attended_days(week_begun, on, now, keys_asked) if week_begun <= on else {}
    plans = queries.plans_of(min(hours_week_start(first), on), max(last, on), keys_asked)
    sessions = queries.sessions_by_weekday(keys_asked)
    full_day = _full_day()
    shown = []
    for row in rows:
        weekly = sessions.get(row.client_key, {})
        prediction = rules.forecast(terms_of(row.record), row.usage, on, plans.get(row.client_key, ()), weekly.keys(),
                                    days.get(row.client_key, {}), full_day, weekly)
        shown.append(replace(row, forecast=prediction))
    return shown


def utilization(first: date, last: date, on: date, now: datetime, client_keys: Sequence[int] | None = None,
                forecasting: bool = True) -> list[Utilization]:
    """Every authorization whose dates touch first..last, with its figures on `on`, by client_id then start."""
    return _utilization(queries.authorizations_touching(first, last, client_keys), on, now, first, last, client_keys,
                        forecasting=forecasting)


def export_rows(on: date, now: datetime) -> list[Utilization]:
    """The utilization export's authorizations: dates that include `on`, or an end in the 30 days before it."""
    first = on - timedelta(days=RECENTLY_ENDED_DAYS)
    return _utilization(queries.authorizations_touching(first, on), on, now, first, on)


@dataclass(frozen=True)
class UncoveredDay:
    client_key: int
    client_id: str
    client_name: str
    public_id: str
    day: date
    service: str


def uncovered_days(first: date, last: date, now: datetime, client_keys: Sequence[int] | None = None
                   ) -> list[UncoveredDay]:
    """Days first..last that qualify for a service the program bills only under an authorization (a full
    day, or an attended session) but fall under no authorization of the client for that service."""
    found = _uncovered(first, last, now, client_keys)
    people = queries.people([client_key for client_key, _day, _service in found])
    return sorted((UncoveredDay(client_key, people[client_key][0], f"{people[client_key][1]} {people[client_key][2]}",
                                people[client_key][3], day, service) for client_key, day, service in found),
                  key=lambda u: (u.client_id, u.day, u.service))


def _uncovered(first: date, last: date, now: datetime, client_keys: Sequence[int] | None = None,
               records: Sequence[queries.AuthorizationRecord] | None = None) -> list[tuple[int, date, str]]:
    """(client_key, day, service) of uncovered_days; `records`: authorizations already read that include
    every one touching first..last (the board's marks read them once for both)."""
    needing = current_app.config.get("SERVICES_NEEDING_AUTHORIZATION_UNITS") or {}
    if not needing or last < first:
        return []
    days = queries.attended_days(first, last, now, client_keys)
    if not days:
        return []
    if records is None:
        records = queries.authorization_records(first, last, list(days) if len(days) <= 500 else None)
    covering: dict[int, list[rules.Terms]] = {}
    for record in records:
        covering.setdefault(record.client_key, []).append(terms_of(record))
    full_day = _full_day()
    found = []
    for client_key, client_days in days.items():
        for service, unit in needing.items():
            for day in rules.unauthorized_dates(unit, service, client_days, covering.get(client_key, ()), full_day):
                found.append((client_key, day, service))
    return found


def marks(first: date, last: date, on: date, now: datetime, client_keys: Sequence[int] | None = None
          ) -> dict[int, list[str]]:
    """{client_key: the marked statuses (over, exhausted, expiring) of their authorizations touching the
    dates, and "uncovered" when a qualifying day in them falls under none} for the board and client page.
    The authorizations are read once (plain rows, no names) for both, their units in one statement."""
    found: dict[int, list[str]] = {}
    records = queries.authorization_records(first, last, client_keys)
    counted = _units_counted(records, on, now, first, last, client_keys)
    for record in sorted(records, key=lambda r: (r.client_key, r.start_date, r.service, r.number)):
        terms = terms_of(record)
        status = rules.status_on(terms, rules.usage_of(terms, counted.get(record.id, 0)), on)
        if status in MARKED and status not in found.get(record.client_key, []):
            found.setdefault(record.client_key, []).append(status)
    for client_key, _day, _service in _uncovered(first, min(last, on), now, client_keys, records):
        if "uncovered" not in found.get(client_key, []):
            found.setdefault(client_key, []).append("uncovered")
    return found


def board_marks(first: date, last: date, on: date, now: datetime, group_code: str = "") -> dict[str, list[str]]:
    """marks() by the clients' public ids (what the board's page knows them by); with `group_code` (the
    board shows one group), only that group's members are counted."""
    found = marks(first, last, on, now, queries.group_member_keys(group_code) if group_code else None)
    ids = queries.people(list(found))
    return {ids[client_key][3]: client_marks for client_key, client_marks in found.items() if client_key in ids}


def import_fields(values: dict[str, str]) -> AuthorizationFields:
    """An import row's cells read by iop.rules.entry (EntryError names the column)."""
    start = entry.day(values.get("start", ""), entry.AUTHORIZATION_START)
    end = entry.day(values.get("end", ""), entry.AUTHORIZATION_END)
    fields = AuthorizationFields(
        payer=entry.text(values.get("payer", ""), entry.PAYER),
        number=entry.authorization_number(values.get("number", "")),
        service=entry.service_code(values.get("service", "")), unit=entry.unit(values.get("unit", "")),
        units=entry.units(values.get("units", "")), start=start, end=end)
    entry.date_range(start, end)
    return fields


# ---- the pages' views of it --------------------------------------------------------------------

BADGE_CLASS = {"over": "short", "exhausted": "at_risk", "expiring": "at_risk", "expired": "no_plan",
               "future": "no_plan", "active": "on_track", "uncovered": "short"}
BADGE_ICON = {"over": "✕", "exhausted": "■", "expiring": "!", "expired": "–", "future": "…", "active": "✓",
              "uncovered": "?"}
MARK_WORDS = {"over": "Authorization over", "exhausted": "Authorization used up",
              "expiring": "Authorization expiring", "uncovered": "Day without authorization"}


@dataclass(frozen=True)
class ClientBilling:
    rows: list[Utilization]
    uncovered: list[UncoveredDay]
    marks: list[str]


def for_client(client: Client, first: date, today: date, now: datetime) -> ClientBilling:
    """The client page's authorizations (all of them, on today) and their uncovered days first..today."""
    rows = _utilization(queries.authorizations_touching(date.min, date.max, [client.id]), today, now, date.min,
                        date.max, [client.id], detailed=True)
    uncovered = uncovered_days(first, today, now, [client.id])
    found = [status for status in MARKED if any(row.status == status and covers_today(row, today) for row in rows)]
    if uncovered:
        found.append("uncovered")
    return ClientBilling(rows, uncovered, found)


def covers_today(row: Utilization, today: date) -> bool:
    """Marks are for authorizations in force around the date, not ones long ended."""
    return row.record.start_date <= today and row.record.end_date >= today - timedelta(days=RECENTLY_ENDED_DAYS)


PAGE_SIZE = 100  # authorizations a page of the utilization page
SORTS = {  # the utilization page's columns it sorts by (a whitelist: the address names one of these)
    "client": lambda row: row.client_id,
    "payer": lambda row: (row.record.payer.lower(), row.record.number),
    "service": lambda row: (row.record.service, row.record.unit),
    "dates": lambda row: (row.record.start_date, row.record.end_date),
    "used": lambda row: (row.percent, row.usage.used),
    "left": lambda row: row.usage.remaining,
    "over": lambda row: row.usage.over,
    "status": lambda row: rules.STATUSES.index(row.status),
    "runs_out": lambda row: row.forecast.runs_out,  # None (no date: over, used up, ended, units left) last
}


SORT_WORDS = {"client": "Client", "payer": "Payer", "service": "Service", "dates": "Dates", "used": "Used",
              "left": "Left", "over": "Over", "status": "Status", "runs_out": "Runs out"}


@dataclass(frozen=True)
class UtilizationPage:
    """A page of the utilization page's authorizations (program.Page of Utilization), the payers to
    filter by, and the order they are in."""

    page: Page
    payers: list[str]
    sort: str
    descending: bool


def sorted_rows(rows: list[Utilization], sort: str, descending: bool = False) -> list[Utilization]:
    """The rows by a column of SORTS (ties keep client_id then start order); rows without a value last."""
    key = SORTS[sort]
    valued = [row for row in rows if key(row) is not None]
    return sorted(valued, key=key, reverse=descending) + [row for row in rows if key(row) is None]


def page_rows(first: date, last: date, on: date, now: datetime, payer: str = "", status: str = "",
              sort: str = "client", descending: bool = False, number: int = 1, size: int | None = None
              ) -> UtilizationPage:
    """Page `number` of the authorizations touching first..last on `on`, filtered and sorted, and every
    payer seen. Every row's units and status are counted (one statement: the filter and the order need
    them); the forecast only for the rows of the page, unless the order is by it."""
    rows = utilization(first, last, on, now, forecasting=sort == "runs_out")
    payers = sorted({row.record.payer for row in rows}, key=str.lower)
    if payer:
        rows = [row for row in rows if row.record.payer == payer]
    if status:
        rows = [row for row in rows if row.status == status]
    page = rows_page(sorted_rows(rows, sort, descending), number, size or PAGE_SIZE)
    if sort != "runs_out":
        page = replace(page, rows=with_forecasts(page.rows, on, now))
    return UtilizationPage(page, payers, sort, descending)

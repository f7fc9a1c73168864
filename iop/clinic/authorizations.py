"""Payer authorizations: keeping them (audited; two of one client for one service never overlap) and
their utilization: units used, left and over, status on a date and the forecast (iop.rules.authorizations),
for the client page, the utilization page, the week board's marks and the utilization export.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Sequence

from flask import current_app

from iop.clinic import audit
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

    Many authorizations: their units counted in one statement, and only the week before `on` read day by
    day (the forecast's week in progress). `detailed` (one client's page): every day read, so each unit
    keeps its date (which were over)."""
    if not found:
        return []
    first = min(row[0].start_date for row in found)
    last = max(row[0].end_date for row in found)
    keys = sorted({row[0].client_key for row in found}) if client_keys is None and len(found) <= 200 else client_keys
    full_day = _full_day()
    week_begun = hours_week_start(on + timedelta(days=1))
    counted = {} if detailed else queries.units_counted(range_first, range_last, first, on, now, full_day, keys)
    days_from = first if detailed else week_begun
    days = queries.attended_days(days_from, on, now, keys) if days_from <= on and (forecasting or detailed) else {}
    plans = queries.plans_of(min(first, on), max(last, on), keys) if forecasting else {}
    sessions = queries.sessions_by_weekday(keys) if forecasting else {}
    nothing = rules.Forecast(None, 0, "")
    rows = []
    for record, client_id, first_name, last_name, public_id in found:
        terms = terms_of(record)
        client_days = days.get(record.client_key, {})
        used = rules.usage(terms, client_days, on, full_day) if detailed else \
            rules.usage_of(terms, counted.get(record.id, 0))
        status = rules.status_on(terms, used, on)
        weekly = sessions.get(record.client_key, {})
        prediction = rules.forecast(terms, used, on, plans.get(record.client_key, ()), weekly.keys(), client_days,
                                    full_day, weekly) if forecasting else nothing
        rows.append(Utilization(record, record.client_key, client_id, f"{first_name} {last_name}".strip(), public_id,
                                used, status, prediction))
    return rows


def utilization(first: date, last: date, on: date, now: datetime, client_keys: Sequence[int] | None = None
                ) -> list[Utilization]:
    """Every authorization whose dates touch first..last, with its figures on `on`, by client_id then start."""
    return _utilization(queries.authorizations_touching(first, last, client_keys), on, now, first, last, client_keys)


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
    needing = current_app.config.get("SERVICES_NEEDING_AUTHORIZATION_UNITS") or {}
    if not needing or last < first:
        return []
    days = queries.attended_days(first, last, now, client_keys)
    if not days:
        return []
    covering: dict[int, list[rules.Terms]] = {}
    for row in queries.authorizations_touching(first, last, list(days) if len(days) <= 500 else None):
        covering.setdefault(row[0].client_key, []).append(terms_of(row[0]))
    full_day = _full_day()
    found = []
    for client_key, client_days in days.items():
        for service, unit in needing.items():
            for day in rules.unauthorized_dates(unit, service, client_days, covering.get(client_key, ()), full_day):
                found.append((client_key, day, service))
    people = queries.people([client_key for client_key, _day, _service in found])
    return sorted((UncoveredDay(client_key, people[client_key][0], f"{people[client_key][1]} {people[client_key][2]}",
                                people[client_key][3], day, service) for client_key, day, service in found),
                  key=lambda u: (u.client_id, u.day, u.service))


def marks(first: date, last: date, on: date, now: datetime, client_keys: Sequence[int] | None = None
          ) -> dict[int, list[str]]:
    """{client_key: the marked statuses (over, exhausted, expiring) of their authorizations touching the
    dates, and "uncovered" when a qualifying day in them falls under none} for the board and client page."""
    found: dict[int, list[str]] = {}
    touching = queries.authorizations_touching(first, last, client_keys)
    for row in _utilization(touching, on, now, first, last, client_keys, forecasting=False):
        if row.status in MARKED and row.status not in found.get(row.client_key, []):
            found.setdefault(row.client_key, []).append(row.status)
    for day in uncovered_days(first, min(last, on), now, client_keys):
        if "uncovered" not in found.get(day.client_key, []):
            found.setdefault(day.client_key, []).append("uncovered")
    return found


def board_marks(first: date, last: date, on: date, now: datetime) -> dict[str, list[str]]:
    """marks() by the clients' public ids (what the board's page knows them by)."""
    found = marks(first, last, on, now)
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


def page_rows(first: date, last: date, on: date, now: datetime, payer: str = "", status: str = ""
              ) -> tuple[list[Utilization], list[str]]:
    """The utilization page: authorizations touching first..last on `on`, filtered; and every payer seen."""
    rows = utilization(first, last, on, now)
    payers = sorted({row.record.payer for row in rows}, key=str.lower)
    if payer:
        rows = [row for row in rows if row.record.payer == payer]
    if status:
        rows = [row for row in rows if row.status == status]
    return rows, payers

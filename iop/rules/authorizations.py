"""Payer authorizations (docs/domain.md, rules 9-11) as pure functions: units counted from the hours
rules, over, status on a date, and the forecast of when the units run out.

No database and no Flask: the caller gives each day's credited minutes and attended sessions (from
iop.store.authorization_queries, which takes them from the hours rules' SQL), the client's plans and
the weekdays their groups meet.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable, Mapping, NamedTuple, Sequence

from iop.rules.hours import FULL_DAY_MINUTES, PlanTerms, is_full_day, phase_in_effect, week_start

UNITS = ("day", "session")
STATUSES = ("over", "exhausted", "expired", "future", "expiring", "active")
EXPIRING_DAYS = 7  # ends within this many days of the date
EXPIRING_UNITS = 2  # or at most this many units remain
WEEKDAYS = (0, 1, 2, 3, 4)  # Mon-Fri: where a day's pace falls when the client's groups do not say
ONE_DAY = timedelta(days=1)


class Terms(NamedTuple):
    """What the rules need of an authorization."""

    service: str
    unit: str  # day | session
    units: int
    start: date
    end: date  # inclusive


class DayAttended(NamedTuple):
    """One client's date as the hours rules see it: credited minutes, and sessions with more than 0."""

    minutes: int
    sessions: int


class Usage(NamedTuple):
    """An authorization's units on a date (rule 10): counted inside its dates up to the date."""

    counted: int
    used: int  # min(counted, units)
    remaining: int  # units - used
    over: int  # counted beyond the units authorized
    unit_dates: tuple[date, ...]  # one entry a unit, in date order (a day with two sessions appears twice)

    @property
    def over_dates(self) -> tuple[date, ...]:
        """The dates of the units past those authorized (attended but not authorized)."""
        return self.unit_dates[len(self.unit_dates) - self.over:] if self.over else ()


class Forecast(NamedTuple):
    runs_out: date | None  # the date the last unit is used, when that falls inside the dates
    unused: int  # units left when the authorization ends at the pace
    sentence: str


def units_on(unit: str, day: DayAttended, full_day_minutes: int = FULL_DAY_MINUTES) -> int:
    """The units one date gives: a full day is one `day`; each attended session one `session`."""
    if unit == "day":
        return 1 if is_full_day(day.minutes, full_day_minutes) else 0
    return day.sessions


def usage(terms: Terms, days: Mapping[date, DayAttended], on: date | None = None,
          full_day_minutes: int = FULL_DAY_MINUTES) -> Usage:
    """Rule 10: the units inside the authorization's dates (up to `on`, when given), in date order;
    those past the units authorized are over."""
    last = terms.end if on is None else min(terms.end, on)
    unit_dates: list[date] = []
    for day in sorted(d for d in days if terms.start <= d <= last):
        unit_dates.extend([day] * units_on(terms.unit, days[day], full_day_minutes))
    counted = len(unit_dates)
    used = min(counted, terms.units)
    return Usage(counted, used, terms.units - used, counted - used, tuple(unit_dates))


def usage_of(terms: Terms, counted: int) -> Usage:
    """Rule 10 from a count of units already taken in date order (the SQL's, for many authorizations):
    the same figures as `usage`, without the units' dates."""
    used = min(counted, terms.units)
    return Usage(counted, used, terms.units - used, counted - used, ())


def status_on(terms: Terms, used: Usage, on: date) -> str:
    """Rule 11: the first of over, exhausted, expired, future, expiring, active that holds on `on`."""
    if used.over > 0:
        return "over"
    if used.remaining <= 0:
        return "exhausted"
    if terms.end < on:
        return "expired"
    if terms.start > on:
        return "future"
    if (terms.end - on).days <= EXPIRING_DAYS or used.remaining <= EXPIRING_UNITS:
        return "expiring"
    return "active"


def covers(terms: Terms, day: date) -> bool:
    return terms.start <= day <= terms.end


def overlaps(a: Terms, b: Terms) -> bool:
    """Rule 9: two authorizations of one client for the same service may not share a date."""
    return a.service == b.service and a.start <= b.end and b.start <= a.end


# ---- the forecast ----------------------------------------------------------------------------

def _plan_on(plans: Sequence[PlanTerms], day: date) -> PlanTerms | None:
    """The latest-starting plan covering `day` (a loop: the forecast asks this for every day it walks)."""
    found = None
    for plan in plans:
        if plan.start_date <= day and (plan.end_date is None or day <= plan.end_date) and \
                (found is None or plan.start_date > found.start_date):
            found = plan
    return found


def expected_units(unit: str, first: date, last: date, plans: Sequence[PlanTerms], meeting_days: Iterable[int],
                   days: Mapping[date, DayAttended], full_day_minutes: int = FULL_DAY_MINUTES,
                   sessions_by_weekday: Mapping[int, int] | None = None, enough: int | None = None) -> list[date]:
    """The dates first..last on which the client, at their plan's pace, would use a unit (one entry a unit).

    `day`: each week, the days a week of the plan phase in effect (on the week's Monday), on the
    client's meeting weekdays first (then Mon-Fri), less the full days already attended that week
    before `first`. `session`: every scheduled session of the client's groups (sessions_by_weekday) on
    a date a plan covers. With `enough`, it may stop once that many are found."""
    meeting = sorted(set(meeting_days))
    order = meeting + [d for d in WEEKDAYS if d not in meeting]
    found: list[date] = []
    monday = week_start(first)
    while monday <= last:
        if unit == "session":
            for offset in range(7):
                day = monday + timedelta(days=offset)
                if first <= day <= last and _plan_on(plans, day) is not None:
                    found.extend([day] * (sessions_by_weekday or {}).get(day.weekday(), 0))
        else:
            plan = _plan_on(plans, monday) or _plan_on(plans, max(monday, first))
            per_week = phase_in_effect(plan, monday)[1] if plan is not None else 0
            already = sum(1 for offset in range(7) if monday + timedelta(days=offset) < first
                          and units_on("day", days.get(monday + timedelta(days=offset), DayAttended(0, 0)),
                                       full_day_minutes))
            wanted = max(0, per_week - already)
            for weekday in order:
                if wanted == 0:
                    break
                day = monday + timedelta(days=weekday)
                if first <= day <= last and _plan_on(plans, day) is not None:
                    found.append(day)
                    wanted -= 1
        if enough is not None and len(found) >= enough:
            break
        monday += timedelta(days=7)
    return sorted(found)


def forecast(terms: Terms, used: Usage, on: date, plans: Sequence[PlanTerms], meeting_days: Iterable[int],
             days: Mapping[date, DayAttended], full_day_minutes: int = FULL_DAY_MINUTES,
             sessions_by_weekday: Mapping[int, int] | None = None) -> Forecast:
    """When the remaining units run out at the client's pace from the day after `on` (or from the
    start, for an authorization not begun), said against the end date."""
    if used.over > 0:
        return Forecast(None, 0, f"{_count(used.over, 'unit')} over what is authorized.")
    if used.remaining <= 0:
        return Forecast(None, 0, "No units left.")
    if terms.end < on:
        return Forecast(None, used.remaining, f"Ended with {_count(used.remaining, 'unit')} unused.")
    first = max(on + ONE_DAY, terms.start)
    pace = expected_units(terms.unit, first, terms.end, plans, meeting_days, days, full_day_minutes,
                          sessions_by_weekday, enough=used.remaining) if first <= terms.end else []
    if len(pace) >= used.remaining:
        runs_out = pace[used.remaining - 1]
        before = (terms.end - runs_out).days
        when = "the day it ends" if before == 0 else f"{_count(before, 'day')} before it ends"
        return Forecast(runs_out, 0, f"Runs out {month_day(runs_out)}, {when}.")
    unused = used.remaining - len(pace)
    return Forecast(None, unused, f"{_count(unused, 'unit')} will be left unused.")


def month_day(day: date) -> str:
    """'Dec 12', as the forecast says a date."""
    return f"{day:%b} {day.day}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---- the services a program bills only under an authorization ---------------------------------

DEFAULT_UNITS = {"H0015": "day", "S9480": "day", "90853": "session"}


def services_needing(setting: str) -> dict[str, str]:
    """{service: unit} from a setting like "H0015" or "H0015:day 90853:session" (a code's unit, when
    not given, is day for the per-diem codes H0015 and S9480, session for 90853, else day)."""
    from iop.rules import entry

    found: dict[str, str] = {}
    for token in str(setting or "").replace(",", " ").split():
        code, _, unit = token.partition(":")
        code = entry.service_code(code)
        found[code] = entry.unit(unit) if unit else DEFAULT_UNITS.get(code, "day")
    return found


def unauthorized_dates(unit: str, service: str, days: Mapping[date, DayAttended], covering: Sequence[Terms],
                       full_day_minutes: int = FULL_DAY_MINUTES) -> list[date]:
    """The dates that give a unit of `service` (a full day, or an attended session) that no
    authorization of that service covers."""
    mine = [terms for terms in covering if terms.service == service]
    return sorted(day for day, attended in days.items() if units_on(unit, attended, full_day_minutes)
                  and not any(covers(terms, day) for terms in mine))

"""The hours rules of docs/domain.md as pure functions (their SQL is in iop.store.hours_queries).

Every figure the system shows or exports comes from here. Nothing derived is stored: credited
minutes are computed from check-in/check-out and the session's scheduled window, in Python for
one attendance and in SQL (`credited_minutes_sql`) for sums.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, NamedTuple, Sequence
from zoneinfo import ZoneInfo

FULL_DAY_MINUTES = 180
GRACE_MINUTES = 10
WEEKDAYS_PER_WEEK = 5
STATUSES = ("met", "on_track", "at_risk", "short", "no_plan")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_SECOND = timedelta(seconds=1)
SIX_DAYS = timedelta(days=6)


class InvalidAttendance(ValueError):
    """An attendance that cannot be recorded as given (the message says why, for the person)."""


# ---- rule 1: credited minutes ----------------------------------------------------------------

def whole_seconds(moment: datetime) -> int:
    """Seconds since 1970, rounded down: the precision every credited minute is counted at.

    The SQL below reads stored times to the whole second too, so Python and SQL agree to the minute
    even for kiosk stamps carrying fractions of a second."""
    return (moment - EPOCH) // ONE_SECOND


def credited_minutes(check_in: datetime | None, check_out: datetime | None,
                     starts: datetime, ends: datetime) -> int:
    """Whole minutes (rounded down) of [check_in, check_out] inside [starts, ends]; 0 when they miss."""
    if check_in is None or check_out is None:
        return 0
    if check_out < check_in:
        raise InvalidAttendance("The check-out is before the check-in.")
    overlap = (min(whole_seconds(check_out), whole_seconds(ends))
               - max(whole_seconds(check_in), whole_seconds(starts)))
    return max(0, overlap // 60)


def effective_check_out(check_out: datetime | None, ends: datetime, now: datetime) -> datetime:
    """A missing check-out counts up to now while the session runs, and to its end after (rule 2)."""
    return check_out if check_out is not None else min(now, ends)


def close_check_out(closed_at: datetime, ends: datetime) -> datetime:
    """Rule 2: a client still in when a session closes is checked out at the earlier of close and end."""
    return min(closed_at, ends)


def overlaps(a_start: datetime, a_end: datetime | None, b_start: datetime, b_end: datetime | None) -> bool:
    """Whether two attendances of one client overlap in time (open ends run forever)."""
    far = datetime.max.replace(tzinfo=timezone.utc)
    return a_start < (b_end or far) and b_start < (a_end or far)


def credited_so_far(present: bool, check_in: datetime | None, check_out: datetime | None,
                    starts: datetime, ends: datetime, now: datetime) -> int:
    """Rules 1, 2 and 7 for one attendance record as every page shows it: the minutes credited so
    far (a missing check-out counts up to now, to the session's end after it); 0 for an excused
    record, one without a check-in, or one whose times are reversed."""
    if not present or check_in is None:
        return 0
    return credited_minutes(check_in, max(effective_check_out(check_out, ends, now), check_in), starts, ends)


# ---- rule 8: flags ---------------------------------------------------------------------------

def is_late(check_in: datetime | None, starts: datetime, grace_minutes: int = GRACE_MINUTES) -> bool:
    return check_in is not None and check_in > starts + timedelta(minutes=grace_minutes)


def left_early(check_out: datetime | None, ends: datetime, grace_minutes: int = GRACE_MINUTES) -> bool:
    return check_out is not None and check_out < ends - timedelta(minutes=grace_minutes)


def attendance_flags(present: bool, check_in: datetime | None, check_out: datetime | None,
                     starts: datetime, ends: datetime, grace_minutes: int) -> tuple[bool, bool]:
    """(late, left early) of one attendance record; an excused record is neither."""
    if not present:
        return False, False
    return is_late(check_in, starts, grace_minutes), left_early(check_out, ends, grace_minutes)


# ---- rules 3 and 4: days and weeks -----------------------------------------------------------

def is_full_day(minutes: int, full_day_minutes: int = FULL_DAY_MINUTES) -> bool:
    return minutes >= full_day_minutes


def days_attended(minutes_by_date: dict[date, int]) -> int:
    return sum(1 for minutes in minutes_by_date.values() if minutes > 0)


def week_totals(minutes_by_date: dict[date, int], full_day_minutes: int) -> tuple[int, int, int]:
    """(credited minutes, days attended, full days) of a week's minutes per date (rules 3 and 4)."""
    return (sum(minutes_by_date.values()), days_attended(minutes_by_date),
            sum(1 for minutes in minutes_by_date.values() if is_full_day(minutes, full_day_minutes)))


def week_minutes(minutes_by_date: dict[date, int], monday: date) -> int:
    """The credited minutes of the week of `monday` (rule 4), from minutes per date (other dates ignored)."""
    sunday = monday + SIX_DAYS
    return sum(minutes for day, minutes in minutes_by_date.items() if monday <= day <= sunday)


def week_start(day: date) -> date:
    """The Monday of the week holding `day`."""
    return day - timedelta(days=day.weekday())


def week_bounds(monday: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the program's zone, as UTC instants (DST-safe)."""
    start = datetime.combine(monday, time(0), tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz).astimezone(timezone.utc)
    return start, end


def weeks_overlapping(first: date, last: date) -> list[date]:
    """The Mondays of every whole week that overlaps [first, last]."""
    monday, mondays = week_start(first), []
    while monday <= last:
        mondays.append(monday)
        monday += timedelta(days=7)
    return mondays


# ---- rule 5: targets -------------------------------------------------------------------------

class Phase(NamedTuple):
    first_week: int
    last_week: int
    weekly_minutes: int
    days_per_week: int


class PlanTerms(NamedTuple):
    """What the rules need of a plan (built from the Plan row, or from an import row).

    Named tuples (not dataclasses) for the values the board makes thousands of: three times
    cheaper to build, and just as immutable."""

    start_date: date
    end_date: date | None
    weekly_minutes: int
    days_per_week: int
    level_of_care: str = ""
    phases: tuple[Phase, ...] = ()

    def covers(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def overlaps_week(self, monday: date) -> bool:
        return self.start_date <= monday + SIX_DAYS and (self.end_date is None or self.end_date >= monday)


def dates_overlap(a: PlanTerms, b: PlanTerms) -> bool:
    """Whether two plans share a day (open ends run forever): one client's plans must not."""
    return a.start_date <= (b.end_date or date.max) and b.start_date <= (a.end_date or date.max)


def plan_terms(plan) -> PlanTerms:
    """PlanTerms from a models.Plan."""
    return PlanTerms(
        start_date=plan.start_date, end_date=plan.end_date, weekly_minutes=plan.weekly_minutes,
        days_per_week=plan.days_per_week, level_of_care=plan.level_of_care,
        phases=tuple(Phase(p.first_week, p.last_week, p.weekly_minutes, p.days_per_week) for p in plan.phases),
    )


def plan_week_number(plan_start: date, monday: date) -> int:
    """Plan week 1 is the week containing the plan's start date."""
    return (monday - week_start(plan_start)).days // 7 + 1


def phase_of_week(plan: PlanTerms, number: int) -> tuple[int, int]:
    """(weekly minutes, days per week) of the phase holding plan week `number`; the plan's own outside its phases."""
    for phase in plan.phases:
        if phase.first_week <= number <= phase.last_week:
            return phase.weekly_minutes, phase.days_per_week
    return plan.weekly_minutes, plan.days_per_week


def phase_in_effect(plan: PlanTerms, day: date) -> tuple[int, int]:
    """(weekly minutes, days per week) of the phase in effect in the week holding `day` (rule 5):
    the one figure every screen and export shows as a plan's hours; the plan's own without phases."""
    if not plan.phases:
        return plan.weekly_minutes, plan.days_per_week
    return phase_of_week(plan, plan_week_number(plan.start_date, week_start(day)))


def covered_weekdays(plan: PlanTerms, monday: date) -> int:
    """How many of the week's Monday–Friday the plan's dates cover."""
    return sum(1 for offset in range(WEEKDAYS_PER_WEEK) if plan.covers(monday + timedelta(days=offset)))


def round_up_quarter_hour(minutes: float) -> int:
    return int(math.ceil(minutes / 15 - 1e-9)) * 15


def plan_week_target(plan: PlanTerms, monday: date) -> int | None:
    """This plan's target minutes for the week of `monday`; None when the plan misses the week."""
    sunday = monday + SIX_DAYS
    start, end = plan.start_date, plan.end_date
    if start > sunday or (end is not None and end < monday):
        return None
    minutes, _days = phase_in_effect(plan, monday)
    if start < monday and (end is None or end > sunday):
        return minutes  # the plan runs all week: nothing to prorate
    return round_up_quarter_hour(minutes * covered_weekdays(plan, monday) / WEEKDAYS_PER_WEEK)


def week_target(plans: Iterable[PlanTerms], monday: date) -> int | None:
    """The week's target over a client's plans (a plan that ends mid-week and the next that starts
    add their prorated parts); None when no plan touches the week (status no_plan)."""
    parts = [t for t in (plan_week_target(plan, monday) for plan in plans) if t is not None]
    return sum(parts) if parts else None


def plan_in_effect(plans: Sequence[PlanTerms], monday: date) -> PlanTerms | None:
    """The latest-starting plan that touches the week (its level of care labels the week)."""
    touching = [plan for plan in plans if plan.overlaps_week(monday)]
    return max(touching, key=lambda plan: plan.start_date) if touching else None


def plan_on(plans: Sequence[PlanTerms], day: date) -> PlanTerms | None:
    """The latest-starting plan whose dates hold `day` (a client's plan "today")."""
    holding = [plan for plan in plans if plan.covers(day)]
    return max(holding, key=lambda plan: plan.start_date) if holding else None


def phases_problem(phases: Sequence[Phase]) -> str | None:
    """Why a phase list is unusable (overlaps, gaps, reversed weeks), or None."""
    ordered = sorted(phases, key=lambda p: p.first_week)
    for phase in ordered:
        if phase.first_week < 1 or phase.last_week < phase.first_week:
            return f"Phase weeks {phase.first_week}-{phase.last_week} are not a forward range starting at week 1 or later."
        if phase.weekly_minutes < 0 or not 0 <= phase.days_per_week <= 7:
            return "A phase needs hours of 0 or more and 0 to 7 days a week."
    for before, after in zip(ordered, ordered[1:]):
        if after.first_week <= before.last_week:
            return f"Phases weeks {before.first_week}-{before.last_week} and {after.first_week}-{after.last_week} overlap."
        if after.first_week > before.last_week + 1:
            return f"Phases leave weeks {before.last_week + 1}-{after.first_week - 1} without hours."
    if ordered and ordered[0].first_week != 1:
        return f"Phases start at week {ordered[0].first_week}; the first phase must start at week 1."
    return None


# ---- rules 4 to 6: a client's week -----------------------------------------------------------

class WeekFigures(NamedTuple):
    """A client's week: every number the kiosk, the board, the client page and the hours export show."""

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


def figures_for_week(client_key: int, monday: date, totals: tuple[int, int, int], plans: Sequence[PlanTerms],
                     week_over: bool, still_possible: int) -> WeekFigures:
    """One client's WeekFigures from their week's (minutes, days attended, full days), their plans
    touching the week, whether the week is over and the minutes they could still earn in it.
    The one place the figures are put together: the board does this for every client."""
    attended, days, full_days = totals
    if len(plans) == 1:  # the usual case, kept cheap
        target = plan_week_target(plans[0], monday)
        level = plans[0].level_of_care if target is not None else ""
    else:
        target, in_effect = week_target(plans, monday), plan_in_effect(plans, monday)
        level = in_effect.level_of_care if in_effect else ""
    return WeekFigures(client_key, monday, level, target or 0, attended, days,
                       week_status(target, attended, week_over, still_possible), full_days)


# ---- rule 6: status --------------------------------------------------------------------------

def week_status(target: int | None, attended: int, week_over: bool, still_possible: int) -> str:
    """met / short / at_risk / on_track / no_plan for one client's week.

    `still_possible`: minutes the client could still earn by attending every remaining scheduled
    session of their groups this week in full (from now on).
    """
    if target is None:
        return "no_plan"
    if attended >= target:
        return "met"
    if week_over:
        return "short"
    return "at_risk" if attended + still_possible < target else "on_track"


def remaining_minutes(windows: Iterable[tuple[datetime, datetime]], now: datetime) -> int:
    """Minutes still to come in these scheduled session windows (a running one counts from now)."""
    total = 0
    for starts, ends in windows:
        if ends > now:
            total += max(0, (whole_seconds(ends) - whole_seconds(max(starts, now))) // 60)
    return total


def merged_windows(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping windows joined: a client in two groups at once can only sit in one room."""
    merged: list[tuple[datetime, datetime]] = []
    for starts, ends in sorted(windows):
        if merged and starts <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((starts, ends))
    return merged


def hours_text(minutes: int) -> str:
    """'6 h 00' as the kiosk and the board show hours."""
    return f"{minutes // 60} h {minutes % 60:02d}"


def decimal_hours(minutes: int) -> str:
    """'6.50': hours with two decimals, as the exports give them."""
    return f"{minutes / 60:.2f}"

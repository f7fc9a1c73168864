"""Treatment plans and levels of care: what makes a plan valid, saving it (audited), and the
flag for a plan that stays under its level's weekly minimum for too long.

The targets themselves are docs/domain.md rule 5, in iop.rules.hours; this module keeps the
records those rules read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple, Sequence

from sqlalchemy import select

from iop.clinic import audit
from iop.rules import entry, hours
from iop.rules.hours import Phase, PlanTerms
from iop.store import db
from iop.store.models import Client, LevelOfCare, Plan, PlanPhase, StaffUser

# ASAM lets a client dip under the level's floor for one or two weeks while stepping down.
ALLOWED_WEEKS_UNDER_MINIMUM = 2
MAX_WEEKLY_MINUTES = entry.MAX_WEEKLY_HOURS * 60


class PlanError(entry.Refused):
    """A plan or level that cannot be saved; `problems` are sentences for the coordinator."""


# ---- what a valid plan is (pure) ------------------------------------------------------------

def plan_problems(terms: PlanTerms, levels: Sequence[str], other_plans: Sequence[PlanTerms] = ()) -> list[str]:
    """Every reason `terms` cannot be saved beside the client's other plans (empty when fine)."""
    problems = []
    if terms.level_of_care not in levels:
        problems.append(f"Choose a level of care (known: {', '.join(levels) or 'none yet'}).")
    if terms.end_date is not None and terms.end_date < terms.start_date:
        problems.append("The end date is before the start date.")
    if not 0 <= terms.weekly_minutes <= MAX_WEEKLY_MINUTES:
        problems.append("Weekly hours must be from 0 to 168.")
    if not 0 <= terms.days_per_week <= 7:
        problems.append("Days a week must be from 0 to 7.")
    phase_problem = hours.phases_problem(terms.phases)
    if phase_problem:
        problems.append(phase_problem)
    elif any(p.weekly_minutes > MAX_WEEKLY_MINUTES for p in terms.phases):
        problems.append("A phase's weekly hours must be from 0 to 168.")
    for other in other_plans:
        if hours.dates_overlap(terms, other):
            # Two plans on the same days would add up two targets for one week.
            problems.append(f"These dates overlap the plan from {other.start_date:%Y-%m-%d} to "
                            f"{other.end_date.isoformat() if other.end_date else 'open end'}; "
                            "end that plan first or change these dates.")
    return problems


# ---- the low-hours flag (pure) ------------------------------------------------------------------

@dataclass(frozen=True)
class LowHoursRun:
    """Plan weeks first_week..last_week (last_week None: to the open end) under the level's minimum."""

    first_week: int
    last_week: int | None
    weekly_minutes: int
    minimum_minutes: int

    @property
    def weeks_text(self) -> str:
        if self.last_week is None:
            return f"weeks {self.first_week} onward"
        return f"week {self.first_week}" if self.first_week == self.last_week else \
            f"weeks {self.first_week}-{self.last_week}"

    def describe(self, level: str) -> str:
        return (f"Plan {self.weeks_text}: {hours.hours_text(self.weekly_minutes)} a week, under the "
                f"{hours.hours_text(self.minimum_minutes)} minimum of level {level} for more than "
                f"{ALLOWED_WEEKS_UNDER_MINIMUM} weeks in a row.")


def plan_weeks(terms: PlanTerms) -> int | None:
    """How many plan weeks the plan has (None: open-ended)."""
    if terms.end_date is None:
        return None
    return hours.plan_week_number(terms.start_date, hours.week_start(terms.end_date))


def low_hours_runs(terms: PlanTerms, minimum_minutes: int,
                   allowed_weeks: int = ALLOWED_WEEKS_UNDER_MINIMUM) -> list[LowHoursRun]:
    """Runs of more than `allowed_weeks` plan weeks whose weekly hours are under the minimum.

    A week's hours are those of the phase in effect (the plan's own outside its phases); the
    prorating of a first or last partial week is not a dip in care, so it is not counted."""
    if minimum_minutes <= 0:
        return []
    last_phase_week = max((p.last_week for p in terms.phases), default=0)
    total = plan_weeks(terms)
    # An open-ended plan runs on at its own hours after the phases: look far enough to see a run.
    horizon = total if total is not None else last_phase_week + allowed_weeks + 1
    runs: list[LowHoursRun] = []
    run_start, run_minutes = None, 0
    for week in range(1, horizon + 2):  # one past the end closes a run that reaches it
        minutes = hours.phase_of_week(terms, week)[0] if week <= horizon else None
        under = minutes is not None and minutes < minimum_minutes
        if under and run_start is None:
            run_start, run_minutes = week, minutes
        elif under:
            run_minutes = min(run_minutes, minutes)
        elif run_start is not None:
            last = week - 1
            if last - run_start + 1 > allowed_weeks:
                open_end = total is None and week > horizon
                runs.append(LowHoursRun(run_start, None if open_end else last, run_minutes, minimum_minutes))
            run_start = None
    return runs


def low_hours_flags(plan_terms: Sequence[PlanTerms], minimums: dict[str, int]) -> list[str]:
    """Sentences for the client page: each plan's runs under its level's minimum."""
    flags = []
    for terms in plan_terms:
        for run in low_hours_runs(terms, minimums.get(terms.level_of_care, 0)):
            flags.append(f"Plan from {terms.start_date:%Y-%m-%d}: " + run.describe(terms.level_of_care))
    return flags


# ---- levels of care -----------------------------------------------------------------------------

def levels() -> list[LevelOfCare]:
    return list(db.session().scalars(select(LevelOfCare).order_by(LevelOfCare.code)))


def level_by_code(code: str) -> LevelOfCare | None:
    return db.session().get(LevelOfCare, code) if code else None


def level_minimums() -> dict[str, int]:
    return {level.code: level.weekly_minimum_minutes for level in levels()}


def save_level(code: str, name: str, minimum_minutes: int, maximum_minutes: int | None,
               by_user: StaffUser, existing: LevelOfCare | None = None) -> LevelOfCare:
    """Add a level (existing None) or change one's name and floor/ceiling; audited. The caller commits."""
    problems = entry.Problems()
    if existing is None:
        code = problems.check(entry.level_code, code)
        if code and level_by_code(code) is not None:
            problems.add(f"Level {code} already exists; edit it instead.", "code")
    name = problems.check(entry.text, name, entry.LEVEL_NAME)
    if not 0 <= minimum_minutes <= MAX_WEEKLY_MINUTES:
        problems.add("The weekly minimum must be from 0 to 168 hours.", "minimum")
    if maximum_minutes is not None and not minimum_minutes <= maximum_minutes <= MAX_WEEKLY_MINUTES:
        problems.add("The weekly maximum must be at least the minimum and at most 168 hours (or empty).", "maximum")
    if problems:
        raise PlanError(problems)
    level = existing or LevelOfCare(code=code)
    before = {} if existing is None else {
        "name": level.name, "weekly_minimum_minutes": level.weekly_minimum_minutes,
        "weekly_maximum_minutes": level.weekly_maximum_minutes}
    level.name, level.weekly_minimum_minutes, level.weekly_maximum_minutes = name, minimum_minutes, maximum_minutes
    if existing is None:
        db.session().add(level)
        audit.record("level_of_care.created", target=f"level:{level.code}", user=by_user)
    else:
        changed = sorted(field for field, value in before.items() if getattr(level, field) != value)
        if changed:
            audit.record("level_of_care.updated", target=f"level:{level.code}", user=by_user, fields=changed)
    db.session().flush()
    return level


# ---- plans ---------------------------------------------------------------------------------------

def terms_of(plan: Plan) -> PlanTerms:
    return hours.plan_terms(plan)


def save_plan(client: Client, terms: PlanTerms, by_user: StaffUser, plan: Plan | None = None) -> Plan:
    """Add a plan to the client (plan None) or change one; validated, then audited with the fields
    that changed (no values: the log says who changed what, the record says what it is now)."""
    others = [hours.plan_terms(p) for p in client.plans if plan is None or p.id != plan.id]
    known_levels = [level.code for level in levels()]
    problems = plan_problems(terms, known_levels, others)
    if problems:
        raise PlanError(problems)
    phases = sorted(terms.phases, key=lambda p: p.first_week)
    if plan is None:
        plan = Plan(level_of_care=terms.level_of_care, start_date=terms.start_date, end_date=terms.end_date,
                    weekly_minutes=terms.weekly_minutes, days_per_week=terms.days_per_week)
        plan.phases = [_phase_row(phase) for phase in phases]
        client.plans.append(plan)
        db.session().flush()
        audit.record("plan.created", target=f"client:{client.public_id}", user=by_user, plan=plan.id)
        return plan
    before = hours.plan_terms(plan)
    changed = [name for name in ("level_of_care", "start_date", "end_date", "weekly_minutes", "days_per_week")
               if getattr(before, name) != getattr(terms, name)]
    for name in changed:
        setattr(plan, name, getattr(terms, name))
    if tuple(before.phases) != tuple(phases):
        plan.phases = [_phase_row(phase) for phase in phases]
        changed.append("phases")
    db.session().flush()
    if changed:
        audit.record("plan.updated", target=f"client:{client.public_id}", user=by_user, plan=plan.id,
                     fields=changed)
    return plan


def delete_plan(client: Client, plan: Plan, by_user: StaffUser) -> None:
    """Remove a plan entered by mistake (its weeks become no_plan); audited."""
    plan_id = plan.id
    client.plans.remove(plan)
    db.session().delete(plan)
    db.session().flush()
    audit.record("plan.deleted", target=f"client:{client.public_id}", user=by_user, plan=plan_id)


def _phase_row(phase: Phase) -> PlanPhase:
    return PlanPhase(first_week=phase.first_week, last_week=phase.last_week,
                     weekly_minutes=phase.weekly_minutes, days_per_week=phase.days_per_week)


def phase_start_dates(terms: PlanTerms) -> list[tuple[Phase, date, date | None]]:
    """Each phase with the Monday its first week starts and the Sunday its last week ends (for people)."""
    week_one = hours.week_start(terms.start_date)
    return [(phase, week_one + timedelta(weeks=phase.first_week - 1),
             week_one + timedelta(weeks=phase.last_week, days=-1)) for phase in terms.phases]


class PlanOnDay(NamedTuple):
    """A client's plan on a day as the Clients list shows it: the hours are the phase's in effect."""

    level_of_care: str
    weekly_minutes: int
    days_per_week: int


def plan_on(client: Client, day: date) -> PlanOnDay | None:
    """The client's plan whose dates hold `day` (the latest-starting one if several), with the weekly
    hours and days of its phase in effect that week (rule 5, as the board and the client page show)."""
    terms = hours.plan_on([hours.plan_terms(plan) for plan in client.plans], day)
    if terms is None:
        return None
    return PlanOnDay(terms.level_of_care, *hours.phase_in_effect(terms, day))

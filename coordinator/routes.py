"""The coordinator's desk: the week's board, client pages with plans, clients, groups and levels.

Thin views: the figures come from iop.hours, the records' rules from iop.plans and iop.program.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from coordinator import bp
from iop import clock
from iop.clinic import audit, plans, program
from iop.clock import local_date, program_tz
from iop.rules import hours
from iop.rules.hours import Phase, PlanTerms
from iop.store import db, hours_queries
from iop.store.models import (
    WEEKDAY_NAMES,
    Attendance,
    Client,
    ClientGroup,
    Group,
    GroupSession,
    LevelOfCare,
    Plan,
    StaffUser,
    WeekFlag,
)
from iop.web.auth import current_user, staff_required

# at_risk and short first (someone can still act on them), then the rest.
STATUS_ORDER = {"at_risk": 0, "short": 1, "on_track": 2, "no_plan": 3, "met": 4}
STATUS_TEXT = {"met": "Met", "on_track": "On track", "at_risk": "At risk", "short": "Short", "no_plan": "No plan"}
STATUS_ICON = {"met": "✓", "on_track": "→", "at_risk": "!", "short": "✕", "no_plan": "–"}
HISTORY_WEEKS = 12
PHASE_ROWS = 6


@bp.app_template_filter("hours_text")
def _hours_text(minutes: int) -> str:
    return hours.hours_text(minutes)


# The desk's own navigation: (endpoint, words, endpoints that count as "here", minimum role).
DESK_LINKS = [
    ("coordinator.home", "Week board", ("coordinator.home",), "coordinator"),
    ("coordinator.clients", "Clients", ("coordinator.clients", "coordinator.client_page", "coordinator.client_new",
                                        "coordinator.client_edit", "coordinator.plan_new", "coordinator.plan_edit"),
     "coordinator"),
    ("coordinator.groups", "Groups", ("coordinator.groups", "coordinator.group_new", "coordinator.group_edit"),
     "coordinator"),
    ("coordinator.levels", "Levels of care", ("coordinator.levels",), "coordinator"),
    ("coordinator.exports_page", "Exports", ("coordinator.exports_page",), "coordinator"),
    ("coordinator.cards_page", "Cards", ("coordinator.cards_page",), "coordinator"),
    ("coordinator.kiosks_page", "Kiosks", ("coordinator.kiosks_page",), "coordinator"),
    ("coordinator.curriculum", "Curriculum", ("coordinator.curriculum",), "coordinator"),
    ("coordinator.audit_log", "Audit log", ("coordinator.audit_log",), "admin"),
]


@bp.context_processor
def _desk_context():
    from iop.clinic.staff import has_role

    user = current_user()
    links = [(url_for(endpoint), words, request.endpoint in here)
             for endpoint, words, here, role in DESK_LINKS if has_role(user, role)]
    return {"status_text": STATUS_TEXT, "status_icon": STATUS_ICON, "desk_links": links}


def _today() -> date:
    return local_date(clock.now(), program_tz())


def _local_time(moment: datetime | None) -> str:
    return moment.astimezone(program_tz()).strftime("%H:%M") if moment else ""


# ---- the week's board --------------------------------------------------------------------------

@dataclass
class BoardRow:
    client: Client
    figures: hours_queries.WeekFigures
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


def _week_asked(today: date) -> date:
    raw = request.args.get("week", "").strip()
    if not raw:
        return hours.week_start(today)
    try:
        return hours.week_start(date.fromisoformat(raw))
    except ValueError:
        flash("That week could not be read; showing this week. Pick a date like 2026-03-02.")
        return hours.week_start(today)


@bp.route("/")
@staff_required("coordinator")
def home():
    today = _today()
    monday = _week_asked(today)
    group_code = request.args.get("group", "").strip()
    level_code = request.args.get("level", "").strip()
    all_groups = list(db.session().scalars(select(Group).order_by(Group.code)))
    all_levels = plans.levels()
    rows = board_rows(monday, group_code or None, level_code or None)
    counts = {status: sum(1 for row in rows if row.figures.status == status) for status in STATUS_ORDER}
    this_monday = hours.week_start(today)
    return render_template(
        "coordinator/home.html", rows=rows, monday=monday, sunday=monday + timedelta(days=6),
        is_current=monday == this_monday, this_monday=this_monday, counts=counts,
        previous_week=monday - timedelta(days=7), next_week=monday + timedelta(days=7),
        groups=all_groups, levels=all_levels, group_code=group_code, level_code=level_code)


def board_rows(monday: date, group_code: str | None = None, level_code: str | None = None) -> list[BoardRow]:
    """Active clients with a plan touching the week or attendance in it, at_risk and short first."""
    figures = hours_queries.week_figures(monday, clock.now(), program_tz())
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


# ---- clients -----------------------------------------------------------------------------------

def _client_or_404(public_id: str) -> Client:
    client = db.session().scalar(select(Client).options(
        selectinload(Client.plans).selectinload(Plan.phases), selectinload(Client.groups))
        .where(Client.public_id == public_id))
    if client is None:
        abort(404)
    return client


@bp.route("/clients")
@staff_required("coordinator")
def clients():
    status = request.args.get("status", "active")
    if status not in ("active", "discharged", "all"):
        status = "active"
    query = select(Client).options(selectinload(Client.groups), selectinload(Client.plans)).order_by(Client.client_id)
    if status != "all":
        query = query.where(Client.status == status)
    people = list(db.session().scalars(query))
    today = _today()
    return render_template("coordinator/clients.html", people=people, status=status, today=today,
                           plan_on=lambda c: plans.plan_in_effect_on(c, today))


@bp.route("/clients/<public_id>")
@staff_required("coordinator")
def client_page(public_id: str):
    client = _client_or_404(public_id)
    tz, now, today = program_tz(), clock.now(), _today()
    this_monday = hours.week_start(today)
    weeks = request.args.get("weeks", type=int) or HISTORY_WEEKS
    weeks = max(4, min(weeks, 104))
    first_monday = this_monday - timedelta(weeks=weeks - 1)
    earliest = min((plan.start_date for plan in client.plans), default=None)
    if earliest is not None and first_monday < hours.week_start(earliest) <= this_monday:
        first_monday = hours.week_start(earliest)  # no empty weeks before the first plan
    history = hours_queries.client_weeks(client.id, first_monday, this_monday, now, tz)
    attendance = _attendance_rows(client, first_monday, this_monday + timedelta(days=6), now)
    terms = [(plan, plans.terms_of(plan)) for plan in client.plans]
    flags = plans.low_hours_flags([t for _plan, t in terms], plans.level_minimums())
    with db.transaction():
        audit.record("client.view", target=f"client:{client.public_id}")
    return render_template(
        "coordinator/client.html", client=client, history=history, this_week=history[-1],
        attendance=attendance, plan_terms=terms, flags=flags, weeks=weeks, modules=_modules(client),
        phase_dates=plans.phase_start_dates, chart=_chart(history), today=today)


@dataclass
class AttendanceRow:
    day: date
    group: str
    check_in: str
    check_out: str
    minutes: int
    late: bool
    left_early: bool
    status: str
    still_in: bool


def _attendance_rows(client: Client, first: date, last: date, now: datetime) -> list[AttendanceRow]:
    grace = current_app.config.get("GRACE_MINUTES", hours.GRACE_MINUTES)
    found = db.session().execute(
        select(Attendance, GroupSession, Group.code)
        .join(GroupSession, GroupSession.id == Attendance.session_id).join(Group, Group.id == GroupSession.group_id)
        .where(Attendance.client_key == client.id, Attendance.voided_at.is_(None),
               GroupSession.date.between(first, last))
        .order_by(GroupSession.date.desc(), GroupSession.starts_at.desc())).all()
    rows = []
    for record, group_session, code in found:
        present = record.status == "present"
        check_out = hours.effective_check_out(record.check_out_at, group_session.ends_at, now) \
            if present and record.check_in_at else None
        minutes = hours.credited_minutes(record.check_in_at, check_out, group_session.starts_at, group_session.ends_at) \
            if present and record.check_in_at and check_out and check_out >= record.check_in_at else 0
        rows.append(AttendanceRow(
            day=group_session.date, group=code, check_in=_local_time(record.check_in_at),
            check_out=_local_time(record.check_out_at), minutes=minutes,
            late=present and hours.is_late(record.check_in_at, group_session.starts_at, grace),
            left_early=present and hours.left_early(record.check_out_at, group_session.ends_at, grace),
            status=record.status, still_in=present and record.check_in_at is not None and record.check_out_at is None))
    return rows


def _modules(client: Client) -> list[dict]:
    """Per track of the client's groups: the modules had and those still to make up."""
    from curriculum.catalog import catalog
    from curriculum.completion import modules_had, modules_not_had

    served = catalog()
    had = modules_had(client.id)
    sections = []
    for track in sorted({group.track for group in client.groups}):
        sections.append({
            "track": served.tracks[track].title if track in served.tracks else track,
            "had": [m for m in served.track_modules(track) if m.id in had],
            "not_had": modules_not_had(client.id, track),
        })
    return sections


def _chart(history: list[hours_queries.WeekFigures]) -> dict:
    """Bar geometry for the weekly chart (inline SVG, drawn at its natural size): attended bars
    against a dashed target mark, on a scale of whole 3-hour steps."""
    top = max([60] + [w.attended_minutes for w in history] + [w.target_minutes for w in history])
    top = ((top + 179) // 180) * 180
    height, pad, bar_width, gap, left = 180, 12, 32, 16, 44
    scale = lambda minutes: pad + height - round(height * minutes / top)  # noqa: E731
    bars = []
    for index, week in enumerate(history):
        x = left + index * (bar_width + gap) + gap // 2
        bars.append({"x": x, "y": scale(week.attended_minutes), "h": pad + height - scale(week.attended_minutes),
                     "target_y": scale(week.target_minutes) if week.target_minutes else None, "week": week})
    ticks = [{"y": scale(m), "label": f"{m // 60} h"} for m in range(0, top + 1, 180)]
    return {"bars": bars, "ticks": ticks, "height": pad + height, "bar_width": bar_width,
            "width": left + len(history) * (bar_width + gap) + gap}


def _client_fields(form) -> program.ClientFields:
    return program.ClientFields(
        client_id=form.get("client_id", ""), first_name=form.get("first_name", ""),
        last_name=form.get("last_name", ""), status=form.get("status", "active"),
        group_ids=_ints(form.getlist("groups")))


def _ints(values) -> list[int]:
    found = []
    for value in values:
        try:
            found.append(int(value))
        except (TypeError, ValueError):
            continue
    return found


def _all_groups() -> list[Group]:
    return list(db.session().scalars(select(Group).order_by(Group.code)))


@bp.route("/clients/new", methods=["GET", "POST"])
@staff_required("coordinator")
def client_new():
    problems, fields = [], program.ClientFields("", "", "")
    if request.method == "POST":
        fields = _client_fields(request.form)
        try:
            with db.transaction():
                client = program.save_client(fields, current_user())
        except program.RecordError as exc:
            problems = exc.problems
        else:
            flash(f"Added {client.display_name}. Now give them a plan.")
            return redirect(url_for("coordinator.plan_new", public_id=client.public_id))
    return render_template("coordinator/client_form.html", client=None, fields=fields, problems=problems,
                           groups=_all_groups()), 400 if problems else 200


@bp.route("/clients/<public_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def client_edit(public_id: str):
    client = _client_or_404(public_id)
    problems = []
    fields = program.ClientFields(client.client_id, client.first_name, client.last_name, client.status,
                                  [g.id for g in client.groups])
    if request.method == "POST":
        fields = _client_fields(request.form)
        try:
            with db.transaction():
                program.save_client(fields, current_user(), client)
        except program.RecordError as exc:
            problems = exc.problems
            db.session().expire_all()
        else:
            flash("Saved.")
            return redirect(url_for("coordinator.client_page", public_id=client.public_id))
    return render_template("coordinator/client_form.html", client=client, fields=fields, problems=problems,
                           groups=_all_groups()), 400 if problems else 200


# ---- plans -------------------------------------------------------------------------------------

@dataclass
class PlanForm:
    """The plan form as typed (strings), so a refused form comes back as the person left it."""

    level_of_care: str = ""
    start_date: str = ""
    end_date: str = ""
    weekly_hours: str = ""
    days_per_week: str = ""
    phases: list[tuple[str, str, str, str]] | None = None
    group_ids: list[int] | None = None

    @classmethod
    def from_plan(cls, plan: Plan, client: Client) -> PlanForm:
        return cls(plan.level_of_care, plan.start_date.isoformat(), plan.end_date.isoformat() if plan.end_date else "",
                   _hours_field(plan.weekly_minutes), str(plan.days_per_week),
                   [(str(p.first_week), str(p.last_week), _hours_field(p.weekly_minutes), str(p.days_per_week))
                    for p in plan.phases], [g.id for g in client.groups])

    @classmethod
    def from_request(cls, form) -> PlanForm:
        phases = []
        for index in range(PHASE_ROWS):
            row = tuple(form.get(f"phase-{index}-{name}", "").strip() for name in ("first", "last", "hours", "days"))
            if any(row):
                phases.append(row)
        return cls(form.get("level_of_care", "").strip(), form.get("start_date", "").strip(),
                   form.get("end_date", "").strip(), form.get("weekly_hours", "").strip(),
                   form.get("days_per_week", "").strip(), phases, _ints(form.getlist("groups")))

    def padded_phases(self) -> list[tuple[str, str, str, str]]:
        given = list(self.phases or [])
        return given + [("", "", "", "")] * max(0, PHASE_ROWS - len(given))

    def terms(self) -> tuple[PlanTerms | None, list[str]]:
        problems: list[str] = []
        start = _date_field(self.start_date, "The start date", problems, needed=True)
        end = _date_field(self.end_date, "The end date", problems, needed=False)
        weekly = _hours_value(self.weekly_hours, "Weekly hours", problems)
        days = _days_value(self.days_per_week, "Days a week", problems)
        phases = []
        for number, (first, last, phase_hours, phase_days) in enumerate(self.phases or [], 1):
            label = f"Phase {number}"
            try:
                first_week, last_week = int(first), int(last or first)
            except ValueError:
                problems.append(f"{label}: weeks are whole numbers, like 1 and 4.")
                continue
            minutes = _hours_value(phase_hours, f"{label} hours", problems)
            phase_day_count = _days_value(phase_days, f"{label} days", problems)
            if minutes is not None and phase_day_count is not None:
                phases.append(Phase(first_week, last_week, minutes, phase_day_count))
        if problems or start is None or weekly is None or days is None:
            return None, problems
        return PlanTerms(start_date=start, end_date=end, weekly_minutes=weekly, days_per_week=days,
                         level_of_care=self.level_of_care, phases=tuple(phases)), []


def _hours_field(minutes: int) -> str:
    return str(minutes // 60) if minutes % 60 == 0 else f"{minutes / 60:g}"


def _date_field(value: str, label: str, problems: list[str], needed: bool) -> date | None:
    if not value:
        if needed:
            problems.append(f"{label} is needed.")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label} is not a date like 2026-03-02.")
        return None


def _hours_value(value: str, label: str, problems: list[str]) -> int | None:
    try:
        amount = float(value)
    except ValueError:
        problems.append(f"{label}: give hours as a number, like 9 or 7.5.")
        return None
    minutes = amount * 60
    if not 0 <= amount <= 168 or abs(minutes - round(minutes)) > 1e-6:
        problems.append(f"{label} must be from 0 to 168 hours, in whole minutes.")
        return None
    return int(round(minutes))


def _days_value(value: str, label: str, problems: list[str]) -> int | None:
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value)
    problems.append(f"{label} must be a whole number from 0 to 7.")
    return None


def _plan_or_404(client: Client, plan_id: int) -> Plan:
    plan = next((p for p in client.plans if p.id == plan_id), None)
    if plan is None:
        abort(404)
    return plan


def _save_plan_form(client: Client, plan: Plan | None):
    form = PlanForm.from_request(request.form)
    terms, problems = form.terms()
    if terms is not None:
        try:
            with db.transaction():
                plans.save_plan(client, terms, current_user(), plan)
                program.set_client_groups(client, form.group_ids or [], current_user())
        except (plans.PlanError, program.RecordError) as exc:
            problems = exc.problems
            db.session().expire_all()
    if not problems:
        flash("The plan is saved.")
        return redirect(url_for("coordinator.client_page", public_id=client.public_id))
    return _plan_page(client, plan, form, problems)


def _plan_page(client: Client, plan: Plan | None, form: PlanForm, problems: list[str]):
    return render_template("coordinator/plan_form.html", client=client, plan=plan, form=form, problems=problems,
                           levels=plans.levels(), groups=_all_groups()), 400 if problems else 200


@bp.route("/clients/<public_id>/plans/new", methods=["GET", "POST"])
@staff_required("coordinator")
def plan_new(public_id: str):
    client = _client_or_404(public_id)
    if request.method == "POST":
        return _save_plan_form(client, None)
    form = PlanForm(level_of_care="2.1", start_date=_today().isoformat(), weekly_hours="9", days_per_week="3",
                    phases=[], group_ids=[g.id for g in client.groups])
    return _plan_page(client, None, form, [])


@bp.route("/clients/<public_id>/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def plan_edit(public_id: str, plan_id: int):
    client = _client_or_404(public_id)
    plan = _plan_or_404(client, plan_id)
    if request.method == "POST":
        return _save_plan_form(client, plan)
    return _plan_page(client, plan, PlanForm.from_plan(plan, client), [])


@bp.route("/clients/<public_id>/plans/<int:plan_id>/delete", methods=["POST"])
@staff_required("coordinator")
def plan_delete(public_id: str, plan_id: int):
    client = _client_or_404(public_id)
    plan = _plan_or_404(client, plan_id)
    with db.transaction():
        plans.delete_plan(client, plan, current_user())
    flash("The plan is removed.")
    return redirect(url_for("coordinator.client_page", public_id=client.public_id))


# ---- groups ------------------------------------------------------------------------------------

def _tracks() -> dict[str, str]:
    from curriculum.catalog import catalog

    return {track_id: track.title for track_id, track in sorted(catalog().tracks.items())}


def _facilitators() -> list[StaffUser]:
    return list(db.session().scalars(select(StaffUser).where(StaffUser.active.is_(True))
                                     .order_by(StaffUser.display_name)))


def _time_field(value: str) -> time | None:
    try:
        parsed = time.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(second=0, microsecond=0)


def _group_fields(form) -> program.GroupFields:
    facilitator = _ints([form.get("facilitator_id", "")])
    return program.GroupFields(
        code=form.get("code", ""), name=form.get("name", ""), track=form.get("track", ""),
        room=form.get("room", ""), weekdays=form.getlist("weekdays"), start=_time_field(form.get("start", "")),
        end=_time_field(form.get("end", "")), facilitator_id=facilitator[0] if facilitator else None,
        active=form.get("active") == "on")


@bp.route("/groups")
@staff_required("coordinator")
def groups():
    return render_template("coordinator/groups.html", groups=_all_groups(), sizes=program.group_sizes(),
                           tracks=_tracks())


def _group_page(group, fields, problems):
    return render_template("coordinator/group_form.html", group=group, fields=fields, problems=problems,
                           tracks=_tracks(), facilitators=_facilitators(), weekday_names=WEEKDAY_NAMES), \
        400 if problems else 200


def _save_group_form(group: Group | None):
    fields = _group_fields(request.form)
    try:
        with db.transaction():
            saved = program.save_group(fields, current_user(), list(_tracks()), _today(), group)
    except program.RecordError as exc:
        db.session().expire_all()
        return _group_page(group, fields, exc.problems)
    flash(f"Group {saved.code} is saved.")
    return redirect(url_for("coordinator.groups"))


@bp.route("/groups/new", methods=["GET", "POST"])
@staff_required("coordinator")
def group_new():
    if request.method == "POST":
        return _save_group_form(None)
    fields = program.GroupFields("", "", next(iter(_tracks()), ""), "", ["Mon", "Wed", "Fri"], time(9), time(12))
    return _group_page(None, fields, [])


@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def group_edit(group_id: int):
    group = db.session().get(Group, group_id)
    if group is None:
        abort(404)
    if request.method == "POST":
        return _save_group_form(group)
    fields = program.GroupFields(group.code, group.name, group.track, group.room, group.weekdays.split(),
                                 group.start, group.end, group.facilitator_id, group.active)
    return _group_page(group, fields, [])


# ---- levels of care ----------------------------------------------------------------------------

def _level_minutes(value: str, label: str, problems: list[str], needed: bool) -> int | None:
    value = (value or "").strip()
    if not value:
        if needed:
            problems.append(f"{label} is needed (0 for none).")
        return None
    return _hours_value(value, label, problems)


@bp.route("/levels", methods=["GET", "POST"])
@staff_required("coordinator")
def levels():
    problems, typed, editing = [], {}, None
    if request.method == "GET" and request.args.get("edit"):
        editing = db.session().get(LevelOfCare, request.args["edit"])
        if editing is None:
            abort(404)
        typed = {"code": editing.code, "name": editing.name, "minimum": _hours_field(editing.weekly_minimum_minutes),
                 "maximum": "" if editing.weekly_maximum_minutes is None else _hours_field(editing.weekly_maximum_minutes)}
    if request.method == "POST":
        typed = {name: request.form.get(name, "") for name in ("code", "name", "minimum", "maximum")}
        editing = db.session().get(LevelOfCare, request.form.get("existing", "")) if request.form.get("existing") else None
        minimum = _level_minutes(typed["minimum"], "The weekly minimum", problems, needed=True)
        maximum = _level_minutes(typed["maximum"], "The weekly maximum", problems, needed=False)
        if not problems:
            try:
                with db.transaction():
                    level = plans.save_level(editing.code if editing else typed["code"], typed["name"], minimum,
                                             maximum, current_user(), editing)
            except plans.PlanError as exc:
                problems = exc.problems
                db.session().expire_all()
            else:
                flash(f"Level {level.code} is saved.")
                return redirect(url_for("coordinator.levels"))
    return render_template("coordinator/levels.html", levels=plans.levels(), problems=problems, typed=typed,
                           editing=editing, hours_field=_hours_field), 400 if problems else 200

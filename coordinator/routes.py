"""The coordinator's desk: the week's board, client pages with plans, clients, groups and levels.

Thin views: the board's and the client page's rows come from iop.clinic.board (the hours rules'
figures with who the clients are), the records' rules from iop.clinic.plans and iop.clinic.program;
the forms (coordinator.forms) read what is typed with iop.rules.entry; the chart's geometry is
coordinator.chart.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for

from coordinator import bp, forms
from coordinator.chart import weekly_chart
from iop import clock
from iop.clinic import audit, authorizations, board, plans, program
from iop.clock import local_date, program_tz
from iop.rules import entry, hours
from iop.store import db, hours_queries
from iop.store.models import WEEKDAY_NAMES, Client, Group, Plan
from iop.web.auth import current_user, staff_required

STATUS_TEXT = {"met": "Met", "on_track": "On track", "at_risk": "At risk", "short": "Short", "no_plan": "No plan"}
STATUS_ICON = {"met": "✓", "on_track": "→", "at_risk": "!", "short": "✕", "no_plan": "–"}
HISTORY_WEEKS = 12
CLIENTS_PAGE_SIZE = 100  # a large program's list in pages: each one quick to send, read and sort


@bp.app_template_filter("hours_text")
def _hours_text(minutes: int) -> str:
    return hours.hours_text(minutes)


# The desk's own navigation: (endpoint, words, endpoints that count as "here", minimum role).
DESK_LINKS = [
    ("coordinator.home", "Week board", ("coordinator.home",), "coordinator"),
    ("coordinator.clients", "Clients", ("coordinator.clients", "coordinator.client_page", "coordinator.client_new",
                                        "coordinator.client_edit", "coordinator.plan_new", "coordinator.plan_edit",
                                        "coordinator.authorization_new", "coordinator.authorization_edit"),
     "coordinator"),
    ("coordinator.utilization", "Utilization", ("coordinator.utilization",), "coordinator"),
    ("coordinator.groups", "Groups", ("coordinator.groups", "coordinator.group_new", "coordinator.group_edit"),
     "coordinator"),
    ("coordinator.levels", "Levels of care", ("coordinator.levels",), "coordinator"),
    ("coordinator.exports_page", "Exports", ("coordinator.exports_page",), "coordinator"),
    ("coordinator.cards_page", "Cards", ("coordinator.cards_page",), "coordinator"),
    ("coordinator.kiosks_page", "Kiosks", ("coordinator.kiosks_page",), "coordinator"),
    ("coordinator.curriculum", "Curriculum", ("coordinator.curriculum",), "coordinator"),
    ("coordinator.staff_page", "Staff", ("coordinator.staff_page", "coordinator.staff_member"), "admin"),
    ("coordinator.audit_log", "Audit log", ("coordinator.audit_log",), "admin"),
    ("coordinator.backups_page", "Backups", ("coordinator.backups_page",), "admin"),
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


# ---- the week's board --------------------------------------------------------------------------

WEEK_ASKED = entry.Field("week", "The week", needed=False)


def _week_asked(today: date) -> date:
    try:
        asked = entry.day(request.args.get("week", ""), WEEK_ASKED)
    except entry.EntryError:
        flash("That week could not be read; showing this week. Pick a date like 2026-03-02.")
        asked = None
    return hours.week_start(asked or today)


@bp.route("/")
@staff_required("coordinator")
def home():
    today = _today()
    monday = _week_asked(today)
    group_code = request.args.get("group", "").strip()
    level_code = request.args.get("level", "").strip()
    all_groups = program.groups()
    all_levels = plans.levels()
    rows = board.board_rows(monday, clock.now(), group_code or None, level_code or None)
    with db.transaction():  # a page of names: who looked, at which week, is in the audit log
        audit.record("board.view", target="board", week=monday.isoformat(), rows=len(rows),
                     **{name: value for name, value in (("group", group_code), ("level", level_code)) if value})
    counts = {status: sum(1 for row in rows if row.figures.status == status) for status in board.STATUS_ORDER}
    this_monday = hours.week_start(today)
    return render_template(
        "coordinator/home.html", rows=rows, monday=monday, sunday=monday + timedelta(days=6),
        is_current=monday == this_monday, this_monday=this_monday, counts=counts,
        previous_week=monday - timedelta(days=7), next_week=monday + timedelta(days=7),
        groups=all_groups, levels=all_levels, group_code=group_code, level_code=level_code)


# ---- clients -----------------------------------------------------------------------------------

def _client_or_404(public_id: str) -> Client:
    client = program.client_record(public_id)
    if client is None:
        abort(404)
    return client


@bp.route("/clients")
@staff_required("coordinator")
def clients():
    status = request.args.get("status", "active")
    if status not in ("active", "discharged", "all"):
        status = "active"
    page = program.clients_page(status, request.args.get("page", 1, type=int) or 1, CLIENTS_PAGE_SIZE)
    with db.transaction():
        audit.record("clients.view", target="clients", status=status, page=page.number, rows=len(page.rows))
    today = _today()
    return render_template("coordinator/clients.html", people=page.rows, page=page, status=status, today=today,
                           plan_on=lambda client: plans.plan_on(client, today))


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
    attendance = board.client_attendance(client.id, first_monday, this_monday + timedelta(days=6), now)
    terms = [(plan, plans.terms_of(plan)) for plan in client.plans]
    flags = plans.low_hours_flags([t for _plan, t in terms], plans.level_minimums())
    billing = authorizations.for_client(client, first_monday, today, now)
    with db.transaction():
        audit.record("client.view", target=f"client:{client.public_id}")
    return render_template(
        "coordinator/client.html", client=client, billing=billing, history=history, this_week=history[-1],
        attendance=attendance, plan_terms=terms, flags=flags, weeks=weeks, modules=_modules(client),
        phase_dates=plans.phase_start_dates, chart=weekly_chart(history), today=today)


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


def _client_page_form(form: forms.ClientForm, client: Client | None):
    return render_template("coordinator/client_form.html", client=client, form=form, groups=program.groups()), \
        400 if form.problems else 200


@bp.route("/clients/new", methods=["GET", "POST"])
@staff_required("coordinator")
def client_new():
    form = forms.ClientForm()
    if form.validate_on_submit():
        try:
            with db.transaction():
                client = program.save_client(form.client_fields(), current_user())
        except program.RecordError as exc:
            form.refused(exc)
        else:
            flash(f"Added {client.display_name}. Now give them a plan.")
            return redirect(url_for("coordinator.plan_new", public_id=client.public_id))
    return _client_page_form(form, None)


@bp.route("/clients/<public_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def client_edit(public_id: str):
    client = _client_or_404(public_id)
    form = forms.ClientForm() if request.method == "POST" else forms.ClientForm.of(client)
    if form.validate_on_submit():
        try:
            with db.transaction():
                program.save_client(form.client_fields(), current_user(), client)
        except program.RecordError as exc:
            form.refused(exc)
        else:
            flash("Saved.")
            return redirect(url_for("coordinator.client_page", public_id=client.public_id))
    return _client_page_form(form, client)


# ---- plans -------------------------------------------------------------------------------------

def _plan_or_404(client: Client, plan_id: int) -> Plan:
    plan = next((p for p in client.plans if p.id == plan_id), None)
    if plan is None:
        abort(404)
    return plan


def _save_plan_form(client: Client, plan: Plan | None):
    form = forms.PlanForm()
    if form.validate_on_submit():
        try:
            with db.transaction():
                plans.save_plan(client, form.terms(), current_user(), plan)
                program.set_client_groups(client, form.groups.data, current_user())
        except (plans.PlanError, program.RecordError) as exc:
            form.refused(exc)
        else:
            flash("The plan is saved.")
            return redirect(url_for("coordinator.client_page", public_id=client.public_id))
    return _plan_page(client, plan, form)


def _plan_page(client: Client, plan: Plan | None, form: forms.PlanForm):
    return render_template("coordinator/plan_form.html", client=client, plan=plan, form=form,
                           levels=plans.levels(), groups=program.groups()), 400 if form.problems else 200


@bp.route("/clients/<public_id>/plans/new", methods=["GET", "POST"])
@staff_required("coordinator")
def plan_new(public_id: str):
    client = _client_or_404(public_id)
    if request.method == "POST":
        return _save_plan_form(client, None)
    return _plan_page(client, None, forms.PlanForm.fresh(client, _today()))


@bp.route("/clients/<public_id>/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def plan_edit(public_id: str, plan_id: int):
    client = _client_or_404(public_id)
    plan = _plan_or_404(client, plan_id)
    if request.method == "POST":
        return _save_plan_form(client, plan)
    return _plan_page(client, plan, forms.PlanForm.of(plan, client))


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


@bp.route("/groups")
@staff_required("coordinator")
def groups():
    return render_template("coordinator/groups.html", groups=program.groups(), sizes=program.group_sizes(),
                           tracks=_tracks())


def _group_page(group: Group | None, form: forms.GroupForm):
    return render_template("coordinator/group_form.html", group=group, form=form, tracks=_tracks(),
                           facilitators=program.facilitators(), weekday_names=WEEKDAY_NAMES), \
        400 if form.problems else 200


def _save_group_form(group: Group | None):
    form = forms.GroupForm()
    if form.validate_on_submit():
        try:
            with db.transaction():
                saved = program.save_group(form.group_fields(), current_user(), list(_tracks()), _today(), group)
        except program.RecordError as exc:
            form.refused(exc)
        else:
            flash(f"Group {saved.code} is saved.")
            return redirect(url_for("coordinator.groups"))
    return _group_page(group, form)


@bp.route("/groups/new", methods=["GET", "POST"])
@staff_required("coordinator")
def group_new():
    if request.method == "POST":
        return _save_group_form(None)
    return _group_page(None, forms.GroupForm.fresh(next(iter(_tracks()), "")))


@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def group_edit(group_id: int):
    group = program.group(group_id)
    if group is None:
        abort(404)
    if request.method == "POST":
        return _save_group_form(group)
    return _group_page(group, forms.GroupForm.of(group))


# ---- levels of care ----------------------------------------------------------------------------

@bp.route("/levels", methods=["GET", "POST"])
@staff_required("coordinator")
def levels():
    editing = None
    if request.method == "POST":
        form = forms.LevelForm()
        editing = plans.level_by_code(form.existing.data)
        if editing is not None:
            del form.code  # plans use the code, so it stays as it is
        if form.validate_on_submit():
            try:
                with db.transaction():
                    level = plans.save_level(editing.code if editing else form.code.value, form.name.value,
                                             form.minimum.value, form.maximum.value, current_user(), editing)
            except plans.PlanError as exc:
                form.refused(exc)
            else:
                flash(f"Level {level.code} is saved.")
                return redirect(url_for("coordinator.levels"))
    elif request.args.get("edit"):
        editing = plans.level_by_code(request.args["edit"])
        if editing is None:
            abort(404)
        form = forms.LevelForm.of(editing)
    else:
        form = forms.LevelForm()
    return render_template("coordinator/levels.html", levels=plans.levels(), form=form, editing=editing), \
        400 if form.problems else 200

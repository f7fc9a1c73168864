"""Plans, levels of care, clients and groups: the rules (pure) and the coordinator's forms (HTTP)."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from iop.clinic import plans
from iop.rules.hours import Phase, PlanTerms
from iop.rules.hours import phase_in_effect as hours_phase
from iop.store import db
from iop.store.models import AuditEvent, Client, Group, GroupSession, LevelOfCare, Plan

NY = ZoneInfo("America/New_York")
MON = date(2026, 3, 2)
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=NY)  # a Wednesday morning


def terms(start=MON, end=None, weekly=540, days=3, phases=(), level="2.1"):
    return PlanTerms(start_date=start, end_date=end, weekly_minutes=weekly, days_per_week=days,
                     level_of_care=level, phases=tuple(phases))


# ---- what a valid plan is -------------------------------------------------------------------------

LEVELS = ["1", "2.1", "2.5"]

# name, plan, the client's other plans, a phrase of the expected problem (None: fine)
PLAN_CASES = [
    ("a good plan", terms(), [], None),
    ("end on the start day", terms(end=MON), [], None),
    ("unknown level", terms(level="3.7"), [], "Choose a level of care"),
    ("end before start", terms(end=MON - timedelta(days=1)), [], "end date is before the start date"),
    ("eight days a week", terms(days=8), [], "0 to 7"),
    ("phases with a gap", terms(phases=[Phase(1, 4, 540, 3), Phase(6, 8, 360, 2)]), [], "without hours"),
    ("phase with eight days", terms(phases=[Phase(1, 4, 540, 8)]), [], "0 to 7 days"),
    ("over the hours in a week", terms(weekly=169 * 60), [], "0 to 168"),
    ("overlaps an open-ended plan", terms(start=MON + timedelta(weeks=4)), [terms(start=MON - timedelta(weeks=8))],
     "overlap"),
    ("follows a plan that ended", terms(start=MON), [terms(start=date(2026, 1, 5), end=MON - timedelta(days=1))],
     None),
]


@pytest.mark.parametrize("name,plan,others,problem", PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_plan_problems(name, plan, others, problem):
    found = plans.plan_problems(plan, LEVELS, others)
    if problem is None:
        assert found == []
    else:
        assert any(problem in sentence for sentence in found), found


# ---- under the level's minimum for too long ---------------------------------------------------------

NINE, SIX = 540, 360

# name, plan, minimum, runs as (first week, last week or None)
LOW_CASES = [
    ("steady 9 h at level 2.1", terms(end=MON + timedelta(weeks=12)), NINE, []),
    ("steps down to 6 h for four weeks", terms(end=MON + timedelta(weeks=8, days=-1),
                                               phases=[Phase(1, 4, NINE, 3), Phase(5, 8, SIX, 2)]), NINE, [(5, 8)]),
    ("two weeks under while stepping down is allowed", terms(end=MON + timedelta(weeks=8, days=-1), phases=[
        Phase(1, 4, NINE, 3), Phase(5, 6, SIX, 2), Phase(7, 8, NINE, 3)]), NINE, []),
    ("three weeks under is flagged", terms(end=MON + timedelta(weeks=8, days=-1), phases=[
        Phase(1, 4, NINE, 3), Phase(5, 7, SIX, 2), Phase(8, 8, NINE, 3)]), NINE, [(5, 7)]),
    ("open end at 6 h after the phases", terms(weekly=SIX, phases=[Phase(1, 4, NINE, 3)]), NINE, [(5, None)]),
    ("level 1 has no floor", terms(weekly=120, level="1"), 0, []),
    # Prorating a plan that starts on a Thursday is not a dip in care.
    ("a late-week start is not a dip", terms(start=MON + timedelta(days=3), end=MON + timedelta(weeks=4)), NINE, []),
]


@pytest.mark.parametrize("name,plan,minimum,runs", LOW_CASES, ids=[c[0] for c in LOW_CASES])
def test_low_hours_runs(name, plan, minimum, runs):
    assert [(run.first_week, run.last_week) for run in plans.low_hours_runs(plan, minimum)] == runs


def test_low_hours_flag_words():
    plan = terms(end=MON + timedelta(weeks=8, days=-1), phases=[Phase(1, 4, NINE, 3), Phase(5, 8, SIX, 2)])
    [flag] = plans.low_hours_flags([plan], {"2.1": NINE})
    assert "weeks 5-8" in flag and "6 h 00" in flag and "9 h 00 minimum of level 2.1" in flag


# ---- the coordinator's forms ----------------------------------------------------------------------

@pytest.fixture
def desk(auth, client):
    auth.login("cora", role="coordinator")
    return client


def token(client, path):
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True))
    return match.group(1)


def post(client, path, data, form_path=None):
    data = {"csrf_token": token(client, form_path or path), **data}
    return client.post(path, data=data)


def audits(app, action):
    with app.app_context():
        return list(db.session().scalars(select(AuditEvent).where(AuditEvent.action == action)
                                         .order_by(AuditEvent.id)))


def find_client(app, client_id):
    with app.app_context():
        return db.session().scalar(select(Client).where(Client.client_id == client_id))


def plan_form(**values):
    base = {"level_of_care": "2.1", "start_date": "2026-03-02", "end_date": "2026-04-26", "weekly_hours": "9",
            "days_per_week": "3"}
    base.update(values)
    return base


def test_coordinator_adds_a_client_then_a_stepping_down_plan(app, world, desk):
    group = world.group("RP-AM")
    response = post(desk, "/coordinator/clients/new", {
        "client_id": "C2001", "first_name": "Rosa", "last_name": "Mendez", "status": "active",
        "groups": str(group.id)})
    assert response.status_code == 302 and "/plans/new" in response.headers["Location"]
    person = find_client(app, "C2001")
    assert [e.target for e in audits(app, "client.created")] == [f"client:{person.public_id}"]

    form = plan_form(**{"phase-0-first": "1", "phase-0-last": "4", "phase-0-hours": "9", "phase-0-days": "3",
                        "phase-1-first": "5", "phase-1-last": "8", "phase-1-hours": "6", "phase-1-days": "2",
                        "groups": str(group.id)})
    response = post(desk, f"/coordinator/clients/{person.public_id}/plans/new", form)
    assert response.status_code == 302
    with app.app_context():
        plan = db.session().scalar(select(Plan).where(Plan.client_key == person.id))
        assert [(p.first_week, p.last_week, p.weekly_minutes, p.days_per_week) for p in plan.phases] == [
            (1, 4, 540, 3), (5, 8, 360, 2)]
        assert (plan.start_date, plan.end_date, plan.level_of_care) == (date(2026, 3, 2), date(2026, 4, 26), "2.1")
    assert [e.target for e in audits(app, "plan.created")] == [f"client:{person.public_id}"]

    page = desk.get(f"/coordinator/clients/{person.public_id}").get_data(as_text=True)
    assert "Hours under the level" in page and "weeks 5-8" in page  # four weeks at 6 h at level 2.1
    assert "2026-03-30 to 2026-04-26" in page  # phase 2's dates


def _cell(page: str, label: str, near: str) -> str:
    """The text of the first `data-label` cell after `near` on a page (a row's cell, tags stripped)."""
    row = page[page.index(near):]
    cell = re.search(rf'data-label="{label}"[^>]*>(.*?)</td>', row, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", cell).split())


def test_a_stepped_down_client_shows_the_phase_hours_on_every_page(app, world, desk, freeze):
    """Rosa's plan is 9 h a week, stepping down to 6 h from plan week 5; in week 7 the Clients list,
    the week board and her page all say 6 h. Leo's plan has no phases: 9 h everywhere. Ana's phases
    ended with week 2: her plan's own 7 h 30 again."""
    freeze(NOW)
    world.group("RP-AM")
    started = MON - timedelta(weeks=6)  # this is plan week 7
    rosa = world.client("C1", "Rosa", "Mendez", groups=["RP-AM"], plan_start=started, weekly_hours=9,
                        phases=[(1, 4, 9, 3), (5, 12, 6, 2)])
    world.client("C2", "Leo", "Park", groups=["RP-AM"], plan_start=started, weekly_hours=9)
    ana = world.client("C3", "Ana", "Ruiz", groups=["RP-AM"], plan_start=started, weekly_hours=7.5,
                       phases=[(1, 2, 12, 4)])

    clients_page = desk.get("/coordinator/clients").get_data(as_text=True)
    assert _cell(clients_page, "Plan today", "Rosa Mendez") == "Level 2.1, 6 h 00 a week"
    assert _cell(clients_page, "Plan today", "Leo Park") == "Level 2.1, 9 h 00 a week"
    assert _cell(clients_page, "Plan today", "Ana Ruiz") == "Level 2.1, 7 h 30 a week"

    board = desk.get("/coordinator/").get_data(as_text=True)
    assert _cell(board, "Target", "C1") == "6 h 00"
    assert _cell(board, "Target", "C2") == "9 h 00"
    assert _cell(board, "Target", "C3") == "7 h 30"

    for person, hours_text in ((rosa, "6 h 00"), (ana, "7 h 30")):
        page = desk.get(f"/coordinator/clients/{person.public_id}").get_data(as_text=True)
        this_week = page[page.index('id="week-title"'):page.index("</section>", page.index('id="week-title"'))]
        assert f"of {hours_text}" in " ".join(re.sub(r"<[^>]+>", " ", this_week).split())


def test_plan_on_a_day_is_the_phase_in_effect_that_week():
    stepping = terms(start=MON, phases=[Phase(1, 2, 720, 4), Phase(3, 4, 360, 2)], weekly=540)
    assert [hours_phase(stepping, MON + timedelta(days=d)) for d in (0, 6, 7, 14, 20, 27, 28)] == [
        (720, 4), (720, 4), (720, 4), (360, 2), (360, 2), (360, 2), (540, 3)]  # after the phases: its own
    mid_week = terms(start=MON + timedelta(days=2), phases=[Phase(1, 1, 720, 4), Phase(2, 3, 360, 2)])
    assert hours_phase(mid_week, MON + timedelta(days=4)) == (720, 4)  # plan week 1 holds its start
    assert hours_phase(mid_week, MON + timedelta(days=7)) == (360, 2)


@pytest.mark.parametrize("change,message", [
    ({"end_date": "2026-02-01"}, "The end date is before the start date."),
    ({"days_per_week": "8"}, "Days a week must be a whole number of days from 0 to 7."),
    ({"weekly_hours": "nine"}, "Weekly hours is not a number of hours like 9 or 7.5."),
    ({"start_date": "03/02/2026"}, "The start date is not a date like 2026-03-02."),
    ({"level_of_care": "9.9"}, "Choose a level of care"),
    ({"phase-0-first": "2", "phase-0-last": "4", "phase-0-hours": "9", "phase-0-days": "3"}, "must start at week 1"),
    ({"phase-0-first": "1", "phase-0-last": "4", "phase-0-hours": "9", "phase-0-days": "9"}, "Phase 1 days"),
], ids=["end before start", "eight days", "words for hours", "US date", "unknown level", "phase after week 1",
        "phase days"])
def test_a_bad_plan_is_refused_with_a_clear_message(app, world, desk, change, message):
    person = world.client("C1")
    response = post(desk, f"/coordinator/clients/{person.public_id}/plans/new", plan_form(**change))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page.replace("&#39;", "'")
    assert 'role="alert"' in page
    with app.app_context():
        assert db.session().scalar(select(Plan.id)) is None
    assert audits(app, "plan.created") == []


def test_an_overlapping_second_plan_is_refused(app, world, desk):
    person = world.client("C1", plan_start=date(2026, 1, 5))  # open-ended
    response = post(desk, f"/coordinator/clients/{person.public_id}/plans/new", plan_form())
    assert response.status_code == 400 and "overlap" in response.get_data(as_text=True)


def test_editing_a_plan_is_audited_with_the_fields_changed(app, world, desk):
    person = world.client("C1", plan_start=MON, plan_end=date(2026, 4, 26))
    with app.app_context():
        plan_id = db.session().scalar(select(Plan.id))
    path = f"/coordinator/clients/{person.public_id}/plans/{plan_id}/edit"
    form_page = desk.get(path).get_data(as_text=True)
    assert 'value="2026-04-26"' in form_page and 'value="9"' in form_page
    response = post(desk, path, plan_form(weekly_hours="7.5", days_per_week="3"))
    assert response.status_code == 302
    [event] = audits(app, "plan.updated")
    assert event.detail["fields"] == ["weekly_minutes"] and event.username == "cora"
    with app.app_context():
        assert db.session().get(Plan, plan_id).weekly_minutes == 450


def test_removing_a_plan_is_audited(app, world, desk):
    person = world.client("C1", plan_start=MON)
    with app.app_context():
        plan_id = db.session().scalar(select(Plan.id))
    response = post(desk, f"/coordinator/clients/{person.public_id}/plans/{plan_id}/delete", {},
                    form_path=f"/coordinator/clients/{person.public_id}")
    assert response.status_code == 302
    assert len(audits(app, "plan.deleted")) == 1
    with app.app_context():
        assert db.session().get(Plan, plan_id) is None


def test_client_edit_refuses_a_taken_id_and_saves_a_discharge(app, world, desk):
    world.client("C1")
    other = world.client("C2", first="Ana")
    path = f"/coordinator/clients/{other.public_id}/edit"
    response = post(desk, path, {"client_id": "C1", "first_name": "Ana", "last_name": "Gonzalez", "status": "active"})
    assert response.status_code == 400 and "Another client already has the ID C1." in response.get_data(as_text=True)
    response = post(desk, path, {"client_id": "C2", "first_name": "Ana", "last_name": "Gonzalez",
                                 "status": "discharged"})
    assert response.status_code == 302
    assert find_client(app, "C2").status == "discharged"
    assert audits(app, "client.updated")[-1].detail["fields"] == ["status"]


def test_a_new_client_needs_names(desk, app):
    response = post(desk, "/coordinator/clients/new", {"client_id": "C 9", "first_name": "", "last_name": "X",
                                                       "status": "active"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The first name is needed." in page and "cannot contain spaces" in page
    assert find_client(app, "C 9") is None


def test_forms_need_the_csrf_token(world, desk):
    person = world.client("C1")
    response = desk.post(f"/coordinator/clients/{person.public_id}/plans/new", data=plan_form())
    assert response.status_code == 400 and "This form expired" in response.get_data(as_text=True)


# ---- groups -------------------------------------------------------------------------------------

def group_form(**values):
    base = {"code": "EV-MW", "name": "Evening Mon/Wed", "track": "twelve-step", "room": "Room A",
            "weekdays": ["Mon", "Wed"], "start": "18:00", "end": "21:00", "facilitator_id": "", "active": "on"}
    base.update(values)
    return base


def test_coordinator_adds_a_group(app, desk):
    response = post(desk, "/coordinator/groups/new", group_form(), form_path="/coordinator/groups/new")
    assert response.status_code == 302
    with app.app_context():
        group = db.session().scalar(select(Group).where(Group.code == "EV-MW"))
        assert (group.weekdays, group.start, group.end, group.track) == ("Mon Wed", time(18), time(21), "twelve-step")
    assert [e.target for e in audits(app, "group.created")] == ["group:EV-MW"]
    assert "EV-MW" in desk.get("/coordinator/groups").get_data(as_text=True)


@pytest.mark.parametrize("change,message", [
    ({"end": "17:00"}, "The end time must be after the start time"),
    ({"weekdays": []}, "Choose at least one weekday."),
    ({"track": "yoga"}, "Choose a curriculum track"),
    ({"code": "EV MW"}, "one word"),
    ({"start": "6pm"}, "The start time is not a time like 09:00 (24-hour clock)."),
], ids=["end before start", "no weekday", "unknown track", "code with space", "start in words"])
def test_a_bad_group_is_refused(app, desk, change, message):
    response = post(desk, "/coordinator/groups/new", group_form(**change))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(Group.id)) is None


def test_a_new_schedule_moves_sessions_not_yet_begun(app, world, desk, freeze):
    group = world.group("RP-AM", weekdays="Mon Wed Fri")
    freeze(datetime(2026, 3, 1, 20, 0, tzinfo=NY))  # Sunday evening
    monday = world.session("RP-AM", MON)
    wednesday = world.session("RP-AM", MON + timedelta(days=2))
    response = post(desk, f"/coordinator/groups/{group.id}/edit",
                    group_form(code="RP-AM", name="Morning", track="relapse-prevention",
                               weekdays=["Mon", "Tue", "Thu"], start="09:30", end="12:30"))
    assert response.status_code == 302
    with app.app_context():
        moved = db.session().get(GroupSession, monday.id)
        cancelled = db.session().get(GroupSession, wednesday.id)
        assert moved.starts_at == datetime(2026, 3, 2, 9, 30, tzinfo=NY)
        assert cancelled.status == "cancelled"  # no longer a Wednesday group
    assert audits(app, "group.updated")[0].detail["sessions_changed"] == 2


# ---- levels of care -------------------------------------------------------------------------------

def test_levels_are_seeded_and_editable(app, desk):
    page = desk.get("/coordinator/levels").get_data(as_text=True)
    assert all(code in page for code in ("2.1", "2.5", "Intensive outpatient"))
    response = post(desk, "/coordinator/levels", {"code": "2.1-Y", "name": "IOP (adolescent)", "minimum": "6",
                                                  "maximum": ""})
    assert response.status_code == 302
    response = post(desk, "/coordinator/levels", {"existing": "2.1", "code": "ignored", "name": "IOP",
                                                  "minimum": "9", "maximum": "19"},
                    form_path="/coordinator/levels?edit=2.1")
    assert response.status_code == 302
    with app.app_context():
        added = db.session().get(LevelOfCare, "2.1-Y")
        assert (added.weekly_minimum_minutes, added.weekly_maximum_minutes) == (360, None)
        assert db.session().get(LevelOfCare, "2.1").name == "IOP"
    assert [e.target for e in audits(app, "level_of_care.created")] == ["level:2.1-Y"]
    assert audits(app, "level_of_care.updated")[0].detail["fields"] == ["name"]


@pytest.mark.parametrize("data,message", [
    ({"code": "2.1", "name": "Again", "minimum": "9"}, "already exists"),
    ({"code": "a b", "name": "Spaced", "minimum": "9"}, "up to 20 letters"),
    ({"code": "3", "name": "Odd", "minimum": "9", "maximum": "5"}, "at least the minimum"),
    ({"code": "3", "name": "Odd", "minimum": ""}, "The weekly minimum is needed"),
])
def test_bad_levels_are_refused(app, desk, data, message):
    response = post(desk, "/coordinator/levels", {"maximum": "", **data})
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_facilitators_cannot_edit_plans_or_levels(world, auth, client):
    person = world.client("C1")
    auth.login("fran", role="facilitator")
    for path in ("/coordinator/levels", "/coordinator/groups", "/coordinator/clients",
                 f"/coordinator/clients/{person.public_id}/plans/new"):
        assert client.get(path).status_code == 403

"""Rotation: each session gets the next module of its group's track; a facilitator's choice moves it on."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from curriculum.rotation import ModuleChoiceRefused, choose_module, module_choices
from iop.store import db
from iop.store.models import AuditEvent, GroupSession, StaffUser

MONDAY = date(2026, 3, 2)


def session_days(group, first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() in group.weekday_numbers:
            days.append(day)
        day += timedelta(days=1)
    return days


def sequence_of(module_id: str) -> int:
    return int(module_id.split("-")[1])


def choose(app, session_id: int, module_id: str, username: str = "dana"):
    with app.app_context():
        with db.transaction() as s:
            user = s.scalar(select(StaffUser).where(StaffUser.username == username))
            return choose_module(s.get(GroupSession, session_id), module_id, user).id


def modules_by_day(app, group_id: int) -> dict[date, str]:
    with app.app_context():
        rows = db.session().execute(select(GroupSession.date, GroupSession.module_id)
                                    .where(GroupSession.group_id == group_id).order_by(GroupSession.date))
        return dict(rows.all())


def test_a_month_of_sessions_rotates_in_sequence_wraps_around_and_follows_an_override(app, world, auth):
    auth.make_user("dana", "facilitator")
    group = world.group(code="TS-MWF", track="twelve-step", weekdays="Mon Wed Fri")
    days = session_days(group, MONDAY, date(2026, 3, 31))
    assert len(days) == 13

    sessions = []
    for number, day in enumerate(days):
        group_session = world.session(group, day, status="scheduled" if number == 4 else "closed")
        sessions.append(group_session)
        if number == 4:  # the fifth session: the facilitator runs amends (9) instead of module 5
            assert group_session.module_id == "ts-05-people-places-routines"
            assert choose(app, group_session.id, "ts-09-amends") == "ts-09-amends"
            with app.app_context():
                with db.transaction() as s:
                    s.get(GroupSession, group_session.id).status = "closed"

    got = [sequence_of(m) for m in modules_by_day(app, group.id).values()]
    # 1..4, the override 9, then on from it: 10, 11, 12, wrap to 1, 2...
    assert got == [1, 2, 3, 4, 9, 10, 11, 12, 1, 2, 3, 4, 5]
    with app.app_context():
        chosen = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "session.module_chosen"))
    assert chosen.target == f"session:{sessions[4].id}" and chosen.username == "dana"
    assert chosen.detail == {"module": "ts-09-amends", "previous": "ts-05-people-places-routines"}


def test_the_first_session_of_a_group_starts_the_track_and_groups_rotate_separately(world):
    morning = world.group(code="RP-AM")
    evening = world.group(code="RP-PM")
    assert world.session(morning, MONDAY).module_id == "rp-01-triggers"
    assert world.session(morning, MONDAY + timedelta(days=2)).module_id == "rp-02-cravings-and-urges"
    assert world.session(evening, MONDAY + timedelta(days=2)).module_id == "rp-01-triggers"


def test_the_sixteen_module_track_wraps_after_its_last_module(world):
    group = world.group(code="RP-DAILY", weekdays="Mon Tue Wed Thu Fri")
    days = session_days(group, MONDAY, MONDAY + timedelta(days=30))[:18]
    got = [world.session(group, day).module_id for day in days]
    assert got[15] == "rp-16-motivation" and got[16] == "rp-01-triggers" and got[17] == "rp-02-cravings-and-urges"


def test_a_cancelled_session_ran_nothing_so_the_next_one_gets_its_module(world):
    group = world.group(code="RP-AM")
    world.session(group, MONDAY, status="closed")
    cancelled = world.session(group, MONDAY + timedelta(days=2), status="cancelled")
    assert cancelled.module_id == "rp-02-cravings-and-urges"
    assert world.session(group, MONDAY + timedelta(days=4)).module_id == "rp-02-cravings-and-urges"


def test_a_choice_replans_later_sessions_not_yet_started_but_keeps_another_choice(app, world, auth):
    auth.make_user("dana", "facilitator")
    group = world.group(code="RP-AM")
    first, second, third, fourth = [world.session(group, day) for day in session_days(group, MONDAY, MONDAY + timedelta(days=7))]
    assert fourth.module_id == "rp-04-warning-signs"
    choose(app, fourth.id, "rp-10-sleep-and-health")       # a planned choice for next Monday
    choose(app, first.id, "rp-07-boredom-and-empty-time")  # then today's group runs boredom instead
    got = modules_by_day(app, group.id)
    assert [sequence_of(got[m.date]) for m in (first, second, third, fourth)] == [7, 8, 9, 10]
    choose(app, first.id, "rp-14-relapse-prevention-plan")
    got = modules_by_day(app, group.id)
    assert [sequence_of(got[m.date]) for m in (first, second, third, fourth)] == [14, 15, 16, 10]


def test_a_choice_is_refused_once_started_or_for_another_track(app, world, auth):
    auth.make_user("dana", "facilitator")
    group = world.group(code="RP-AM")
    running = world.session(group, MONDAY, status="open")
    with app.app_context():
        with db.transaction() as s:  # the facilitator pressed start: doors open is not enough
            s.get(GroupSession, running.id).started_at = running.starts_at
    closed = world.session(group, MONDAY + timedelta(days=2), status="closed")
    waiting = world.session(group, MONDAY + timedelta(days=4))
    for group_session in (running, closed):
        with pytest.raises(ModuleChoiceRefused, match="already started"):
            choose(app, group_session.id, "rp-05-managing-stress")
    with pytest.raises(ModuleChoiceRefused, match="another track"):
        choose(app, waiting.id, "ts-01-acceptance")
    with pytest.raises(ModuleChoiceRefused, match="not in the curriculum"):
        choose(app, waiting.id, "rp-99-nothing")
    assert modules_by_day(app, group.id)[waiting.date] == "rp-03-thought-stopping-and-urge-surfing"
    with app.app_context():
        assert db.session().scalar(select(AuditEvent).where(AuditEvent.action == "session.module_chosen")) is None
        assert [m.id for m in module_choices(db.session().get(GroupSession, waiting.id))][:2] == [
            "rp-01-triggers", "rp-02-cravings-and-urges"]


def test_a_session_started_after_a_choice_keeps_it(app, world, auth):
    """A started session is never re-planned, even when an earlier session's module changes."""
    auth.make_user("dana", "facilitator")
    group = world.group(code="RP-AM")
    first = world.session(group, MONDAY)
    second = world.session(group, MONDAY + timedelta(days=2), status="open")
    with app.app_context():
        with db.transaction() as s:
            s.get(GroupSession, second.id).started_at = second.starts_at
    choose(app, first.id, "rp-12-high-risk-situations")
    assert modules_by_day(app, group.id)[second.date] == "rp-02-cravings-and-urges"


def test_doors_open_early_but_the_module_can_still_change_until_the_group_starts(app, world, auth):
    auth.make_user("dana", "facilitator")
    group = world.group(code="RP-AM")
    doors_open = world.session(group, MONDAY, status="open")
    choose(app, doors_open.id, "rp-05-managing-stress")
    assert modules_by_day(app, group.id)[MONDAY] == "rp-05-managing-stress"

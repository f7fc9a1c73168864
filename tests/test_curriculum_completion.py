"""Completion: a client has had a module when credited at least half of a session that ran it."""
from __future__ import annotations

from datetime import date, timedelta

from curriculum.completion import modules_had, modules_not_had, new_to_module
from helpers.world import local
from iop import clock
from iop.store import db
from iop.store.models import Attendance

MONDAY = date(2026, 3, 2)
WEDNESDAY = MONDAY + timedelta(days=2)
FRIDAY = MONDAY + timedelta(days=4)


def test_half_of_a_180_minute_session_is_the_threshold_exactly(app, world, freeze):
    group = world.group(code="RP-AM")  # 9:00-12:00, 180 minutes
    group_session = world.session(group, MONDAY, status="closed")
    assert group_session.module_id == "rp-01-triggers"
    ninety = world.client("C1", "Maria", "Gonzalez", groups=[group])
    eighty_nine = world.client("C2", "James", "Whitfield", groups=[group])
    # Arriving late and leaving early: credited minutes count only inside 9:00-12:00.
    world.attendance(ninety, group_session, local(MONDAY, 8, 40), local(MONDAY, 10, 30))       # 90 credited
    world.attendance(eighty_nine, group_session, local(MONDAY, 10, 31), local(MONDAY, 12, 30))  # 89 credited
    freeze(local(MONDAY, 18))
    with app.app_context():
        assert modules_had(ninety.id) == {"rp-01-triggers"}
        assert modules_had(eighty_nine.id) == set()
        assert new_to_module([ninety.id, eighty_nine.id], "rp-01-triggers") == {eighty_nine.id}


def test_make_ups_are_the_track_modules_not_had_in_sequence(app, world, freeze):
    group = world.group(code="RP-AM")
    mon, wed, fri = (world.session(group, day, status="closed") for day in (MONDAY, WEDNESDAY, FRIDAY))
    person = world.client("C1", groups=[group])
    world.attendance(person, mon, local(MONDAY, 9), local(MONDAY, 12))
    world.attendance(person, fri, local(FRIDAY, 9), local(FRIDAY, 10, 45))  # 105 of 180
    world.attendance(person, wed, None, None, status="excused")              # excused: not had
    freeze(local(FRIDAY + timedelta(days=3), 8))
    with app.app_context():
        assert modules_had(person.id) == {"rp-01-triggers", "rp-03-thought-stopping-and-urge-surfing"}
        not_had = modules_not_had(person.id, "relapse-prevention")
        assert [m.sequence for m in not_had] == [2] + list(range(4, 17))
        assert len(modules_not_had(person.id, "twelve-step")) == 12


def test_a_voided_attendance_does_not_count_but_its_correction_does(app, world, freeze):
    group = world.group(code="RP-AM")
    group_session = world.session(group, MONDAY, status="closed")
    person = world.client("C1", groups=[group])
    wrong = world.attendance(person, group_session, local(MONDAY, 9), local(MONDAY, 12))
    freeze(local(MONDAY, 18))
    with app.app_context():
        with db.transaction() as s:
            record = s.get(Attendance, wrong.id)
            record.voided_at, record.void_reason = clock.now(), "Scanned the wrong card"
        assert modules_had(person.id) == set()
    world.attendance(person, group_session, local(MONDAY, 9), local(MONDAY, 11))
    with app.app_context():
        assert modules_had(person.id) == {"rp-01-triggers"}


def test_the_session_running_now_is_not_had_until_it_is_over(app, world, freeze):
    """The roster's "new to this module" mark stays up for the whole group."""
    group = world.group(code="RP-AM")
    group_session = world.session(group, MONDAY, status="open")
    person = world.client("C1", groups=[group])
    world.attendance(person, group_session, local(MONDAY, 9), None)  # still in the room
    freeze(local(MONDAY, 11, 30))
    with app.app_context():
        assert new_to_module([person.id], "rp-01-triggers") == {person.id}
    freeze(local(MONDAY, 12, 5))  # over (the close job has not run yet): in until the end, 180 minutes
    with app.app_context():
        assert new_to_module([person.id], "rp-01-triggers") == set()
        assert modules_had(person.id) == {"rp-01-triggers"}


def test_a_cancelled_session_and_another_module_do_not_count(app, world, freeze):
    group = world.group(code="RP-AM")
    cancelled = world.session(group, MONDAY, status="cancelled")
    person = world.client("C1", groups=[group])
    world.attendance(person, cancelled, local(MONDAY, 9), local(MONDAY, 12))
    other = world.session(group, WEDNESDAY, status="closed", module_id="rp-05-managing-stress")
    world.attendance(person, other, local(WEDNESDAY, 9), local(WEDNESDAY, 12))
    freeze(local(FRIDAY, 8))
    with app.app_context():
        assert modules_had(person.id) == {"rp-05-managing-stress"}
        assert new_to_module([person.id], "rp-01-triggers") == {person.id}
        assert new_to_module([], "rp-01-triggers") == set()

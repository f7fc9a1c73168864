"""The hours rules of docs/domain.md (rules 1-8), case by case, each figure computed by hand in the table.

First the pure functions (iop.rules.hours), then the same cases through week_figures against the
database (the week of tests/helpers/hand_worked_week.py), so SQLite and PostgreSQL
(IOP_TEST_DATABASE=postgres) are held to the same table.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers.hand_worked_week import FRI, MON, NOW_AFTER, NOW_WED, SUN, WED, at, build_week
from helpers.world import NY
from iop.rules import hours
from iop.rules.hours import Phase, PlanTerms
from iop.store import db, hours_queries

UTC = timezone.utc
START, END = at(MON, "09:00"), at(MON, "12:00")  # Monday's morning group, 180 minutes


# ---- rule 1 (credited minutes) and rule 8 (flags) ------------------------------------------------

# name, check-in, check-out, credited minutes, late, left early
ATTENDANCE_CASES = [
    ("on time, stays to the end", "09:00", "12:00", 180, False, False),
    ("early arrival earns nothing before the start", "08:40", "12:00", 180, False, False),
    ("staying late earns nothing after the end", "09:00", "12:25", 180, False, False),
    ("late within the grace: minutes lost, no flag", "09:08", "12:00", 172, False, False),
    ("late exactly at the grace: no flag", "09:10", "12:00", 170, False, False),
    ("late past the grace: flagged, minutes still by rule 1", "09:25", "12:00", 155, True, False),
    ("early departure: flagged", "09:00", "11:15", 135, False, True),
    ("departure within the grace: no flag", "09:00", "11:52", 172, False, False),
    ("departure exactly at end minus grace: no flag", "09:00", "11:50", 170, False, False),
    ("late and left early", "09:30", "11:00", 90, True, True),
    ("left before the start: valid, 0 minutes", "08:20", "08:55", 0, False, True),
    ("came after the end: valid, 0 minutes", "12:10", "12:30", 0, True, False),
    ("checked in and out at the same minute", "10:00", "10:00", 0, True, True),
]


@pytest.mark.parametrize("name,check_in,check_out,minutes,late,early", ATTENDANCE_CASES,
                         ids=[case[0] for case in ATTENDANCE_CASES])
def test_credited_minutes_and_flags(name, check_in, check_out, minutes, late, early):
    arrived, left = at(MON, check_in), at(MON, check_out)
    assert hours.credited_minutes(arrived, left, START, END) == minutes
    assert hours.is_late(arrived, START) is late
    assert hours.left_early(left, END) is early


@pytest.mark.parametrize("name,check_in,check_out,minutes,late,early", ATTENDANCE_CASES,
                         ids=[case[0] for case in ATTENDANCE_CASES])
def test_a_pages_row_gives_the_same_minutes_and_flags(name, check_in, check_out, minutes, late, early):
    """credited_so_far and attendance_flags (the client page, the session summary, the roster) agree
    with the rules above for a present client; an excused record has no minutes and no flags."""
    arrived, left = at(MON, check_in), at(MON, check_out)
    assert hours.credited_so_far(True, arrived, left, START, END, NOW_AFTER) == minutes
    assert hours.attendance_flags(True, arrived, left, START, END, hours.GRACE_MINUTES) == (late, early)
    assert hours.credited_so_far(False, arrived, left, START, END, NOW_AFTER) == 0
    assert hours.attendance_flags(False, arrived, left, START, END, hours.GRACE_MINUTES) == (False, False)


def test_a_row_still_open_counts_to_now_then_to_the_end():
    assert hours.credited_so_far(True, START, None, START, END, at(MON, "10:30")) == 90
    assert hours.credited_so_far(True, START, None, START, END, at(MON, "15:00")) == 180
    assert hours.credited_so_far(True, None, None, START, END, at(MON, "15:00")) == 0  # no check-in
    assert hours.credited_so_far(True, at(MON, "11:00"), at(MON, "10:00"), START, END, NOW_AFTER) == 0  # reversed
    assert hours.attendance_flags(True, at(MON, "09:05"), None, START, END, 10) == (False, False)  # still in


def test_minutes_round_down_and_count_whole_seconds():
    assert hours.credited_minutes(START, at(MON, "11:59", 59), START, END) == 179
    # A kiosk stamp's fraction of a second is not counted (the SQL reads whole seconds too).
    assert hours.credited_minutes(at(MON, "09:00", 0, 500_000), END, START, END) == 180
    assert hours.credited_minutes(at(MON, "09:00", 59, 999_999), END, START, END) == 179


def test_grace_is_configurable():
    assert hours.is_late(at(MON, "09:08"), START, grace_minutes=5) is True
    assert hours.left_early(at(MON, "11:52"), END, grace_minutes=5) is True


def test_invalid_records():
    with pytest.raises(hours.InvalidAttendance):
        hours.credited_minutes(at(MON, "11:00"), at(MON, "10:00"), START, END)
    # Two attendances of one client that overlap in time are invalid; back to back is fine.
    assert hours.overlaps(at(MON, "09:00"), at(MON, "12:00"), at(MON, "11:30"), at(MON, "13:00"))
    assert not hours.overlaps(at(MON, "09:00"), at(MON, "12:00"), at(MON, "12:00"), at(MON, "13:00"))
    assert hours.overlaps(at(MON, "09:00"), None, at(MON, "18:00"), at(MON, "19:00"))  # still open


# ---- rule 2: no check-out at close --------------------------------------------------------------

# name, closed at, check-out given, credited minutes for a 09:00 check-in, left early flag
CLOSE_CASES = [
    ("closed after the end: out at the scheduled end", "12:20", "12:00", 180, False),
    ("closed on time", "12:00", "12:00", 180, False),
    ("closed early by the facilitator: out at the close", "11:30", "11:30", 150, True),
]


@pytest.mark.parametrize("name,closed,out,minutes,early", CLOSE_CASES, ids=[c[0] for c in CLOSE_CASES])
def test_no_check_out_at_close(name, closed, out, minutes, early):
    check_out = hours.close_check_out(at(MON, closed), END)
    assert check_out == at(MON, out)
    assert hours.credited_minutes(START, check_out, START, END) == minutes
    assert hours.left_early(check_out, END) is early


def test_still_in_counts_up_to_now_while_the_session_runs():
    assert hours.effective_check_out(None, END, now=at(MON, "10:30")) == at(MON, "10:30")
    assert hours.effective_check_out(None, END, now=at(MON, "15:00")) == END


# ---- rule 3: days ---------------------------------------------------------------------------------

def test_two_sessions_in_a_day_add_up_to_one_day():
    morning = hours.credited_minutes(at(MON, "09:00"), at(MON, "12:00"), START, END)
    evening = hours.credited_minutes(at(MON, "18:05"), at(MON, "19:35"), at(MON, "18:00"), at(MON, "21:00"))
    assert (morning, evening) == (180, 90)
    by_day = {MON: morning + evening}
    assert hours.days_attended(by_day) == 1
    assert hours.is_full_day(by_day[MON])


@pytest.mark.parametrize("minutes,full", [(180, True), (179, False), (181, True), (0, False)])
def test_a_full_day_is_exactly_180_minutes(minutes, full):
    assert hours.is_full_day(minutes) is full


def test_days_attended_are_dates_with_more_than_zero_minutes():
    assert hours.days_attended({MON: 180, WED: 0, FRI: 1}) == 2


def test_a_weeks_totals_and_minutes_from_minutes_per_date():
    by_day = {MON: 180, WED: 0, FRI: 150, SUN + timedelta(days=1): 300}  # the next Monday is not this week
    assert hours.week_totals({MON: 180, WED: 0, FRI: 150}, 180) == (330, 2, 1)
    assert hours.week_totals({MON: 180, FRI: 150}, 150) == (330, 2, 2)  # a program's own full day
    assert hours.week_minutes(by_day, MON) == 330
    assert hours.week_minutes(by_day, MON + timedelta(days=7)) == 300


# ---- rule 4: weeks, and daylight saving time ------------------------------------------------------

# name, a date, its week's Monday
WEEK_CASES = [
    ("a Monday is its own week's start", MON, MON),
    ("Sunday still belongs to the week that began on Monday", SUN, MON),
    ("the Monday after Sunday midnight starts the next week", SUN + timedelta(days=1), MON + timedelta(days=7)),
]


@pytest.mark.parametrize("name,day,monday", WEEK_CASES, ids=[c[0] for c in WEEK_CASES])
def test_week_start(name, day, monday):
    assert hours.week_start(day) == monday


# name, Monday, UTC start, UTC end, hours in the week
DST_WEEKS = [
    ("an ordinary winter week", date(2026, 2, 23), datetime(2026, 2, 23, 5, tzinfo=UTC),
     datetime(2026, 3, 2, 5, tzinfo=UTC), 168),
    ("March: clocks spring forward on Sunday 8 March", MON, datetime(2026, 3, 2, 5, tzinfo=UTC),
     datetime(2026, 3, 9, 4, tzinfo=UTC), 167),
    ("November: clocks fall back on Sunday 1 November", date(2026, 10, 26), datetime(2026, 10, 26, 4, tzinfo=UTC),
     datetime(2026, 11, 2, 5, tzinfo=UTC), 169),
]


@pytest.mark.parametrize("name,monday,first,last,length", DST_WEEKS, ids=[c[0] for c in DST_WEEKS])
def test_week_bounds_follow_the_local_clock(name, monday, first, last, length):
    begins, ends = hours.week_bounds(monday, NY)
    assert (begins, ends) == (first, last)
    assert (ends - begins) == timedelta(hours=length)


def test_sunday_night_before_midnight_is_still_the_week_across_dst():
    # Sunday 23:30 local is 03:30 UTC in March (EDT) and 04:30 UTC in November (EST).
    _, march_end = hours.week_bounds(MON, NY)
    assert datetime(2026, 3, 9, 3, 30, tzinfo=UTC) < march_end <= datetime(2026, 3, 9, 4, tzinfo=UTC)
    _, november_end = hours.week_bounds(date(2026, 10, 26), NY)
    assert datetime(2026, 11, 2, 4, 30, tzinfo=UTC) < november_end


def test_a_session_across_the_spring_gap_is_credited_its_real_length():
    from iop.clock import local_to_utc

    starts, ends = local_to_utc(SUN, time(1), NY), local_to_utc(SUN, time(3), NY)
    assert hours.credited_minutes(starts, ends, starts, ends) == 60  # 01:00 EST to 03:00 EDT
    day = date(2026, 11, 1)
    starts, ends = local_to_utc(day, time(0, 30), NY), local_to_utc(day, time(2, 30), NY)
    assert hours.credited_minutes(starts, ends, starts, ends) == 180  # the 01:00 hour happens twice


# ---- rule 5: targets ------------------------------------------------------------------------------

STEP_DOWN = (Phase(1, 4, 540, 3), Phase(5, 8, 360, 2))


def plan(start, end=None, weekly=540, days=3, phases=(), level="2.1"):
    return PlanTerms(start_date=start, end_date=end, weekly_minutes=weekly, days_per_week=days,
                     level_of_care=level, phases=phases)


# name, plans, Monday, target minutes (None = no plan in effect)
TARGET_CASES = [
    ("a whole week of a 9 h plan", [plan(date(2026, 2, 2))], MON, 540),
    ("plan starts on Wednesday: 3 of 5 weekdays, 324 rounded up to 330", [plan(WED)], MON, 330),
    ("plan starts on Tuesday: 4 of 5 weekdays, 432 rounded up to 435", [plan(MON + timedelta(days=1))], MON, 435),
    ("plan starts on Thursday at 10 h: 240 needs no rounding", [plan(MON + timedelta(days=3), weekly=600)], MON, 240),
    ("plan starts on Saturday: no weekday covered", [plan(MON + timedelta(days=5))], MON, 0),
    ("plan ends on Tuesday: 2 of 5, 216 rounded up to 225", [plan(date(2026, 2, 2), MON + timedelta(days=1))], MON, 225),
    ("plan starts and ends in the week (Tue-Thu)", [plan(MON + timedelta(days=1), MON + timedelta(days=3))], MON, 330),
    ("week before the plan starts", [plan(MON + timedelta(days=7))], MON, None),
    ("week after the plan ended", [plan(date(2026, 1, 5), date(2026, 2, 27))], MON, None),
    ("no plan at all", [], MON, None),
    ("step-down: plan week 4 (last of phase 1)", [plan(date(2026, 2, 2), phases=STEP_DOWN)], date(2026, 2, 23), 540),
    ("step-down: plan week 5 (first of phase 2)", [plan(date(2026, 2, 2), phases=STEP_DOWN)], MON, 360),
    ("after the last phase: the plan's own hours", [plan(date(2026, 2, 2), weekly=180, phases=STEP_DOWN)],
     date(2026, 3, 30), 180),
    # Plan week 1 is the week holding Wed 4 Feb, so Mon 2 March is plan week 5 (not day 26 // 7 + 1 = 4).
    ("step-down mid-plan, plan started on a Wednesday", [plan(date(2026, 2, 4), phases=STEP_DOWN)], MON, 360),
    ("one plan ends Tuesday, the next starts Wednesday: prorated parts add up",
     [plan(date(2026, 2, 2), MON + timedelta(days=1)), plan(WED, weekly=360, days=2)], MON, 225 + 225),
]


@pytest.mark.parametrize("name,plans,monday,target", TARGET_CASES, ids=[c[0] for c in TARGET_CASES])
def test_week_target(name, plans, monday, target):
    assert hours.week_target(plans, monday) == target


def test_two_plans_of_a_client_overlap_when_they_share_a_day():
    march = PlanTerms(MON, SUN, 540, 3)
    assert hours.dates_overlap(march, PlanTerms(SUN, None, 360, 2))  # the same Sunday
    assert not hours.dates_overlap(march, PlanTerms(SUN + timedelta(days=1), None, 360, 2))
    assert hours.dates_overlap(PlanTerms(MON, None, 540, 3), PlanTerms(date(2027, 1, 4), None, 360, 2))  # open end
    assert not hours.dates_overlap(PlanTerms(MON - timedelta(days=30), MON - timedelta(days=1), 540, 3), march)


def test_plan_weeks_count_from_the_week_holding_the_start():
    assert hours.plan_week_number(date(2026, 2, 4), date(2026, 2, 2)) == 1
    assert hours.plan_week_number(date(2026, 2, 4), MON) == 5
    assert hours.phase_in_effect(plan(date(2026, 2, 4), phases=STEP_DOWN), MON) == (360, 2)


# name, phases, problem expected (a word of the message) or None
PHASE_CASES = [
    ("a good step-down", STEP_DOWN, None),
    ("no phases", (), None),
    ("overlapping weeks", (Phase(1, 4, 540, 3), Phase(4, 8, 360, 2)), "overlap"),
    ("a gap between phases", (Phase(1, 4, 540, 3), Phase(6, 8, 360, 2)), "without hours"),
    ("first phase after week 1", (Phase(2, 4, 540, 3),), "week 1"),
    ("weeks backwards", (Phase(4, 1, 540, 3),), "forward"),
    ("eight days a week", (Phase(1, 4, 540, 8),), "0 to 7 days"),
    ("negative hours", (Phase(1, 4, -60, 3),), "0 or more"),
]


@pytest.mark.parametrize("name,phases,problem", PHASE_CASES, ids=[c[0] for c in PHASE_CASES])
def test_phases_problem(name, phases, problem):
    found = hours.phases_problem(phases)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


# ---- rule 6: status -------------------------------------------------------------------------------

# name, target, attended, week over, minutes still possible, status
STATUS_CASES = [
    ("met mid-week", 540, 540, False, 0, "met"),
    ("met, week over, more than the target", 540, 600, True, 0, "met"),
    ("one minute short once the week ends", 540, 539, True, 0, "short"),
    ("nothing attended, week over", 540, 0, True, 0, "short"),
    ("mid-week, every remaining session would just reach it", 540, 180, False, 360, "on_track"),
    ("mid-week, even every remaining session falls short", 540, 180, False, 359, "at_risk"),
    ("no plan", None, 120, False, 300, "no_plan"),
    ("no plan, week over", None, 0, True, 0, "no_plan"),
    ("a target of 0 is met", 0, 0, False, 0, "met"),
]


@pytest.mark.parametrize("name,target,attended,over,possible,status", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_week_status(name, target, attended, over, possible, status):
    assert hours.week_status(target, attended, over, possible) == status


def test_remaining_minutes_from_the_rest_of_the_week():
    windows = [(at(day, "09:00"), at(day, "12:00")) for day in (MON, WED, FRI)]
    assert hours.remaining_minutes(windows, at(MON, "08:00")) == 540
    assert hours.remaining_minutes(windows, at(WED, "10:00")) == 120 + 180  # Wednesday's rest and Friday
    assert hours.remaining_minutes(windows, at(FRI, "12:00")) == 0


def test_overlapping_groups_are_not_counted_twice():
    windows = [(at(MON, "09:00"), at(MON, "12:00")), (at(MON, "11:00"), at(MON, "13:00"))]
    assert hours.remaining_minutes(hours.merged_windows(windows), at(MON, "08:00")) == 240


def test_text_forms():
    assert hours.hours_text(360) == "6 h 00" and hours.hours_text(545) == "9 h 05"
    assert hours.decimal_hours(545) == "9.08" and hours.decimal_hours(540) == "9.00"


# ---- the same rules through the database (week_figures) -------------------------------------------

# client_id: (level, target, attended at NOW_WED, days, status at NOW_WED, attended after, days, full, status after)
DB_CASES = {
    "C-FULL": ("2.1", 540, 180 + 60, 2, "on_track", 540, 3, 3, "met"),
    "C-LATE": ("2.1", 540, 155, 1, "at_risk", 155 + 135, 2, 0, "short"),
    "C-TWO": ("2.1", 360, 270, 1, "on_track", 270, 1, 1, "short"),
    "C-OPEN": ("2.1", 540, 179 + 60, 2, "at_risk", 179 + 180, 2, 1, "short"),  # 239 + 300 = 539 < 540
    "C-RISK": ("2.1", 540, 180, 1, "at_risk", 180, 1, 1, "short"),
    "C-WEDS": ("2.1", 330, 0, 0, "at_risk", 180, 1, 1, "short"),
    "C-STEP": ("2.1", 360, 180 + 60, 2, "on_track", 360, 2, 2, "met"),
    "C-NOPLAN": ("", 0, 120, 1, "no_plan", 120, 1, 0, "no_plan"),
    "C-SUNDAY": ("2.1", 90, 0, 0, "on_track", 90, 1, 0, "met"),
}


def _figures(app, now, people):
    with app.app_context():
        found = hours_queries.week_figures(MON, now, NY)
        return {cid: found[c.id] for cid, c in people.items() if c.id in found}


def test_week_figures_mid_week(app, world):
    people = build_week(world, NOW_WED)
    got = _figures(app, NOW_WED, people)
    assert "C-GONE" not in got
    expected = {cid: (row[0], row[1], row[2], row[3], row[4]) for cid, row in DB_CASES.items()}
    assert {cid: (f.level_of_care, f.target_minutes, f.attended_minutes, f.days_attended, f.status)
            for cid, f in got.items()} == expected


def test_week_figures_after_the_week(app, world):
    people = build_week(world, NOW_AFTER)
    with app.app_context():
        # The close job has run: C-OPEN was still in on Wednesday and is checked out at the end.
        from sqlalchemy import select

        from iop.store.models import Attendance
        with db.transaction() as s:
            record = s.scalar(select(Attendance).where(Attendance.client_key == people["C-OPEN"].id,
                                                       Attendance.check_out_at.is_(None)))
            record.check_out_at = hours.close_check_out(at(WED, "12:05"), at(WED, "12:00"))
    got = _figures(app, NOW_AFTER, people)
    expected = {cid: (row[0], row[1], row[5], row[6], row[7], row[8]) for cid, row in DB_CASES.items()}
    assert {cid: (f.level_of_care, f.target_minutes, f.attended_minutes, f.days_attended, f.full_days, f.status)
            for cid, f in got.items()} == expected


def test_the_week_ends_at_sunday_midnight_local(app, world):
    people = build_week(world, NOW_AFTER)
    # Sunday 23:45 local (after the late group, before midnight): the week still runs.
    got = _figures(app, at(SUN, "23:45"), people)
    assert got["C-RISK"].status == "at_risk" and got["C-SUNDAY"].status == "met"
    # Monday 00:00 local is 04:00 UTC after spring forward: the week is over.
    got = _figures(app, datetime(2026, 3, 9, 4, 0, tzinfo=UTC), people)
    assert got["C-RISK"].status == "short"


def test_an_excused_absence_earns_nothing_and_keeps_the_target(app, world):
    people = build_week(world, NOW_AFTER)
    got = _figures(app, NOW_AFTER, people)["C-WEDS"]
    assert (got.target_minutes, got.attended_minutes, got.days_attended) == (330, 180, 1)


def test_a_named_client_without_plan_or_attendance_is_no_plan(app, world):
    people = build_week(world, NOW_AFTER)
    with app.app_context():
        got = hours_queries.week_figures(MON, NOW_WED, NY, client_keys=[people["C-GONE"].id])
    figure = got[people["C-GONE"].id]
    assert (figure.status, figure.target_minutes, figure.attended_minutes) == ("no_plan", 0, 0)


def test_cancelled_and_closed_sessions_offer_no_more_minutes(app, world):
    people = build_week(world, NOW_WED)
    from sqlalchemy import select

    from iop.store.models import GroupSession
    with app.app_context():
        with db.transaction() as s:
            # Friday is cancelled: C-FULL can reach only 240 + 120 = 360 of 540 now.
            s.scalar(select(GroupSession).where(GroupSession.date == FRI)).status = "cancelled"
        assert hours_queries.week_figures(MON, NOW_WED, NY)[people["C-FULL"].id].status == "at_risk"


def test_week_across_november_dst(app, world):
    week = date(2026, 10, 26)
    world.group("RP-AM", weekdays="Mon Wed Fri", start=time(9), end=time(12))
    world.group("LATE", name="Sunday late", weekdays="Sun", start=time(22), end=time(23, 30))
    person = world.client("C-NOV", groups=["RP-AM", "LATE"], plan_start=date(2026, 9, 7), weekly_hours=6, days=2)
    sunday = world.session("LATE", date(2026, 11, 1))
    friday = world.session("RP-AM", date(2026, 10, 30))
    world.attendance(person, friday, at(date(2026, 10, 30), "09:00"), at(date(2026, 10, 30), "12:00"))
    world.attendance(person, sunday, at(date(2026, 11, 1), "22:00"), at(date(2026, 11, 1), "23:30"))
    with app.app_context():
        # Sunday 23:45 EST = 04:45 UTC on 2 Nov: with a fixed EDT offset the week would look over.
        running = hours_queries.week_figures(week, datetime(2026, 11, 2, 4, 45, tzinfo=UTC), NY)[person.id]
        over = hours_queries.week_figures(week, datetime(2026, 11, 2, 5, 0, tzinfo=UTC), NY)[person.id]
    assert (running.attended_minutes, running.status) == (270, "at_risk")
    assert (over.attended_minutes, over.days_attended, over.status) == (270, 2, "short")


def test_client_weeks_match_week_figures(app, world):
    people = build_week(world, NOW_AFTER)
    with app.app_context():
        history = hours_queries.client_weeks(people["C-STEP"].id, date(2026, 2, 23), MON + timedelta(days=7), NOW_AFTER, NY)
        assert [w.week_start for w in history] == [date(2026, 2, 23), MON, MON + timedelta(days=7)]
        assert history[1] == hours_queries.week_figures(MON, NOW_AFTER, NY)[people["C-STEP"].id]
        assert [w.target_minutes for w in history] == [540, 360, 360]


# ---- rule 1 in SQL equals rule 1 in Python, to the minute ----------------------------------------

moments = st.integers(min_value=-90 * 60 * 1_000_000, max_value=270 * 60 * 1_000_000)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(moments, moments), min_size=1, max_size=8))
@example([(999_600, 180 * 60 * 1_000_000), (500_000, 179 * 60 * 1_000_000 + 999_999)])  # fractions of a second
def test_sql_credited_minutes_equal_python(app, pairs):
    from sqlalchemy import delete

    from iop.store.models import Attendance, Client, Group, GroupSession

    with app.app_context():
        with db.transaction() as s:
            for model in (Attendance, GroupSession, Client, Group):
                s.execute(delete(model))
            group = Group(code="G", name="G", track="relapse-prevention", weekdays="Mon", start=time(9), end=time(12))
            s.add(group)
            s.flush()
            group_sessions, records = [], []
            for index, (a, b) in enumerate(pairs):
                day = MON + timedelta(weeks=index)
                starts = at(day, "09:00").astimezone(UTC)
                group_session = GroupSession(group_id=group.id, date=day, starts_at=starts,
                                       ends_at=starts + timedelta(hours=3))
                person = Client(client_id=f"P{index}", first_name="P", last_name="Q")
                s.add_all([group_session, person])
                s.flush()
                check_in = starts + timedelta(microseconds=min(a, b))
                check_out = starts + timedelta(microseconds=max(a, b))
                s.add(Attendance(session_id=group_session.id, client_key=person.id, check_in_at=check_in,
                                 check_out_at=check_out))
                records.append((person.id, day, hours.credited_minutes(check_in, check_out, group_session.starts_at,
                                                                       group_session.ends_at)))
        in_sql = hours_queries.minutes_by_client_day(MON, MON + timedelta(weeks=len(pairs)), NOW_AFTER)
    assert in_sql == {(pk, day): minutes for pk, day, minutes in records}

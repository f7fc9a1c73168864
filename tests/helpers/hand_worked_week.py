"""The hand-worked week of the hours rules (docs/domain.md rules 1-8): Monday 2 March 2026, the week
clocks spring forward, with one client per case. tests/test_hours_rules.py holds the figures worked
out by hand for it; other tests check that faster paths give the same figures on it."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from helpers.world import NY

MON = date(2026, 3, 2)    # an ordinary week: Mon 2 March .. Sun 8 March 2026 (clocks spring forward on the 8th)
WED, FRI, SUN = MON + timedelta(days=2), MON + timedelta(days=4), MON + timedelta(days=6)


def at(day: date, hhmm: str, second: int = 0, micro: int = 0) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hour, minute, second, micro), tzinfo=NY)


# Three groups: Mon/Wed/Fri mornings, Monday evenings, and a Sunday late group for the week's edge.
NOW_WED = at(WED, "10:00")              # mid-week, Wednesday's morning group running
NOW_AFTER = at(SUN + timedelta(days=1), "00:30")  # the week is over (Monday 00:30 local)


def build_week(world, now):
    """One client per case, as the database stands at `now` (what has not happened yet is not
    there; who is in the room has no check-out yet). tests/test_hours_rules.py's DB_CASES works out every figure by hand."""
    world.group("RP-AM", weekdays="Mon Wed Fri", start=time(9), end=time(12))
    world.group("TS-PM", name="Evening", track="twelve-step", weekdays="Mon", start=time(18), end=time(21))
    world.group("LATE", name="Sunday late", weekdays="Sun", start=time(22), end=time(23, 30))
    mon_am, wed_am, fri_am = (world.session("RP-AM", day) for day in (MON, WED, FRI))
    mon_pm = world.session("TS-PM", MON)
    sun_late = world.session("LATE", SUN)
    old = date(2026, 2, 2)
    people = {}

    def attend(person_, group_session, check_in, check_out, **kwargs):
        if check_in is not None and check_in > now:
            return
        world.attendance(person_, group_session, check_in, check_out if check_out is None or check_out <= now else None,
                         **kwargs)

    def person(client_id, **kwargs):
        people[client_id] = world.client(client_id=client_id, first=client_id.title(), last="Case", **kwargs)
        return people[client_id]

    # C-FULL: in early, out late, three full days; at NOW_WED in the room since 08:45 (60 minutes so far)
    c = person("C-FULL", groups=["RP-AM"], plan_start=old)
    attend(c, mon_am, at(MON, "08:45"), at(MON, "12:00"))
    attend(c, wed_am, at(WED, "08:45"), at(WED, "12:10"))
    attend(c, fri_am, at(FRI, "09:00"), at(FRI, "12:00"))
    # C-LATE: late past the grace Monday (09:25-12:00 = 155), left early Friday (09:00-11:15 = 135)
    c = person("C-LATE", groups=["RP-AM"], plan_start=old)
    attend(c, mon_am, at(MON, "09:25"), at(MON, "12:00"))
    attend(c, fri_am, at(FRI, "09:00"), at(FRI, "11:15"))
    # C-TWO: two sessions Monday (180 + 90 = 270, one full day), plan of 6 h
    c = person("C-TWO", groups=["RP-AM", "TS-PM"], plan_start=old, weekly_hours=6, days=2)
    attend(c, mon_am, at(MON, "09:00"), at(MON, "12:00"))
    attend(c, mon_pm, at(MON, "18:05"), at(MON, "19:35"))
    # C-OPEN: Monday 179 (not a full day); in since 09:00 Wednesday and never checks out (the close job does)
    c = person("C-OPEN", groups=["RP-AM"], plan_start=old)
    attend(c, mon_am, at(MON, "09:00"), at(MON, "11:59"))
    attend(c, wed_am, at(WED, "09:00"), None)
    # C-RISK: Monday only (180); at Wednesday 10:00 at most 120 + 180 more: 480 < 540 -> at_risk
    c = person("C-RISK", groups=["RP-AM"], plan_start=old)
    attend(c, mon_am, at(MON, "09:00"), at(MON, "12:00"))
    # C-WEDS: plan starts Wednesday: target 330; excused Wednesday; Friday 180 (at NOW_WED 300 < 330 remain)
    c = person("C-WEDS", groups=["RP-AM"], plan_start=WED)
    attend(c, wed_am, None, None, status="excused", source="manual")
    attend(c, fri_am, at(FRI, "09:00"), at(FRI, "12:00"))
    # C-STEP: plan started Wed 4 Feb, steps down to 6 h in plan week 5 (this week); Mon + Wed = 360
    c = person("C-STEP", groups=["RP-AM"], plan_start=date(2026, 2, 4), phases=[(1, 4, 9, 3), (5, 8, 6, 2)])
    attend(c, mon_am, at(MON, "09:00"), at(MON, "12:00"))
    attend(c, wed_am, at(WED, "09:00"), at(WED, "12:00"))
    # C-NOPLAN: attends without a plan (120)
    c = person("C-NOPLAN", groups=["RP-AM"])
    attend(c, mon_am, at(MON, "10:00"), at(MON, "12:00"))
    # C-SUNDAY: Sunday 22:00-23:30 (90) belongs to this week; plan 1 h 30
    c = person("C-SUNDAY", groups=["LATE"], plan_start=old, weekly_hours=1.5, days=1)
    attend(c, sun_late, at(SUN, "22:00"), at(SUN, "23:30"))
    # C-GONE: plan ended last week, nothing attended: not on the week at all
    person("C-GONE", groups=["RP-AM"], plan_start=date(2026, 1, 5), plan_end=date(2026, 2, 27))
    return people

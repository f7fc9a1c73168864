"""Rules 9-11 (docs/domain.md) as pure functions, with tables worked out by hand: units counted from
full days or attended sessions inside the dates, over, status on a date, and the forecast."""
from __future__ import annotations

from datetime import date

import pytest

from iop.rules import authorizations as rules
from iop.rules import entry
from iop.rules.authorizations import DayAttended, Terms
from iop.rules.hours import Phase, PlanTerms

D = date.fromisoformat
# March 2026: Mon 2, Wed 4, Fri 6, Mon 9, Tue 10, Wed 11, Fri 13, Mon 16, Wed 18, Mon 23, Wed 25.
ATTENDED = {
    D("2026-03-02"): DayAttended(180, 1),  # a full day, before the window below
    D("2026-03-04"): DayAttended(180, 1),  # exactly the full-day minutes: a full day
    D("2026-03-06"): DayAttended(179, 1),  # a minute short: no day unit, still a session
    D("2026-03-09"): DayAttended(270, 2),  # two sessions the same day
    D("2026-03-10"): DayAttended(0, 0),  # a 0-minute visit: neither a day nor a session
    D("2026-03-11"): DayAttended(180, 1),  # after the window
}


@pytest.mark.parametrize("unit, units, counted, used, remaining, over, over_dates", [
    # A window Wed 2026-03-04..Tue 2026-03-10 cuts two weeks.
    ("day", 5, 2, 2, 3, 0, ()),  # 03-04 (180) and 03-09; 03-06 (179) and 03-10 (0) do not count
    ("day", 2, 2, 2, 0, 0, ()),
    ("day", 1, 2, 1, 0, 1, (D("2026-03-09"),)),  # the later unit is the one over
    ("session", 5, 4, 4, 1, 0, ()),  # 03-04, 03-06, 03-09 twice
    ("session", 3, 4, 3, 0, 1, (D("2026-03-09"),)),
    ("session", 2, 4, 2, 0, 2, (D("2026-03-09"), D("2026-03-09"))),
])
def test_units_are_counted_inside_the_dates_in_date_order(unit, units, counted, used, remaining, over, over_dates):
    terms = Terms("H0015", unit, units, D("2026-03-04"), D("2026-03-10"))
    found = rules.usage(terms, ATTENDED)
    assert (found.counted, found.used, found.remaining, found.over, found.over_dates) == (
        counted, used, remaining, over, over_dates)


def test_units_on_a_date_count_only_the_attendance_up_to_it():
    terms = Terms("H0015", "day", 5, D("2026-03-01"), D("2026-03-31"))
    assert rules.usage(terms, ATTENDED, on=D("2026-03-08")).used == 2  # 03-02 and 03-04
    assert rules.usage(terms, ATTENDED, on=D("2026-03-09")).used == 3
    assert rules.usage(terms, ATTENDED, on=D("2026-03-03")).used == 1


def test_the_full_day_minutes_are_the_programs():
    terms = Terms("H0015", "day", 9, D("2026-03-01"), D("2026-03-31"))
    assert rules.usage(terms, ATTENDED, full_day_minutes=179).used == 5
    assert rules.usage(terms, ATTENDED, full_day_minutes=240).used == 1


A_MONTH = Terms("H0015", "day", 10, D("2026-03-02"), D("2026-03-31"))


@pytest.mark.parametrize("terms, counted, on, status", [
    (A_MONTH, 11, D("2026-03-10"), "over"),  # over comes first, even after the end
    (A_MONTH, 11, D("2026-05-01"), "over"),
    (A_MONTH, 10, D("2026-03-10"), "exhausted"),
    (A_MONTH, 10, D("2026-05-01"), "exhausted"),  # exhausted before expired
    (A_MONTH, 3, D("2026-04-01"), "expired"),
    (A_MONTH, 0, D("2026-03-01"), "future"),
    (A_MONTH, 3, D("2026-03-24"), "expiring"),  # ends in 7 days
    (A_MONTH, 3, D("2026-03-31"), "expiring"),  # its last day
    (A_MONTH, 3, D("2026-03-23"), "active"),  # 8 days left, 7 units
    (A_MONTH, 8, D("2026-03-10"), "expiring"),  # 2 units left
    (A_MONTH, 7, D("2026-03-10"), "active"),  # 3 units left
])
def test_status_on_a_date_is_the_first_that_applies(terms, counted, on, status):
    used = rules.Usage(counted, min(counted, terms.units), terms.units - min(counted, terms.units),
                       max(0, counted - terms.units), ())
    assert rules.status_on(terms, used, on) == status


# A plan from Mon 2026-03-02 stepping down: plan weeks 1-2 three days a week, weeks 3-8 two; groups meet Mon Wed Fri.
STEP_DOWN = (PlanTerms(D("2026-03-02"), D("2026-04-24"), 540, 3, "2.1", (Phase(1, 2, 540, 3), Phase(3, 8, 360, 2))),)
MWF = {0: 1, 2: 1, 4: 1}
WEEK_ONE = {D("2026-03-02"): DayAttended(180, 1), D("2026-03-04"): DayAttended(180, 1),
            D("2026-03-06"): DayAttended(180, 1)}


def _forecast(terms, days, on, plans=STEP_DOWN, sessions=MWF):
    used = rules.usage(terms, days, on)
    return rules.forecast(terms, used, on, plans, sessions.keys(), days, sessions_by_weekday=sessions)


def test_the_forecast_follows_a_plan_that_steps_down_mid_authorization():
    # On Sun 03-08, 3 used, 7 left: week 2 at 3 days (03-09, 11, 13), then 2 a week (03-16, 18, 23, 25).
    found = _forecast(Terms("H0015", "day", 10, D("2026-03-02"), D("2026-04-30")), WEEK_ONE, D("2026-03-08"))
    assert found.runs_out == D("2026-03-25")
    assert found.sentence == "Runs out Mar 25, 36 days before it ends."


def test_the_forecast_says_how_many_units_will_be_left_unused():
    # Ends Fri 03-20: 03-09, 11, 13, 16, 18 at the pace: 5 of the 7 left.
    found = _forecast(Terms("H0015", "day", 10, D("2026-03-02"), D("2026-03-20")), WEEK_ONE, D("2026-03-08"))
    assert (found.runs_out, found.unused, found.sentence) == (None, 2, "2 units will be left unused.")
    one = _forecast(Terms("H0015", "day", 9, D("2026-03-02"), D("2026-03-20")), WEEK_ONE, D("2026-03-08"))
    assert one.sentence == "1 unit will be left unused."


def test_the_forecast_counts_the_days_already_attended_in_the_week_it_starts():
    # On Wed 03-04 after two full days of week 1 (3 a week): one more that week (Fri 03-06), then 03-09.
    days = {D("2026-03-02"): DayAttended(180, 1), D("2026-03-04"): DayAttended(200, 1)}
    found = _forecast(Terms("H0015", "day", 4, D("2026-03-02"), D("2026-03-09")), days, D("2026-03-04"))
    assert found.runs_out == D("2026-03-09")
    assert found.sentence == "Runs out Mar 9, the day it ends."


def test_sessions_run_out_at_the_clients_scheduled_sessions():
    # Groups on Mon and Wed, and a second group on Wed: 3 sessions a week from Mon 03-09.
    sessions = {0: 1, 2: 2}
    found = _forecast(Terms("90853", "session", 5, D("2026-03-09"), D("2026-03-31")), {}, D("2026-03-08"),
                      sessions=sessions)
    # 03-09 (1), 03-11 (2 and 3), 03-16 (4), 03-18 (5): the fifth unit on 03-18, 13 days before 03-31.
    assert found.runs_out == D("2026-03-18")
    assert found.sentence == "Runs out Mar 18, 13 days before it ends."


def test_nothing_left_says_so_and_forecasts_no_date():
    over = _forecast(Terms("H0015", "day", 2, D("2026-03-02"), D("2026-03-31")), WEEK_ONE, D("2026-03-08"))
    assert (over.runs_out, over.sentence) == (None, "1 unit over what is authorized.")
    gone = _forecast(Terms("H0015", "day", 3, D("2026-03-02"), D("2026-03-31")), WEEK_ONE, D("2026-03-08"))
    assert (gone.runs_out, gone.sentence) == (None, "No units left.")


def test_no_plan_means_no_pace():
    found = _forecast(Terms("H0015", "day", 5, D("2026-03-09"), D("2026-03-31")), {}, D("2026-03-08"), plans=())
    assert (found.runs_out, found.sentence) == (None, "5 units will be left unused.")


def test_two_authorizations_of_one_service_overlap_when_they_share_a_date():
    a = Terms("H0015", "day", 5, D("2026-03-01"), D("2026-03-31"))
    assert rules.overlaps(a, Terms("H0015", "day", 5, D("2026-03-31"), D("2026-04-30")))
    assert not rules.overlaps(a, Terms("H0015", "day", 5, D("2026-04-01"), D("2026-04-30")))
    assert not rules.overlaps(a, Terms("90853", "session", 5, D("2026-03-01"), D("2026-03-31")))


def test_days_needing_an_authorization_but_under_none():
    covering = [Terms("H0015", "day", 5, D("2026-03-05"), D("2026-03-10"))]
    assert rules.unauthorized_dates("day", "H0015", ATTENDED, covering) == [D("2026-03-02"), D("2026-03-04"),
                                                                            D("2026-03-11")]
    assert rules.unauthorized_dates("session", "90853", ATTENDED, covering) == [
        D("2026-03-02"), D("2026-03-04"), D("2026-03-06"), D("2026-03-09"), D("2026-03-11")]


def test_the_program_setting_of_services_needing_an_authorization():
    assert rules.services_needing("H0015") == {"H0015": "day"}
    assert rules.services_needing("h0015 90853 X1:session") == {"H0015": "day", "90853": "session", "X1": "session"}
    assert rules.services_needing("") == {}
    with pytest.raises(entry.EntryError):
        rules.services_needing("H0015:week")


@pytest.mark.parametrize("rule, typed, reason", [
    (entry.unit, "week", "unit 'week' must be day or session"),
    (entry.units, "0", "units '0' must be a whole number from 1 to 9999"),
    (entry.units, "-3", "units '-3' must be a whole number from 1 to 9999"),
    (entry.units, "", "units is empty"),
    (entry.modality, "video", "modality 'video' must be in_person, telehealth or empty"),
    (entry.service_code, "H 0015", "service 'H 0015' is letters and digits like H0015 or 90853"),
])
def test_typed_values_are_refused_in_words_a_file_line_can_carry(rule, typed, reason):
    with pytest.raises(entry.EntryError) as refused:
        rule(typed)
    assert refused.value.in_file == reason


def test_typed_values_read():
    assert (entry.unit(" Session "), entry.units("20"), entry.modality(""), entry.modality("TELEHEALTH"),
            entry.service_code("h0015")) == ("session", 20, "in_person", "telehealth", "H0015")

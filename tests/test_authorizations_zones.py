"""Authorizations in a program far from New York (Pacific/Auckland, UTC+13 in March): a unit belongs to
the local date of its session even when that is another date in UTC, and the night DST ends (Sunday
2026-04-05, 03:00 back to 02:00) a 01:00-04:00 session lasts 240 real minutes."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

AUCKLAND = ZoneInfo("Pacific/Auckland")


@pytest.fixture
def app_config(app_config):
    return {**app_config, "TIMEZONE": "Pacific/Auckland"}


def _load(runner, tmp_path, name, content):
    path = tmp_path / f"{name}.csv"
    path.write_text(content)
    result = runner.invoke(args=["import", name, str(path)])
    assert result.exit_code == 0, result.output


def test_units_follow_the_sessions_local_dates(runner, tmp_path, freeze):
    freeze(datetime(2026, 4, 20, 12, tzinfo=AUCKLAND))
    _load(runner, tmp_path, "groups", "code,name,track,room,weekdays,start,end\n"
                                      "AM,Morning,relapse-prevention,B,Mon Tue Wed Thu Fri,09:00,12:00\n"
                                      "NIGHT,Night,twelve-step,A,Sun,01:00,04:00\n")
    _load(runner, tmp_path, "clients", "client_id,first_name,last_name,level_of_care,plan_start,plan_end,"
                                       "weekly_hours,days_per_week,groups\n"
                                       "K1,Aroha,Ngata,2.1,2026-03-02,,9,3,AM NIGHT\n")
    # Tue 03-03 09:00-12:00 in Auckland is Mon 03-02 20:00-23:00 UTC. Sun 04-05 01:00-03:59 (NZDT then NZST):
    # 01:00 to 03:00 NZDT is 2 hours, then 02:00 to 03:59 NZST is 1 hour 59: 239 minutes, a full day.
    _load(runner, tmp_path, "attendance", "client_id,group,date,check_in,check_out\n"
                                          "K1,AM,2026-03-03,09:00,12:00\n"
                                          "K1,NIGHT,2026-04-05,01:00,03:59\n")
    _load(runner, tmp_path, "authorizations", "client_id,payer,number,service,unit,units,start,end\n"
                                              "K1,ACC,N-1,H0015,day,5,2026-03-03,2026-03-03\n"
                                              "K1,ACC,N-2,H0015,day,5,2026-04-05,2026-04-05\n"
                                              "K1,ACC,M-1,H0015,day,5,2026-03-02,2026-03-02\n")
    def used(on):  # number:units_used of each row
        rows = runner.invoke(args=["export", "utilization", "--on", on]).output.splitlines()[1:]
        return [row.split(",")[3] + ":" + row.split(",")[9] for row in rows]

    assert used("2026-03-20") == [
        "M-1:0",  # Monday 03-02: nothing, though the visit was on 03-02 in UTC
        "N-1:1",  # Tuesday 03-03 local: the full day
    ]
    assert used("2026-04-05") == ["N-2:1"]  # the DST night: 239 real minutes, though 179 on the wall clock

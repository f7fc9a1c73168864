"""A small program loaded through `iop import`, whose exports tests/test_exports.py works out by
hand (tests/test_fhir.py exports the same program as FHIR).

The program (America/New_York; DST began Sunday 2026-03-08; the clock is frozen on 2026-04-01, so
every week below is over):
- RP-AM meets Mon Wed Fri 09:00-12:00 (180 min), TS-PM Mon-Thu 13:00-14:30 (90), WKND Sun 10:00-11:00.
- C01 Ana Lopez: plan from 2026-02-02, 9 h / 3 days.   C02 Ben Okoro: plan from Wednesday 2026-03-04,
  9 h / 3 days (its first week is prorated: 3 of 5 weekdays of 540 = 324, rounded up to 330).
- C03 Cara Diaz: no plan, attended once.   C04 Dev Shah: plan 2026-03-02..2026-04-24, phases 9 h in
  week 1 and 6 h in weeks 2-8.
"""
from __future__ import annotations

GROUPS = """code,name,track,room,weekdays,start,end
RP-AM,Morning Relapse Prevention,relapse-prevention,Room B,Mon Wed Fri,09:00,12:00
TS-PM,Afternoon Twelve-Step,twelve-step,Room A,Mon Tue Wed Thu,13:00,14:30
WKND,Sunday Check-in,twelve-step,Room A,Sun,10:00,11:00
"""
CLIENTS = """client_id,first_name,last_name,level_of_care,plan_start,plan_end,weekly_hours,days_per_week,groups,phases
C01,Ana,Lopez,2.1,2026-02-02,,9,3,RP-AM TS-PM,
C02,Ben,Okoro,2.1,2026-03-04,,9,3,RP-AM,
C03,Cara,Diaz,,,,,,RP-AM,
C04,Dev,Shah,2.1,2026-03-02,2026-04-24,9,3,TS-PM WKND,1-1:9/3 2-8:6/2
"""
ATTENDANCE = """client_id,group,date,check_in,check_out,status
C01,RP-AM,2026-03-02,08:40,12:00,
C01,RP-AM,2026-03-04,09:25,12:00,
C02,RP-AM,2026-03-04,09:00,12:00,
C03,RP-AM,2026-03-04,09:00,10:00,
C01,RP-AM,2026-03-06,09:00,11:15,
C02,RP-AM,2026-03-06,09:00,12:00,
C04,WKND,2026-03-08,10:00,11:00,
C01,RP-AM,2026-03-09,09:00,,
C02,RP-AM,2026-03-09,,,excused
C01,TS-PM,2026-03-09,13:00,14:30,
C04,TS-PM,2026-03-10,12:30,13:10,
C04,TS-PM,2026-03-12,14:40,14:50,
"""


def load(runner, folder) -> None:
    """Import the groups, clients and attendance above with `iop import`, as a coordinator would."""
    for kind, content in (("groups", GROUPS), ("clients", CLIENTS), ("attendance", ATTENDANCE)):
        path = folder / f"{kind}.csv"
        path.write_text(content)
        result = runner.invoke(args=["import", kind, str(path)])
        assert result.exit_code == 0, result.output

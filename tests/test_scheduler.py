"""The scheduled jobs: idempotent, driven by the database state, catching up what was missed."""
from __future__ import annotations

import time as wall
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from iop import clock
from iop.ops import scheduler
from iop.store import db
from iop.store.models import Attendance, AuditEvent, GroupSession, SchedulerHeartbeat, WeekFlag

NY = ZoneInfo("America/New_York")
MON = date(2026, 3, 2)
TUE, WED = MON + timedelta(days=1), MON + timedelta(days=2)


def at(day, hhmm):
    hour, minute = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


def sessions_by_date(app):
    with app.app_context():
        return dict(db.session().execute(
            select(GroupSession.date, func.count()).group_by(GroupSession.date)).all())


def run(app, job, now, **kwargs):
    with clock.frozen(now), app.app_context():
        return job(**kwargs)


def test_sessions_for_today_and_tomorrow_are_made_once(app, world):
    world.group("RP-AM", weekdays="Mon Wed Fri")
    world.group("TS-PM", name="Evening", track="twelve-step", weekdays="Tue Thu", start=time(18), end=time(21))
    run(app, scheduler.make_sessions, at(MON, "00:05"))
    run(app, scheduler.make_sessions, at(MON, "00:20"))
    assert sessions_by_date(app) == {MON: 1, TUE: 1}
    run(app, scheduler.make_sessions, at(TUE, "00:05"))  # Tuesday adds Wednesday only
    assert sessions_by_date(app) == {MON: 1, TUE: 1, WED: 1}


def test_sessions_open_thirty_minutes_before_the_start(app, world):
    world.group("RP-AM")
    group_session = world.session("RP-AM", MON)
    assert run(app, scheduler.open_sessions, at(MON, "08:29")) == []
    assert run(app, scheduler.open_sessions, at(MON, "08:30")) == [group_session.id]
    assert run(app, scheduler.open_sessions, at(MON, "08:31")) == []  # already open
    with app.app_context():
        assert db.session().get(GroupSession, group_session.id).status == "open"


def _two_in_the_room(app, world):
    group = world.group("RP-AM")
    group_session = world.session("RP-AM", MON, status="open")
    left = world.client("C1", groups=[group], plan_start=MON)
    stayed = world.client("C2", first="Ana", groups=[group], plan_start=MON)
    world.attendance(left, group_session, at(MON, "09:00"), at(MON, "11:00"), source="kiosk")
    world.attendance(stayed, group_session, at(MON, "08:50"), None, source="kiosk")
    return group_session, left, stayed


def _records(app, session_id):
    with app.app_context():
        return {r.client_key: (r.check_out_at, r.check_out_source) for r in db.session().scalars(
            select(Attendance).where(Attendance.session_id == session_id))}


def _count(app, model, *where):
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


def test_close_at_the_end_checks_out_who_is_still_in_once(app, world):
    group_session, left, stayed = _two_in_the_room(app, world)
    assert run(app, scheduler.close_sessions, at(MON, "11:59")) == []
    assert run(app, scheduler.close_sessions, at(MON, "12:01")) == [group_session.id]
    first = _records(app, group_session.id)
    assert first[stayed.id] == (at(MON, "12:00").astimezone(timezone.utc), "close")
    assert first[left.id] == (at(MON, "11:00").astimezone(timezone.utc), "kiosk")
    # A second run (or a restart that runs it again) changes nothing and logs nothing new.
    assert run(app, scheduler.close_sessions, at(MON, "12:02")) == []
    assert _records(app, group_session.id) == first
    assert _count(app, AuditEvent, AuditEvent.action == "session.close") == 1
    with app.app_context():
        closed = db.session().get(GroupSession, group_session.id)
        assert (closed.status, closed.closed_at) == ("closed", at(MON, "12:00").astimezone(timezone.utc))


def test_catch_up_twice_in_a_row_duplicates_nothing(app, world):
    group_session, _left, stayed = _two_in_the_room(app, world)
    run(app, scheduler.catch_up, at(MON, "12:30"))
    sessions, records, audits = sessions_by_date(app), _records(app, group_session.id), _count(app, AuditEvent)
    run(app, scheduler.catch_up, at(MON, "12:31"))
    assert sessions_by_date(app) == sessions == {MON: 1}  # no Tuesday session for a Mon/Wed/Fri group
    assert _records(app, group_session.id) == records
    assert _count(app, AuditEvent) == audits
    assert _count(app, Attendance) == 2


def test_a_missed_run_catches_up_from_the_state(app, world):
    """The scheduler was down from Monday 11:00 until Wednesday 08:45."""
    group_session, _left, stayed = _two_in_the_room(app, world)
    run(app, scheduler.catch_up, at(WED, "08:45"))
    records = _records(app, group_session.id)
    # Monday's session closed as if on time: checked out at Monday's end, not when the job ran.
    assert records[stayed.id] == (at(MON, "12:00").astimezone(timezone.utc), "close")
    with app.app_context():
        by_date = {m.date: m.status for m in db.session().scalars(select(GroupSession))}
    # Wednesday's session was made and is open (08:45 is within 30 minutes of 09:00); Thursday has none.
    assert by_date == {MON: "closed", WED: "open"}


def _at_risk_world(world):
    group = world.group("RP-AM")
    monday = world.session("RP-AM", MON, status="closed")
    behind = world.client("C-BEHIND", groups=[group], plan_start=date(2026, 2, 2))
    fine = world.client("C-FINE", groups=[group], plan_start=date(2026, 2, 2))
    wednesday = world.session("RP-AM", WED, status="closed")
    world.attendance(fine, monday, at(MON, "09:00"), at(MON, "12:00"))
    world.attendance(fine, wednesday, at(WED, "09:00"), at(WED, "12:00"))
    # At Wednesday noon C-FINE has 360 and Friday's 180 to come: on track for 540.
    # C-BEHIND missed Monday and Wednesday: 0 + 180 (Friday) < 540.
    return behind, fine


def test_the_noon_check_flags_at_risk_weeks_once(app, world):
    behind, fine = _at_risk_world(world)
    assert run(app, scheduler.flag_at_risk, at(WED, "12:00")) == [behind.id]
    assert run(app, scheduler.flag_at_risk, at(WED, "12:00")) == []
    assert run(app, scheduler.flag_at_risk, at(WED, "12:15")) == []  # this noon is done
    with app.app_context():
        flags = db.session().execute(select(WeekFlag.client_key, WeekFlag.week_start, WeekFlag.status)).all()
    assert flags == [(behind.id, MON, "at_risk")]


def test_the_noon_check_is_not_due_before_noon(app, world):
    _at_risk_world(world)
    assert run(app, scheduler.flag_at_risk, at(MON, "11:59")) == []  # no weekday noon yet this week
    assert _count(app, WeekFlag) == 0


def test_a_missed_noon_check_runs_later_that_week(app, world):
    behind, _fine = _at_risk_world(world)
    # Tuesday's noon check never ran (the scheduler was down); Wednesday 09:30 catches it up.
    assert run(app, scheduler.flag_at_risk, at(WED, "09:30")) == [behind.id]
    # Next Monday morning the last weekday noon was in the week before: nothing to flag.
    assert run(app, scheduler.flag_at_risk, at(MON + timedelta(days=7), "09:00")) == []


def test_flags_show_on_the_board(app, world, auth, client):
    behind, _fine = _at_risk_world(world)
    run(app, scheduler.flag_at_risk, at(WED, "12:00"))
    auth.login("cora", role="coordinator")
    with clock.frozen(at(WED, "13:00")):
        page = client.get("/coordinator/?week=2026-03-02").get_data(as_text=True)
    row = page[page.index("C-BEHIND"):]
    row = row[:row.index("</tr>")]
    assert "flagged" in row and "At risk" in row


def test_health_follows_the_heartbeat(app):
    app.config["SCHEDULER"] = False
    assert scheduler.health(app) == "off"
    run(app, scheduler.heartbeat, at(MON, "10:00"))
    with clock.frozen(at(MON, "10:01")):
        assert scheduler.health(app) == "ok"
    with clock.frozen(at(MON, "10:05")):
        assert scheduler.health(app) == "stale"


def test_healthz_reports_a_stalled_scheduler_in_another_process(app, client):
    run(app, scheduler.heartbeat, at(MON, "10:00"))
    with clock.frozen(at(MON, "10:01")):
        assert client.get("/healthz").get_json()["scheduler"] == "ok"
    with clock.frozen(at(MON, "11:00")):
        body = client.get("/healthz").get_json()
    assert (body["scheduler"], body["status"]) == ("stale", "degraded")


def test_the_real_scheduler_catches_up_at_start_and_beats(app, world):
    world.group("RP-AM", weekdays="Mon Tue Wed Thu Fri Sat Sun")
    app.config["SCHEDULER"] = True
    running = scheduler.start(app)
    try:
        names = {job.id for job in running.get_jobs()}
        assert {"heartbeat", "make_sessions", "open_sessions", "close_sessions", "flag_at_risk"} <= names
        deadline = wall.monotonic() + 10
        while wall.monotonic() < deadline and _count(app, SchedulerHeartbeat,
                                                     SchedulerHeartbeat.name == scheduler.HEARTBEAT) == 0:
            wall.sleep(0.05)
        assert scheduler.health(app) == "ok"
        assert len(sessions_by_date(app)) == 2  # today and tomorrow, made at start
    finally:
        running.shutdown(wait=True)
    assert scheduler.health(app) == "not running"

"""The kiosk's fast paths give the same answers as the general ones they replace (issue #7).

- hours_queries.client_weeks (one client's weeks: the client page, from the named client's own rows)
  gives each week as hours_queries.week_figures (the board) does: on the hand-worked cases of
  test_hours_rules and on generated programs.
- The scan's greeting shows the week's figures of week_figures.
- attendance.session_open_for finds the open session in one query and makes a session only when the
  day has none and its window is open.
- roster.publish coalesces pushes per session, and the last push is the final roster.
- A kiosk's last_seen_at is written at most once a minute however often it scans.
"""
from __future__ import annotations

import random
import secrets
import time as wall
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from helpers.hand_worked_week import FRI, MON, NOW_AFTER, NOW_WED, SUN, WED, at, build_week
from helpers.web import AuthActions
from helpers.world import NY, local
from iop import clock, socketio
from iop.clinic import kiosks
from iop.live import roster
from iop.rules import hours
from iop.store import db, hours_queries
from iop.store.models import Attendance, Client, Group, GroupSession, KioskDevice, Plan, PlanPhase

UTC = timezone.utc


def client_week(client_key: int, monday: date, now: datetime) -> hours.WeekFigures:
    """The week as the client page shows it (its history's week of `monday`)."""
    (figures,) = hours_queries.client_weeks(client_key, monday, monday, now, NY)
    return figures


def assert_client_week_is_week_figures(app, monday: date, now: datetime, client_keys) -> int:
    """Every named client's week on the client page equals week_figures'; returns how many were compared."""
    with app.app_context():
        general = hours_queries.week_figures(monday, now, NY, list(client_keys))
        for client_key in client_keys:
            assert client_week(client_key, monday, now) == general[client_key], (client_key, now)
        everyone = hours_queries.week_figures(monday, now, NY)  # the board's call: no names given
        for client_key, figures in everyone.items():
            assert client_week(client_key, monday, now) == figures, (client_key, now)
    return len(client_keys)


# ---- the client page's week == week_figures: the hand-worked cases -------------------------------------------

MOMENTS = [
    at(MON, "00:00"), at(MON, "08:59"), at(MON, "10:30"), at(MON, "19:00"), NOW_WED, at(WED, "12:00"),
    at(FRI, "11:59"), at(SUN, "22:30"), at(SUN, "23:45"), NOW_AFTER,
    datetime(2026, 3, 9, 3, 59, tzinfo=UTC), datetime(2026, 3, 9, 4, 0, tzinfo=UTC),  # the week's DST end
]


@pytest.mark.parametrize("now", MOMENTS, ids=[m.isoformat() for m in MOMENTS])
def test_client_week_equals_week_figures_on_the_worked_cases(app, world, now):
    people = build_week(world, now)
    assert assert_client_week_is_week_figures(app, MON, now, [c.id for c in people.values()]) == len(people)


def test_client_week_follows_cancelled_and_closed_sessions(app, world):
    people = build_week(world, NOW_WED)
    with app.app_context():
        with db.transaction() as s:
            s.scalar(select(GroupSession).where(GroupSession.date == FRI)).status = "cancelled"
            wednesday = s.scalar(select(GroupSession).where(GroupSession.date == WED))
            wednesday.status, wednesday.closed_at = "closed", NOW_WED.astimezone(UTC)
    assert_client_week_is_week_figures(app, MON, NOW_WED, [c.id for c in people.values()])
    with app.app_context():
        assert client_week(people["C-FULL"].id, MON, NOW_WED).status == "at_risk"


def test_client_week_for_a_client_with_nothing(app, world):
    nobody = world.client("C-NONE", groups=[])
    with app.app_context():
        assert client_week(nobody.id, MON, NOW_WED) == hours_queries.week_figures(MON, NOW_WED, NY, [nobody.id])[nobody.id]
        assert client_week(nobody.id, MON, NOW_WED).status == "no_plan"


# ---- the client page's week == week_figures: generated programs ----------------------------------------------

def _generated_program(app, seed: int) -> tuple[list[int], date]:
    """Groups on random days and times (some late at night, some inactive), clients in zero to three
    of them with zero to two plans (some with phases, some starting or ending mid-week), and a week
    of attendance: open, closed, late, early, excused, voided, and out of the window."""
    rng = random.Random(seed)
    monday = MON + timedelta(days=7 * rng.randint(-2, 40))  # DST weeks included
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    pks = []
    with app.app_context():
        with db.transaction() as s:
            groups = []
            for number in range(rng.randint(1, 5)):
                start_minute = rng.choice([8 * 60, 9 * 60, 13 * 60, 18 * 60, 22 * 60 + 30, 0, 30])
                length = rng.choice([60, 90, 180])
                end_minute = min(start_minute + length, 23 * 60 + 59)
                group = Group(code=f"G{seed}-{number}", name=f"Group {number}", track="relapse-prevention",
                              room="Room", weekdays=" ".join(rng.sample(names, rng.randint(1, 5))),
                              start=time(start_minute // 60, start_minute % 60),
                              end=time(end_minute // 60, end_minute % 60), active=rng.random() > 0.15)
                s.add(group)
                groups.append(group)
            s.flush()
            sessions = []
            for group in groups:
                for offset in range(-1, 8):
                    day = monday + timedelta(days=offset)
                    if rng.random() < 0.6:
                        starts = datetime.combine(day, group.start, tzinfo=NY).astimezone(UTC)
                        ends = datetime.combine(day, group.end, tzinfo=NY).astimezone(UTC)
                        status = rng.choice(["scheduled", "scheduled", "open", "closed", "cancelled"])
                        group_session = GroupSession(group_id=group.id, date=day, starts_at=starts, ends_at=ends,
                                               status=status, closed_at=ends if status == "closed" else None)
                        s.add(group_session)
                        sessions.append(group_session)
            s.flush()
            for number in range(rng.randint(2, 8)):
                person = Client(client_id=f"R{seed}-{number}", first_name="Pat", last_name="Case")
                person.groups = rng.sample(groups, rng.randint(0, min(3, len(groups))))
                # Distinct starts: with two plans starting the same day, which one's level of care
                # labels the week is not defined (plan_in_effect keeps the first of the tie it reads).
                for start_offset in rng.sample(range(-40, 7), rng.choice([0, 1, 1, 1, 2])):
                    start = monday + timedelta(days=start_offset)
                    end = rng.choice([None, None, start + timedelta(days=rng.randint(0, 60))])
                    plan = Plan(level_of_care=rng.choice(["1", "2.1", "2.5"]), start_date=start, end_date=end,
                                weekly_minutes=rng.choice([180, 360, 540, 600]), days_per_week=3)
                    if rng.random() < 0.3:
                        plan.phases = [PlanPhase(first_week=1, last_week=3, weekly_minutes=540, days_per_week=3),
                                       PlanPhase(first_week=4, last_week=50, weekly_minutes=270, days_per_week=2)]
                    person.plans.append(plan)
                s.add(person)
                s.flush()
                pks.append(person.id)
                mine = [m for m in sessions if m.group_id in {g.id for g in person.groups}] or sessions
                for group_session in rng.sample(mine, min(len(mine), rng.randint(0, 5))):
                    shift = timedelta(minutes=rng.randint(-40, 200), seconds=rng.randint(0, 59),
                                      microseconds=rng.randint(0, 999999))
                    check_in = group_session.starts_at + shift
                    check_out = rng.choice([None, check_in + timedelta(minutes=rng.randint(0, 240), seconds=17)])
                    excused = rng.random() < 0.1
                    s.add(Attendance(session_id=group_session.id, client_key=person.id,
                                     status="excused" if excused else "present", source="import",
                                     check_in_at=None if excused else check_in,
                                     check_out_at=None if excused else check_out,
                                     voided_at=clock.now() if rng.random() < 0.1 else None))
    return pks, monday


@pytest.mark.parametrize("seed", range(8))
def test_client_week_equals_week_figures_on_generated_programs(app, seed):
    pks, monday = _generated_program(app, seed)
    rng = random.Random(1000 + seed)
    moments = [datetime.combine(monday + timedelta(days=rng.randint(-1, 8)),
                                time(rng.randint(0, 23), rng.randint(0, 59)), tzinfo=NY) for _ in range(5)]
    for now in moments + [datetime.combine(monday + timedelta(days=7), time(0), tzinfo=NY)]:
        assert_client_week_is_week_figures(app, monday, now, pks)


# ---- the scan's greeting ---------------------------------------------------------------------------

def test_the_greeting_shows_week_figures_after_check_in_and_out(kiosk_scene, app, world):
    earlier = world.session(kiosk_scene.group, kiosk_scene.day - timedelta(days=3))  # Friday: last week
    world.attendance(kiosk_scene.maria, earlier, local(earlier.date, 9), local(earlier.date, 12))
    code = kiosk_scene.card(kiosk_scene.maria)
    answers = [kiosk_scene.scan(code).get_json()]
    clock.advance(timedelta(minutes=50))
    answers.append(kiosk_scene.scan(code).get_json())  # "Leaving now?": the week so far
    answers.append(kiosk_scene.scan(code, action="check_out").get_json())
    assert [a["result"] for a in answers] == ["checked_in", "confirm_check_out", "checked_out"]
    assert answers[1]["week"] == answers[2]["week"]
    with app.app_context():
        figures = hours_queries.week_figures(hours.week_start(kiosk_scene.day), clock.now(), NY,
                                     [kiosk_scene.maria.id])[kiosk_scene.maria.id]
    assert answers[-1]["week"] == {"attended_minutes": figures.attended_minutes,
                                   "target_minutes": figures.target_minutes} == {"attended_minutes": 50,
                                                                                 "target_minutes": 540}
    assert answers[-1]["today"] == {"attended_minutes": 50}


def test_the_scan_path_runs_few_statements(kiosk_scene, app):
    """A check-in, in one transaction: the client with their sessions and visits (and whether the
    scan_id is known), the write, the week's minutes and plans, the kiosk still enrolled, the scan's
    row: nothing per group or per day."""
    kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))  # the day's session exists from here on
    clock.advance(timedelta(seconds=30))
    other = _second_client(kiosk_scene)
    statements = []
    engine = db.database(app).engine

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert kiosk_scene.scan(kiosk_scene.card(other)).get_json()["result"] == "checked_in"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements.count("SELECT") <= 4 and statements.count("INSERT") == 2, statements
    assert "UPDATE" not in statements  # last_seen_at was written a minute ago at most
    assert len(statements) <= 7, statements


def _second_client(scene):
    return scene.world.client("C2", "James", "Whitfield", groups=[scene.group],
                              plan_start=scene.day - timedelta(days=14))


# ---- finding the open session ----------------------------------------------------------------------

def test_a_scan_makes_only_the_session_it_checks_into(kiosk_scene, app, world):
    world.group(code="PM", name="Afternoon", weekdays="Mon Tue", start=time(13), end=time(15))
    world.group(code="TUE", name="Tuesday", weekdays="Tue", start=time(9), end=time(12))
    with app.app_context():
        with db.transaction() as s:
            maria = s.get(Client, kiosk_scene.maria.id)
            maria.groups += list(s.scalars(select(Group).where(Group.code.in_(["PM", "TUE"]))))
    body = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()
    assert body["result"] == "checked_in" and body["session"]["group"] == "Morning Relapse Prevention"
    with app.app_context():
        made = db.session().execute(select(Group.code, GroupSession.date).join(Group)).all()
    assert made == [("RP-AM", kiosk_scene.day)]  # not the afternoon's, not tomorrow's


def test_a_session_just_after_midnight_opens_the_evening_before(kiosk_scene, app, world, freeze):
    world.group(code="NIGHT", name="Night owls", weekdays="Tue", start=time(0, 15), end=time(1, 30))
    with app.app_context():
        with db.transaction() as s:
            maria = s.get(Client, kiosk_scene.maria.id)
            maria.groups.append(s.scalar(select(Group).where(Group.code == "NIGHT")))
    freeze(local(kiosk_scene.day, 23, 50))  # Monday 23:50: Tuesday's 00:15 session is open
    body = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()
    assert body["result"] == "checked_in" and body["session"]["group"] == "Night owls"
    assert (body["session"]["starts"], body["session"]["ends"]) == ("00:15", "01:30")


def test_an_inactive_groups_session_takes_no_scans(kiosk_scene, app, world):
    world.session(kiosk_scene.group, kiosk_scene.day, status="open")
    with app.app_context():
        with db.transaction() as s:
            s.get(Group, kiosk_scene.group.id).active = False
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "no_session_now"


def test_a_scan_uses_the_existing_session_with_its_own_times(kiosk_scene, app, world):
    """A dated session keeps its window even if the group's schedule changed since it was made."""
    group_session = world.session(kiosk_scene.group, kiosk_scene.day)
    with app.app_context():
        with db.transaction() as s:
            s.get(Group, kiosk_scene.group.id).start = time(10)
    body = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()
    assert body["session"]["id"] == group_session.id and body["session"]["starts"] == "09:00"


def test_a_check_in_ends_a_visit_still_open_in_another_room(kiosk_scene, app, world, freeze):
    """Staff checked Maria in to the noon group by hand; she then scans for the morning group (it
    started first): the noon visit ends at the scan, as attendance.check_in does (one room at a time)."""
    world.group(code="NOON", name="Noon Group", room="Room A", weekdays="Mon", start=time(10, 30), end=time(13))
    with app.app_context():
        with db.transaction() as s:
            maria = s.get(Client, kiosk_scene.maria.id)
            maria.groups.append(s.scalar(select(Group).where(Group.code == "NOON")))
    noon = world.session("NOON", kiosk_scene.day)
    world.attendance(kiosk_scene.maria, noon, local(kiosk_scene.day, 10, 45), None, source="manual")
    freeze(local(kiosk_scene.day, 10, 50))
    body = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)).get_json()
    assert body["result"] == "checked_in" and body["session"]["group"] == "Morning Relapse Prevention"
    with app.app_context():
        ended = db.session().scalar(select(Attendance).where(Attendance.session_id == noon.id))
    assert ended.check_out_at == local(kiosk_scene.day, 10, 50).astimezone(UTC)
    assert ended.check_out_source == "kiosk"


# ---- the roster push, coalesced ---------------------------------------------------------------------

def _staff_socket(app, session_id):
    client = app.test_client()
    AuthActions(client, app).login("dana", role="facilitator")
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("join", {"session_id": session_id})
    sio.get_received()
    return sio


def _rosters(sio):
    return [e["args"][0] for e in sio.get_received() if e["name"] == "roster"]


def test_a_burst_of_scans_is_pushed_promptly_coalesced_and_final(app, live_group, world, monkeypatch):
    """Twelve people scan within moments: the facilitator's screen gets the roster at once, then
    at most one more per PUBLISH_EVERY, and the last one has everybody."""
    from iop.clinic import cards

    group = live_group(members=[(f"C{n}", f"Person{n}", "Case") for n in range(12)])
    sio = _staff_socket(app, group.session_id)
    _device, cookie = world.kiosk()
    kiosk = app.test_client()
    kiosk.set_cookie(kiosks.COOKIE_NAME, cookie, path="/kiosk")
    with app.app_context():
        codes = [cards.card_code(person.id, person.card_version) for person in group.clients]
    built = []
    real = roster.roster_payloads
    monkeypatch.setattr(roster, "roster_payloads", lambda group_sessions: built.extend(m.id for m in group_sessions) or real(group_sessions))
    began = wall.monotonic()
    for code in codes:
        answer = kiosk.post("/kiosk/api/scan", json={"code": code, "scan_id": secrets.token_hex(8)})
        assert answer.get_json()["result"] == "checked_in"
    burst = wall.monotonic() - began
    received = []
    while wall.monotonic() - began < burst + 5 and (not received or received[-1]["headcount"] < 12):
        wall.sleep(0.01)
        received += _rosters(sio)
    assert received[0]["headcount"] >= 1 and received[-1]["headcount"] == 12  # the last push has everybody
    assert built == [group.session_id] * len(received)  # one build per push, and only for this session
    # Twelve changes: one build at once, then at most one per PUBLISH_EVERY while they kept coming.
    assert len(built) <= 2 + int(burst / roster.PUBLISH_EVERY), (len(built), burst)
    sio.disconnect()


def test_no_roster_is_built_when_no_screen_follows_the_session(app, live_group, monkeypatch):
    group = live_group()
    monkeypatch.setattr(roster, "roster_payloads", lambda group_sessions: pytest.fail("built a roster for nobody"))
    with app.app_context():
        roster.publish(group.session_id)


def test_a_display_alone_still_gets_the_headcount(app, live_group):
    from iop.clinic import attendance
    from iop.live import facilitation

    group = live_group()
    with app.app_context():
        token = facilitation.display_token(group.session_id)
    display = socketio.test_client(app, auth={"display_token": token})
    display.emit("join", {"session_id": group.session_id})
    display.get_received()
    with app.app_context():
        with db.transaction() as s:
            attendance.check_in(s.get(GroupSession, group.session_id), s.get(Client, group.clients[0].id), clock.now())
        roster.publish(group.session_id)
    assert [(e["name"], e["args"][0]["count"]) for e in display.get_received()] == [("headcount", 1)]


# ---- the kiosk device ---------------------------------------------------------------------------------

def test_last_seen_is_written_at_most_once_a_minute(kiosk_scene, app):
    clock.advance(timedelta(minutes=20))
    code = kiosk_scene.card(kiosk_scene.maria)
    first_seen = clock.now()
    kiosk_scene.scan(code)
    for _ in range(3):
        clock.advance(timedelta(seconds=15))
        kiosk_scene.scan("not-a-card")
    with app.app_context():
        assert db.session().get(KioskDevice, kiosk_scene.device.id).last_seen_at == first_seen
    clock.advance(timedelta(seconds=20))  # 65 seconds after the first
    kiosk_scene.scan(code)
    with app.app_context():
        assert db.session().get(KioskDevice, kiosk_scene.device.id).last_seen_at == clock.now()


def test_a_kiosk_revoked_in_this_process_is_refused_at_once(kiosk_scene, app):
    assert kiosk_scene.http.get("/kiosk/api/status").status_code == 200  # the cookie is now remembered
    with app.app_context():
        with db.transaction() as s:
            kiosks.revoke(s.get(KioskDevice, kiosk_scene.device.id))
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_enrolled"


def test_a_kiosk_revoked_behind_the_cache_writes_nothing(kiosk_scene, app):
    """Revoked by another process (straight in the database): the scan's transaction still refuses it."""
    assert kiosk_scene.http.get("/kiosk/api/status").status_code == 200
    with app.app_context():
        with db.transaction() as s:
            s.get(KioskDevice, kiosk_scene.device.id).revoked_at = clock.now()
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria), scan_id=secrets.token_hex(8))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_enrolled"
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Attendance)) == 0


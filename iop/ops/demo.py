"""A realistic demo program: groups, clients with plans, staff, weeks of history, and a group running now.

Loading twice adds nothing twice: every row is found by its natural key before it is made.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from iop import clock
from iop.clinic import cards, kiosks, staff
from iop.clinic.sessions import ensure_session, meets_on
from iop.clock import local_date, local_to_utc, program_tz
from iop.rules import hours
from iop.store import db
from iop.store.models import Attendance, Client, Group, GroupSession, Plan, PlanPhase, StaffUser

STAFF = [
    # username, password, role, name, credentials
    ("facilitator", "demo-group-leader", "facilitator", "Jordan Ellis", "LCSW, CADC"),
    ("coordinator", "demo-plans-and-hours", "coordinator", "Priya Natarajan", "MSW"),
    ("admin", "demo-keys-to-the-clinic", "admin", "Chris Okafor", ""),
]

GROUPS = [
    # code, name, track, room, weekdays, start, end
    # Each group meets one day more than most plans need, so a missed day can be made up.
    ("RP-AM", "Morning Relapse Prevention", "relapse-prevention", "Room B", "Mon Tue Wed Thu", time(9), time(12)),
    ("TS-PM", "Evening Twelve-Step", "twelve-step", "Room A", "Mon Tue Thu", time(18), time(21)),
]
DEMO_GROUP = "DEMO"

# client_id, first, last, level, weeks since start, weekly hours, days, group, phases
CLIENTS = [
    ("C1001", "Maria", "Gonzalez", "2.1", 5, 9, 3, "RP-AM", None),
    ("C1002", "James", "Whitfield", "2.1", 4, 9, 3, "RP-AM", None),
    ("C1003", "Aisha", "Rahman", "2.1", 6, 9, 3, "RP-AM", [(1, 4, 9, 3), (5, 8, 6, 2)]),
    ("C1004", "Tom", "Brennan", "2.1", 3, 9, 3, "RP-AM", None),
    ("C1005", "Lucia", "Ferreira", "2.1", 2, 9, 3, "RP-AM", None),
    ("C1006", "Devon", "Price", "2.1", 5, 9, 3, "RP-AM", None),
    ("C1007", "Grace", "Kim", "2.1", 4, 6, 2, "TS-PM", None),
    ("C1008", "Marcus", "Hale", "2.1", 3, 6, 2, "TS-PM", None),
    ("C1009", "Nina", "Volkova", "2.1", 5, 6, 2, "TS-PM", None),
    ("C1010", "Sam", "Ortiz", "2.1", 1, 6, 2, "TS-PM", None),
    ("C1011", "Renee", "Dubois", "2.5", 2, 20, 5, "RP-AM TS-PM", None),
    ("C1012", "Eli", "Turner", "2.1", 6, 9, 3, "RP-AM", None),
]
# A realistic board has a few clients falling behind; the others mostly keep their hours.
STRUGGLING = {"C1008", "C1012"}
# Clients enrolled in the demo group too, so their cards work at the kiosk right now.
DEMO_MEMBERS = ["C1001", "C1002", "C1003", "C1004", "C1007", "C1011"]


@dataclass
class DemoSummary:
    staff: list[tuple[str, str, str]] = field(default_factory=list)
    enrollment_path: str = ""
    cards: list[tuple[str, str, str]] = field(default_factory=list)  # client_id, display name, code
    created: bool = False


def load() -> DemoSummary:
    """Load (or refresh) the demo program; returns what to print."""
    summary = DemoSummary()
    today = local_date(clock.now(), program_tz())
    with db.transaction():
        staff = _ensure_staff(summary)
        groups = _ensure_groups(staff["facilitator"])
        groups[DEMO_GROUP] = _ensure_demo_group(staff["facilitator"])
        clients, summary.created = _ensure_clients(groups, today)
    with db.transaction():
        if summary.created:
            _make_history(groups, clients, today)
        ensure_session(groups[DEMO_GROUP], today)
        for code in ("RP-AM", "TS-PM"):
            if meets_on(groups[code], today):
                ensure_session(groups[code], today)
        device = kiosks.issue_enrollment("Demo kiosk")
        summary.enrollment_path = kiosks.enrollment_path(device)
    for client_id in DEMO_MEMBERS[:4]:
        client = clients[client_id]
        summary.cards.append((client.client_id, client.display_name, cards.card_code(client.id, client.card_version)))
    return summary


def describe(summary: DemoSummary, base_url: str = "http://127.0.0.1:5000", tablets_reach: bool = True) -> str:
    lines = ["Demo program loaded." if summary.created else "Demo program already loaded; refreshed the running group.",
             "", "Staff logins (username / password):"]
    lines += [f"  {role:<12} {username} / {password}" for username, password, role in summary.staff]
    where = "on the tablet" if tablets_reach else "in this computer's browser (tablets need --host 0.0.0.0)"
    lines += ["", f"Kiosk enrollment link (open it once {where}; it works one time):",
              f"  {base_url}{summary.enrollment_path}", "",
              "Card codes of clients in the group running now (type or scan one at the kiosk):"]
    lines += [f"  {client_id} {name:<12} {code}" for client_id, name, code in summary.cards]
    return "\n".join(lines)


def _ensure_staff(summary: DemoSummary) -> dict[str, StaffUser]:
    db_session = db.session()
    found = {}
    for username, password, role, name, credentials in STAFF:
        user = db_session.scalar(select(StaffUser).where(StaffUser.username == username))
        if user is None:
            user = staff.add_user(username, password, role, name, credentials)
        found[role] = user
        summary.staff.append((username, password, role))
    db_session.flush()
    return found


def _ensure_groups(facilitator: StaffUser) -> dict[str, Group]:
    db_session = db.session()
    groups = {}
    for code, name, track, room, weekdays, start, end in GROUPS:
        group = db_session.scalar(select(Group).where(Group.code == code))
        if group is None:
            group = Group(code=code, name=name, track=track, room=room, weekdays=weekdays, start=start,
                          end=end, facilitator_id=facilitator.id)
            db_session.add(group)
        groups[code] = group
    db_session.flush()
    return groups


def _demo_window(now_local: datetime) -> tuple[time, time]:
    """A three-hour window that contains now and stays inside today (late at night it ends at 23:59:59,
    so the last minute of the day still has a session running)."""
    start_minute = max(0, (now_local.hour * 60 + now_local.minute) // 30 * 30 - 30)
    if start_minute + 180 < 24 * 60:
        return time(start_minute // 60, start_minute % 60), time((start_minute + 180) // 60, (start_minute + 180) % 60)
    return time(21, 0), time(23, 59, 59)


def _ensure_demo_group(facilitator: StaffUser) -> Group:
    db_session = db.session()
    start, end = _demo_window(clock.now().astimezone(program_tz()))
    group = db_session.scalar(select(Group).where(Group.code == DEMO_GROUP))
    if group is None:
        group = Group(code=DEMO_GROUP, name="Demo Group", track="relapse-prevention", room="Room C",
                      weekdays="Mon Tue Wed Thu Fri Sat Sun", start=start, end=end,
                      facilitator_id=facilitator.id)
        db_session.add(group)
        db_session.flush()
        return group
    today = local_date(clock.now(), program_tz())
    group_session = db_session.scalar(select(GroupSession).where(GroupSession.group_id == group.id,
                                                           GroupSession.date == today))
    if group_session is None or group_session.status == "scheduled":
        # Keep the demo group running now: move today's window before anyone checks in.
        group.start, group.end = start, end
        if group_session is not None:
            db_session.delete(group_session)
            db_session.flush()
    return group


def _ensure_clients(groups: dict[str, Group], today: date) -> tuple[dict[str, Client], bool]:
    db_session = db.session()
    clients: dict[str, Client] = {}
    created = False
    monday = today - timedelta(days=today.weekday())
    for client_id, first, last, level, weeks, weekly_hours, days, codes, phases in CLIENTS:
        client = db_session.scalar(select(Client).where(Client.client_id == client_id))
        if client is None:
            created = True
            client = Client(client_id=client_id, first_name=first, last_name=last)
            client.groups = [groups[code] for code in codes.split()]
            if client_id in DEMO_MEMBERS:
                client.groups.append(groups[DEMO_GROUP])
            start = monday - timedelta(weeks=weeks) + timedelta(days=2 if client_id == "C1005" else 0)
            plan = Plan(level_of_care=level, start_date=start, end_date=start + timedelta(weeks=12, days=-1),
                        weekly_minutes=weekly_hours * 60, days_per_week=days)
            for first_week, last_week, phase_hours, phase_days in phases or []:
                plan.phases.append(PlanPhase(first_week=first_week, last_week=last_week,
                                             weekly_minutes=phase_hours * 60, days_per_week=phase_days))
            client.plans.append(plan)
            db_session.add(client)
        clients[client_id] = client
    db_session.flush()
    return clients, created


def _make_history(groups: dict[str, Group], clients: dict[str, Client], today: date) -> None:
    """Past weeks as a program sees them: most clients come on their planned days, mostly on time,
    and make up a missed day on the group's spare day; a few fall behind. Only sessions that have
    ended are filled in, this week's too."""
    db_session = db.session()
    chance = random.Random(2026)
    now, tz = clock.now(), program_tz()
    history_groups = [groups[code] for code in ("RP-AM", "TS-PM")]
    monday = hours.week_start(min(plan.start_date for client in clients.values() for plan in client.plans))
    while monday <= today:
        offered = []
        for day in (monday + timedelta(days=offset) for offset in range(7)):
            for group in history_groups:
                if meets_on(group, day) and local_to_utc(day, group.end, tz) <= now:
                    group_session = ensure_session(group, day)
                    group_session.status, group_session.started_at, group_session.closed_at = "closed", group_session.starts_at, group_session.ends_at
                    offered.append(group_session)
        offered.sort(key=lambda group_session: group_session.starts_at)
        for client in clients.values():
            terms = hours.plan_terms(client.plans[0])
            target = hours.week_target([terms], monday)
            if not target:
                continue
            mine = [m for m in offered if m.group in client.groups and terms.covers(m.date)]
            _attend_week(db_session, chance, client, mine, target, client.client_id in STRUGGLING)
        monday += timedelta(days=7)


def _attend_week(db_session, chance: random.Random, client: Client, mine: list[GroupSession], target: int,
                 struggling: bool) -> None:
    """One client's week: the first sessions that reach the target are planned; a later one is a
    make-up when the week has fallen behind."""
    planned = {m.id for m in mine[:max(1, -(-target // 180))]}
    absent, excused, make_up = (0.18, 0.05, 0.3) if struggling else (0.03, 0.03, 0.9)
    arrivals = [-5, 0, 5, 12, 20, 35] if struggling else [-15, -10, -8, -6, -5, -3, -2, -1, 0, 0, 0, 6]
    departures = [0, 0, -30, -60] if struggling else [0, 0, 0, 0, 0, 0, 2, 5, 5, -25]
    earned = 0
    for index, group_session in enumerate(mine):
        if group_session.id not in planned:
            still_planned = sum(1 for later in mine[index + 1:] if later.id in planned)
            if earned + 180 * still_planned >= target or chance.random() > make_up:
                continue
        roll = chance.random()
        if roll < absent:
            continue
        if roll < absent + excused:
            db_session.add(Attendance(session_id=group_session.id, client_key=client.id, status="excused",
                                      source="manual", reason="Medical appointment"))
            continue
        check_in = group_session.starts_at + timedelta(minutes=chance.choice(arrivals))
        check_out = group_session.ends_at + timedelta(minutes=chance.choice(departures))
        db_session.add(Attendance(session_id=group_session.id, client_key=client.id, status="present", source="kiosk",
                                  check_in_at=check_in, check_out_at=check_out, check_out_source="kiosk"))
        earned += hours.credited_minutes(check_in, check_out, group_session.starts_at, group_session.ends_at)

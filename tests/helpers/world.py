"""World builders (CTFd's gen_* helpers, for this domain), the program's local time, and the scenes
several tests start from: a group running now, a kiosk at the door."""
from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text

from iop.store import db
from iop.store.models import Base

NY = ZoneInfo("America/New_York")
TEST_SECRET = "test-secret-key-" + "x" * 32


def reset_schema(app) -> None:
    """An empty database at the newest schema, with the default levels of care."""
    engine = db.database(app).engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            Base.metadata.create_all(connection)
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        Base.metadata.create_all(engine)
    from alembic import command

    from iop.store import migrate

    command.stamp(migrate.alembic_config(app), "head")  # the schema is the newest; `iop init` adds nothing
    with app.app_context():
        migrate.seed_defaults()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


class World:
    """Builds the rows a test needs in a line each (CTFd's gen_* helpers, for this domain)."""

    def __init__(self, app):
        self.app = app

    def _add(self, obj):
        with self.app.app_context():
            with db.transaction() as s:
                s.add(obj)
            s.refresh(obj)
            s.expunge(obj)
            return obj

    def group(self, code="RP-AM", name="Morning Relapse Prevention", track="relapse-prevention", room="Room B",
              weekdays="Mon Wed Fri", start=time(9), end=time(12), facilitator_id=None):
        from iop.store.models import Group

        return self._add(Group(code=code, name=name, track=track, room=room, weekdays=weekdays, start=start,
                               end=end, facilitator_id=facilitator_id))

    def client(self, client_id="C1", first="Maria", last="Gonzalez", groups=(), plan_start=None, plan_end=None,
               weekly_hours=9, days=3, level="2.1", phases=(), status="active"):
        from sqlalchemy import select

        from iop.store.models import Client, Group, Plan, PlanPhase

        with self.app.app_context():
            with db.transaction() as s:
                person = Client(client_id=client_id, first_name=first, last_name=last, status=status)
                person.groups = list(s.scalars(select(Group).where(Group.code.in_([g if isinstance(g, str) else g.code for g in groups]))))
                if plan_start is not None:
                    plan = Plan(level_of_care=level, start_date=plan_start, end_date=plan_end,
                                weekly_minutes=int(weekly_hours * 60), days_per_week=days)
                    for first_week, last_week, hours, phase_days in phases:
                        plan.phases.append(PlanPhase(first_week=first_week, last_week=last_week,
                                                     weekly_minutes=int(hours * 60), days_per_week=phase_days))
                    person.plans.append(plan)
                s.add(person)
            s.refresh(person)
            s.expunge(person)
            return person

    def session(self, group, day: date, status="scheduled", module_id=None):
        """The group's session on `day` (made through the same code the scheduler uses)."""
        from sqlalchemy import select

        from iop.clinic.sessions import ensure_session
        from iop.store.models import Group

        with self.app.app_context():
            with db.transaction() as s:
                g = s.scalar(select(Group).where(Group.code == (group if isinstance(group, str) else group.code)))
                group_session = ensure_session(g, day)
                group_session.status = status
                if module_id is not None:
                    group_session.module_id = module_id
            s.refresh(group_session)
            s.expunge(group_session)
            return group_session

    def attendance(self, client, group_session, check_in: datetime | None, check_out: datetime | None,
                   status="present", source="import"):
        from iop.store.models import Attendance

        return self._add(Attendance(
            session_id=group_session.id, client_key=client.id, status=status, source=source,
            check_in_at=check_in.astimezone(timezone.utc) if check_in else None,
            check_out_at=check_out.astimezone(timezone.utc) if check_out else None,
            check_out_source=source if check_out else None,
        ))

    def kiosk(self, name="Front desk"):
        """An enrolled kiosk and the cookie value that identifies it."""
        from iop.clinic import kiosks

        with self.app.app_context():
            with db.transaction():
                device = kiosks.issue_enrollment(name)
                kiosks.complete_enrollment(device.enrollment_nonce)
            return device, kiosks.cookie_value(device)


LIVE_DAY = date(2026, 3, 4)  # a Wednesday


class LiveGroup:
    """What live_group made: group, session (detached rows), session_id, facilitator_id, clients."""

    def __init__(self, **parts):
        self.__dict__.update(parts)


KIOSK_DAY = date(2026, 3, 2)  # a Monday


class KioskScene:
    def __init__(self, app, world, http):
        from iop.clinic import kiosks

        self.app, self.world, self.http = app, world, http
        self.day = KIOSK_DAY
        self.group = world.group()  # RP-AM: Mon Wed Fri 9:00-12:00, Room B
        self.maria = world.client("C1", "Maria", "Gonzalez", groups=[self.group],
                                  plan_start=KIOSK_DAY - timedelta(days=14), weekly_hours=9)
        self.device, self.cookie = world.kiosk()
        http.set_cookie(kiosks.COOKIE_NAME, self.cookie, path="/kiosk")

    def card(self, client) -> str:
        from iop.clinic import cards

        with self.app.app_context():
            return cards.card_code(client.id, client.card_version)

    def scan(self, code, scan_id=None, **extra):
        body = {"code": code, "scan_id": scan_id or secrets.token_hex(16), **extra}
        return self.http.post("/kiosk/api/scan", json=body)

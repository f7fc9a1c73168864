"""The tables, in SQLAlchemy 2 typed style. Times are stored in UTC; dates are the program's local dates."""
from __future__ import annotations

import secrets
from datetime import date, datetime, time, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from iop import clock
from iop.rules.entry import WEEKDAY_NAMES, weekday_numbers  # noqa: F401  (the weekdays column holds these names)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("facilitator", "coordinator", "admin")


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def new_public_id() -> str:
    """An opaque id for URLs: says nothing about the person."""
    return secrets.token_urlsafe(12)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON}


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    credentials: Mapped[str] = mapped_column(String(60), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # deactivated accounts are kept, never deleted
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def signature(self) -> str:
        """Name and credentials, as an audit or a group note wants them."""
        return f"{self.display_name}, {self.credentials}" if self.credentials else self.display_name


class StaffSession(Base):
    """A signed-in staff browser, held on the server. The browser's signed cookie carries a random
    token; this row is keyed by the token's SHA-256, so the table alone signs no one in. Ended rows
    (sign-out, idle, a password or role change, deactivation) refuse their cookie for good."""

    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(64), default="")
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(30))

    user: Mapped[StaffUser] = relationship()


class SignInThrottle(Base):
    """Failed sign-ins, counted by the username tried from an address together, and by the address:
    the sign-in slow-down's memory, in the database so that every server process shares it."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # "pair:<sha256>" or "address:<address>"
    username: Mapped[str] = mapped_column(String(64), default="", index=True)  # pair rows: an admin lifts them
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]
    wait_until: Mapped[datetime | None]


class LevelOfCare(Base):
    """A configurable level code (ASAM 1, 2.1, 2.5 or the 4th edition's), with its weekly floor."""

    __tablename__ = "level_of_care"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    weekly_minimum_minutes: Mapped[int] = mapped_column(Integer, default=0)
    weekly_maximum_minutes: Mapped[int | None] = mapped_column(Integer)


class Group(Base):
    """A recurring group: a track, a room, weekdays and local start/end times."""

    __tablename__ = "program_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    track: Mapped[str] = mapped_column(String(60))
    room: Mapped[str] = mapped_column(String(60), default="")
    weekdays: Mapped[str] = mapped_column(String(40))  # "Mon Wed Fri"
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    facilitator: Mapped[StaffUser | None] = relationship()

    @property
    def weekday_numbers(self) -> list[int]:
        return weekday_numbers(self.weekdays)

    @property
    def length_minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)


class Client(Base):
    __tablename__ = "client"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True, default=new_public_id)
    client_id: Mapped[str] = mapped_column(String(40), unique=True)  # the program's own id
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | discharged
    card_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    plans: Mapped[list[Plan]] = relationship(back_populates="client", order_by="Plan.start_date")
    groups: Mapped[list[Group]] = relationship(secondary="client_group", order_by="Group.code")

    @property
    def display_name(self) -> str:
        """First name and last initial: all a shared screen may show."""
        initial = self.last_name[:1].upper()
        return f"{self.first_name} {initial}." if initial else self.first_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class ClientGroup(Base):
    __tablename__ = "client_group"
    # The key starts with the client; a group's members (rosters, the week board) need the group first.
    __table_args__ = (Index("ix_client_group_group_id", "group_id"),)

    client_key: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("program_group.id", ondelete="CASCADE"), primary_key=True)


class Plan(Base):
    """A treatment plan: level of care, dates, and weekly hours that may step down by phases."""

    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_key: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    level_of_care: Mapped[str] = mapped_column(ForeignKey("level_of_care.code"))
    start_date: Mapped[date] = mapped_column(Date)
    # Indexed: a week's plans are found by their end (open or after the week's Monday), so the
    # board's cost follows the plans running now, not every plan ever written.
    end_date: Mapped[date | None] = mapped_column(Date, index=True)
    weekly_minutes: Mapped[int] = mapped_column(Integer)
    days_per_week: Mapped[int] = mapped_column(Integer)

    client: Mapped[Client] = relationship(back_populates="plans")
    phases: Mapped[list[PlanPhase]] = relationship(
        back_populates="plan", order_by="PlanPhase.first_week", cascade="all, delete-orphan"
    )


class PlanPhase(Base):
    """Plan weeks first_week..last_week (1-based, inclusive) at their own weekly hours and days."""

    __tablename__ = "plan_phase"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"), index=True)
    first_week: Mapped[int] = mapped_column(Integer)
    last_week: Mapped[int] = mapped_column(Integer)
    weekly_minutes: Mapped[int] = mapped_column(Integer)
    days_per_week: Mapped[int] = mapped_column(Integer)

    plan: Mapped[Plan] = relationship(back_populates="phases")


class GroupSession(Base):
    """One dated session of a group, with its module and its current step."""

    __tablename__ = "group_session"
    __table_args__ = (UniqueConstraint("group_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("program_group.id"))
    date: Mapped[date] = mapped_column(Date, index=True)
    starts_at: Mapped[datetime]  # scheduled, UTC
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="scheduled")  # scheduled|open|closed|cancelled
    module_id: Mapped[str | None] = mapped_column(String(80))
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # the facilitator pressed start / first step
    closed_at: Mapped[datetime | None]
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    note_text: Mapped[str | None] = mapped_column(Text)
    note_signed_at: Mapped[datetime | None]
    note_signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    group: Mapped[Group] = relationship()
    facilitator: Mapped[StaffUser | None] = relationship(foreign_keys=[facilitator_id])
    note_signed_by: Mapped[StaffUser | None] = relationship(foreign_keys=[note_signed_by_id])
    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="session",
        primaryjoin="and_(GroupSession.id == Attendance.session_id, Attendance.voided_at.is_(None))",
        viewonly=True,
    )


class Attendance(Base):
    """A client's presence at a session. Corrections void a record and add a new one; nothing is edited silently."""

    __tablename__ = "attendance"
    __table_args__ = (
        # One unvoided record per client per session: retries and parallel scans cannot double it.
        Index(
            "uq_attendance_live",
            "session_id",
            "client_key",
            unique=True,
            sqlite_where=text("voided_at IS NULL"),
            postgresql_where=text("voided_at IS NULL"),
        ),
        Index("ix_attendance_client_key", "client_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("group_session.id"))
    client_key: Mapped[int] = mapped_column(ForeignKey("client.id"))
    status: Mapped[str] = mapped_column(String(20), default="present")  # present | excused
    check_in_at: Mapped[datetime | None]
    check_out_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(20), default="kiosk")  # kiosk|manual|import
    # in_person (every kiosk scan) | telehealth (staff record a client joining by video); changes no minutes
    modality: Mapped[str] = mapped_column(String(20), default="in_person", server_default="in_person")
    check_out_source: Mapped[str | None] = mapped_column(String(20))  # kiosk|manual|close|import
    reason: Mapped[str | None] = mapped_column(String(300))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    voided_at: Mapped[datetime | None]
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    void_reason: Mapped[str | None] = mapped_column(String(300))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("attendance.id"))

    session: Mapped[GroupSession] = relationship(back_populates="attendances", foreign_keys=[session_id])
    client: Mapped[Client] = relationship()


class Authorization(Base):
    """A payer's approval of units of one service for one client between two dates (both included).
    The units used are never stored: they are counted from the attendance (iop.rules.authorizations)."""

    __tablename__ = "authorization"
    __table_args__ = (UniqueConstraint("client_key", "service", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_key: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    payer: Mapped[str] = mapped_column(String(120))
    number: Mapped[str] = mapped_column(String(60))
    service: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str] = mapped_column(String(10))  # day | session
    units: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    client: Mapped[Client] = relationship()


class KioskDevice(Base):
    """A tablet bound to the program by a one-time enrollment link."""

    __tablename__ = "kiosk_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True, default=new_public_id)
    name: Mapped[str] = mapped_column(String(80))
    enrollment_nonce: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrollment_expires_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    chime: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class Scan(Base):
    """Every kiosk scan by its scan_id: the same scan_id again gets the stored answer."""

    __tablename__ = "scan"

    scan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosk_device.id"))
    client_key: Mapped[int | None] = mapped_column(ForeignKey("client.id"))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    scanned_at: Mapped[datetime]
    http_status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSON)


class WeekFlag(Base):
    """The noon job's mark: this client's week became at risk (shown on the board and the roster)."""

    __tablename__ = "week_flag"
    __table_args__ = (UniqueConstraint("client_key", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_key: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    flagged_at: Mapped[datetime] = mapped_column(default=clock.now)


class SchedulerHeartbeat(Base):
    """The scheduler's last sign of life, so /healthz in any process can tell whether the jobs run."""

    __tablename__ = "scheduler_heartbeat"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    beat_at: Mapped[datetime]
    host: Mapped[str] = mapped_column(String(120), default="")


class AuditEvent(Base):
    """Append-only: who did what, to what, when, and why."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    username: Mapped[str] = mapped_column(String(64), default="")  # kept if the user is removed
    action: Mapped[str] = mapped_column(String(60), index=True)
    target: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class ImportJob(Base):
    """A CSV import from the web (or the command), run outside the request: its progress and its
    outcome, in the database so any server process can answer the page that follows it. `problems`
    holds the first reasons shown ("line N: reason"); the counts say how many there were in all.
    `first_row_id` and `stamp` name the attendance rows a load wrote, to take them back if it stops."""

    __tablename__ = "import_job"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    via: Mapped[str] = mapped_column(String(10), default="web")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|checking|loading|done|failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(String(300), default="")
    problems: Mapped[dict] = mapped_column(JSON, default=dict)  # {"shown": [...], "count": n, "lines": n}
    first_row_id: Mapped[int | None] = mapped_column(Integer)
    stamp: Mapped[datetime | None]

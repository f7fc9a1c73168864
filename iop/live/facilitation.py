"""Running a group live: who may run it, stepping through its module, the room display's link,
closing the session and its summary with the group note.

The rules are plain functions; the writes join the caller's unit of work (`with db.transaction():`),
so a step, a close or a signed note commits whole or not at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from curriculum import markup
from curriculum.catalog import catalog
from curriculum.model import Module, Step
from iop import clock, config
from iop.clinic import attendance, audit
from iop.clinic.staff import has_role
from iop.clock import iso, program_tz, time_text
from iop.config import signing_keys
from iop.rules import entry, hours
from iop.store import db
from iop.store.models import Attendance, Client, GroupSession, StaffUser

DISPLAY_SALT = "iop.display.v1"
DISPLAY_MARGIN = timedelta(hours=1)  # a display link outlives the scheduled end by this much, for overruns
ENDED = ("closed", "cancelled")


class LiveError(ValueError):
    """A refused live action: `code` for programs, the message for the person, `status` for HTTP."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


# ---- who may run a session -------------------------------------------------------------------

def may_run(user: StaffUser | None, group_session: GroupSession) -> bool:
    """Its own facilitator, or any coordinator or admin."""
    if user is None or not user.active:
        return False
    return has_role(user, "coordinator") or (has_role(user, "facilitator") and group_session.facilitator_id == user.id)


def require_may_run(user: StaffUser | None, group_session: GroupSession) -> None:
    if user is None:
        raise LiveError("signed_out", "Please sign in again.", 401)
    if not may_run(user, group_session):
        raise LiveError("not_your_session",
                        "This group is run by another facilitator. A coordinator can run it or hand it to you.", 403)


def find_session(session_id, for_update: bool = False) -> GroupSession:
    """The session by id, fresh from the database; LiveError('unknown_session') otherwise."""
    number = parse_int(session_id, "session_id")
    group_session = db.session().get(GroupSession, number, with_for_update=for_update, populate_existing=True)
    if group_session is None:
        raise LiveError("unknown_session", "There is no such group session.", 404)
    return group_session


def parse_int(value, name: str) -> int:
    """A whole number from a client payload (bools, floats and text are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise LiveError("bad_request", f"The request needs a whole number for {name}.")
    return value


# ---- the module and its steps ----------------------------------------------------------------

def module_of(group_session: GroupSession) -> Module | None:
    return catalog().module(group_session.module_id)


def current_index(group_session: GroupSession, module: Module | None) -> int:
    """The stored step, kept inside the module (a module edited since may have fewer steps)."""
    if module is None or not module.steps:
        return 0
    return max(0, min(group_session.current_step or 0, len(module.steps) - 1))


def step_problem(index: int, step_count: int) -> LiveError | None:
    """Why `index` cannot be the current step of a module with `step_count` steps, if it cannot."""
    if step_count == 0:
        return LiveError("no_module", "Choose a module for this group first.")
    if not 0 <= index < step_count:
        return LiveError("step_out_of_range", f"There is no step {index + 1}: this module has {step_count} steps.")
    return None


def seconds_left(step_started_at: datetime | None, minutes: int, now: datetime) -> int:
    """Seconds left of a step's suggested time (negative once over; the full time before it starts)."""
    if step_started_at is None:
        return minutes * 60
    return minutes * 60 - int((now - step_started_at).total_seconds())


def step_to(group_session: GroupSession, index, by_user: StaffUser | None, at: datetime) -> Step:
    """Make step `index` current from `at`. The first step change starts the session. Caller commits."""
    require_may_run(by_user, group_session)
    if group_session.status in ENDED:
        raise LiveError("session_closed", "This group has ended; its steps can no longer change.", 409)
    index = parse_int(index, "index")
    module = module_of(group_session)
    problem = step_problem(index, len(module.steps) if module else 0)
    if problem is not None:
        raise problem
    group_session.current_step = index
    group_session.step_started_at = at
    if group_session.started_at is None:
        group_session.started_at = at
        audit.record("session.start", target=f"session:{group_session.id}", user=by_user, module=group_session.module_id)
    if group_session.status == "scheduled":
        group_session.status = "open"
    db.session().flush()
    return module.steps[index]


def choose_module(group_session: GroupSession, module_id: str, by_user: StaffUser) -> Module:
    """Another module of the group's track, before the group starts (the curriculum's rules). Caller commits."""
    from curriculum import rotation

    require_may_run(by_user, group_session)
    if not isinstance(module_id, str) or not module_id.strip():
        raise LiveError("bad_request", "Please pick a module from the list.")
    try:
        module = rotation.choose_module(group_session, module_id.strip(), by_user)
    except rotation.ModuleChoiceRefused as exc:
        raise LiveError("module_refused", str(exc), 409) from None
    group_session.current_step = 0
    group_session.step_started_at = None
    db.session().flush()
    return module


def can_choose_module(group_session: GroupSession) -> bool:
    from curriculum import rotation

    return rotation.can_choose_module(group_session)


def module_choices(group_session: GroupSession) -> list[Module]:
    from curriculum import rotation

    return rotation.module_choices(group_session)


# ---- what screens are told -------------------------------------------------------------------

def date_text(group_session: GroupSession) -> str:
    return f"{group_session.date:%A}, {group_session.date:%B} {group_session.date.day}"


def public_state(group_session: GroupSession, now: datetime | None = None) -> dict:
    """Everything a room display may know: the step, its timer and the headcount. Never a name or a note."""
    from iop.live import roster

    now = now or clock.now()
    module = module_of(group_session)
    index = current_index(group_session, module)
    step = module.steps[index] if module and module.steps else None
    return {
        "session_id": group_session.id,
        "status": group_session.status,
        "started": group_session.started_at is not None,
        "started_at": iso(group_session.started_at),
        "group": group_session.group.name,
        "date": date_text(group_session),
        "module_id": module.id if module else None,
        "module_title": module.title if module else "",
        "step_index": index,
        "step_count": len(module.steps) if module else 0,
        "step_title": step.title if step else "",
        "step_kind": step.kind if step else "",
        "step_room": step.room if step else "",
        "step_room_html": str(markup.to_html(step.room if step else "", "room")),  # as every screen shows it
        "step_minutes": step.minutes if step else 0,
        "step_started_at": iso(group_session.step_started_at),
        "headcount": roster.headcount(group_session.id),
        "server_now": iso(now),  # screens correct their own clock by this, so every timer agrees
    }


def staff_state(group_session: GroupSession, now: datetime | None = None) -> dict:
    """The public state plus what only the facilitator's screen shows: the notes and the roster."""
    from iop.live import roster

    state = public_state(group_session, now)
    module = module_of(group_session)
    state["notes"] = module.steps[state["step_index"]].notes if module and module.steps else ""
    state["roster"] = roster.roster_payload(group_session)
    return state


# ---- the room display's link -----------------------------------------------------------------

def _display_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app.config), salt=DISPLAY_SALT)


def display_token(session_id: int) -> str:
    return _display_serializer().dumps({"s": session_id})


def display_expires_at(group_session: GroupSession) -> datetime:
    return group_session.ends_at + DISPLAY_MARGIN


def display_session(token, now: datetime | None = None) -> GroupSession:
    """The session a display link is for, while it may still be shown.

    Forged or malformed: 403. The session is over (closed, cancelled, or past its end and margin): 410."""
    forged = LiveError("bad_display_link",
                       "This room display link is not valid. Ask the facilitator for the Room display link.", 403)
    if not isinstance(token, str) or not token or len(token) > 200:
        raise forged
    try:
        value = _display_serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise forged from None
    session_id = value.get("s") if isinstance(value, dict) else None
    if isinstance(session_id, bool) or not isinstance(session_id, int):
        raise forged
    group_session = db.session().get(GroupSession, session_id, populate_existing=True)
    if group_session is None:
        raise forged
    ended = LiveError("display_ended", "This group has ended, so its room display is closed. Thank you.", 410)
    if group_session.status in ENDED or (now or clock.now()) > display_expires_at(group_session):
        raise ended
    return group_session


# ---- attendance by hand ----------------------------------------------------------------------

HAND_ACTIONS = ("check_in", "check_in_video", "check_out", "excuse")
HAND_TIME = entry.Field("at", "The time", needed=False)


def _hand_time(group_session: GroupSession, value, now: datetime) -> datetime:
    """The time a facilitator gives ("9:05", the session's local date), or now; never in the future."""
    from iop.clock import local_to_utc

    try:
        at = entry.clock_time(value, HAND_TIME)
    except entry.EntryError:
        raise LiveError("bad_time", "Please give the time as hours and minutes, like 9:05.") from None
    if at is None:
        return now
    moment = local_to_utc(group_session.date, at, program_tz())
    if moment > now:
        raise LiveError("future_time", "That time has not come yet.")
    return moment


def record_by_hand(group_session: GroupSession, action, client_public_id, reason, at_text, by_user: StaffUser,
                   now: datetime) -> str:
    """A facilitator checks a client in or out, or marks them excused (audited with the reason).

    Returns what happened, in words for the facilitator. Caller commits, then publishes the roster."""
    require_may_run(by_user, group_session)
    if not isinstance(action, str) or action not in HAND_ACTIONS:
        raise LiveError("bad_request", "That action is not possible here.")
    if not isinstance(client_public_id, str) or not all(isinstance(v, str) for v in (reason, at_text) if v is not None):
        raise LiveError("bad_request", "That request could not be read.")
    if group_session.status in ENDED:
        raise LiveError("session_closed", "This group has ended; a coordinator can correct its records.", 409)
    client = db.session().scalar(select(Client).where(Client.public_id == client_public_id[:24]))
    members = {member.id for member in attendance.session_members(group_session)}
    if client is None or (client.id not in members and attendance.unvoided_attendance(group_session.id, client.id) is None):
        raise LiveError("unknown_client", "Please pick a client of this group from the list.")
    reason = _typed(entry.REASON, reason, "reason")
    modality = "telehealth" if action == "check_in_video" else "in_person"
    by_video = " by video" if modality == "telehealth" else ""
    action = "check_in" if action == "check_in_video" else action
    try:
        if action == "excuse":
            attendance.excuse(group_session, client, by_user, reason)
            return f"{client.display_name} is marked excused."
        at = _hand_time(group_session, at_text, now)
        existing = attendance.unvoided_attendance(group_session.id, client.id)
        if action == "check_in" and existing is not None and existing.status == "excused":
            # Marked excused, then came after all: the excused record is corrected, not edited.
            attendance.correct(existing, at, None, by_user, reason or "Came after being marked excused",
                               modality=modality)
            return f"{client.display_name} is checked in{by_video} at {time_text(at)}."
        if action == "check_in" and existing is not None and existing.check_out_at is not None:
            raise LiveError("already_checked_out", f"{client.display_name} already checked out of this group. "
                            "A coordinator can correct the record if they came back.", 409)
        if action == "check_in":
            attendance.check_in(group_session, client, at, source="manual", by_user=by_user,
                                reason=reason or ("Joined by video" if by_video else "Checked in by staff"),
                                modality=modality)
            return f"{client.display_name} is checked in{by_video} at {time_text(at)}."
        if existing is None or existing.status != "present":
            raise LiveError("not_checked_in", f"{client.display_name} is not checked in.")
        attendance.check_out(existing, at, source="manual", by_user=by_user, reason=reason or "Checked out by staff")
        return f"{client.display_name} is checked out at {time_text(at)}."
    except attendance.AttendanceError as exc:
        raise LiveError(exc.code, str(exc), 409) from None


# ---- closing and the summary -----------------------------------------------------------------

def close(group_session: GroupSession, by_user: StaffUser | None, at: datetime) -> int:
    """Close the session (rule 2 checks out whoever is still in). A second close changes nothing."""
    require_may_run(by_user, group_session)
    if group_session.status == "closed":
        raise LiveError("already_closed",
                        f"This group was already closed at {time_text(group_session.closed_at)}. Nothing changed.", 409)
    if group_session.status == "cancelled":
        raise LiveError("session_cancelled", "This group was cancelled, so there is nothing to close.", 409)
    return attendance.close_session(group_session, at, by_user)


@dataclass(frozen=True)
class SummaryRow:
    client_id: str
    name: str
    status: str  # present | excused
    check_in: datetime | None
    check_out: datetime | None
    credited_minutes: int
    late: bool
    left_early: bool
    source: str
    reason: str
    modality: str = "in_person"

    @property
    def by_video(self) -> bool:
        return self.modality == "telehealth"


@dataclass
class SessionSummary:
    group_session: GroupSession
    module: Module | None
    facilitator: str
    rows: list[SummaryRow] = field(default_factory=list)

    @property
    def headcount(self) -> int:
        """Participants: clients who came (an excused absence is not a participant)."""
        return sum(1 for row in self.rows if row.status == "present" and row.check_in is not None)

    @property
    def total_minutes(self) -> int:
        return sum(row.credited_minutes for row in self.rows)

    @property
    def joined_by_video(self) -> list[SummaryRow]:
        """Participants who joined by video (telehealth), as payers want the modality said."""
        return [row for row in self.rows if row.status == "present" and row.check_in is not None and row.by_video]


def summary(group_session: GroupSession, now: datetime | None = None) -> SessionSummary:
    """What an audit asks of a session: times, module, facilitator, headcount, each client's part.

    Minutes and flags follow iop.rules.hours exactly (an attendance still open counts to now, as everywhere)."""
    now = now or clock.now()
    grace = config.grace_minutes()
    records = db.session().execute(
        select(Attendance, Client).join(Client, Client.id == Attendance.client_key)
        .where(Attendance.session_id == group_session.id, Attendance.voided_at.is_(None))
        .order_by(Client.last_name, Client.first_name)
        .execution_options(populate_existing=True)).all()
    rows = []
    for record, client in records:
        present, starts, ends = record.status == "present", group_session.starts_at, group_session.ends_at
        late, left_early = hours.attendance_flags(present, record.check_in_at, record.check_out_at, starts, ends, grace)
        rows.append(SummaryRow(
            client_id=client.client_id, name=client.full_name, status=record.status,
            check_in=record.check_in_at, check_out=record.check_out_at,
            credited_minutes=hours.credited_so_far(present, record.check_in_at, record.check_out_at, starts, ends, now),
            late=late, left_early=left_early, source=record.source, reason=record.reason or "",
            modality=record.modality))
    facilitator = group_session.facilitator.signature if group_session.facilitator else "No facilitator recorded"
    return SessionSummary(group_session=group_session, module=module_of(group_session), facilitator=facilitator, rows=rows)


def draft_note(report: SessionSummary) -> str:
    """A group note to start from: the module's topic, summary and goals, and the headcount."""
    group_session, module = report.group_session, report.module
    lines = [f"Group: {group_session.group.name}, {date_text(group_session)} {group_session.date.year}, "
             f"{time_text(group_session.starts_at)} to {time_text(group_session.ends_at)}."]
    if module is not None:
        lines += [f"Topic: {module.title}.", "", " ".join(module.summary.split()), "", "Goals for this group:"]
        lines += [f"- {goal}" for goal in module.goals]
    else:
        lines.append("Topic: (no module recorded)")
    video = report.joined_by_video
    lines += ["", f"Participants: {report.headcount}."]
    if video:
        lines.append(f"Joined by video (telehealth): {len(video)} ({', '.join(row.name for row in video)}); "
                     f"in person: {report.headcount - len(video)}.")
    lines += ["",
              "Observations: ", "", f"Facilitator: {report.facilitator}"]
    return "\n".join(lines)


def _typed(field: entry.Field, value, what: str) -> str:
    """A reason or a note as typed, read by iop.rules.entry; refused as `what`_too_long or bad_`what`."""
    try:
        return entry.text(value, field)
    except entry.EntryError as exc:
        raise LiveError(f"{what}_too_long" if exc.code == "too_long" else f"bad_{what}", exc.message) from None


def save_note(group_session: GroupSession, text, by_user: StaffUser, sign: bool, at: datetime) -> None:
    """Keep the note's draft, or sign it; a signed note is locked. Audited; caller commits."""
    require_may_run(by_user, group_session)
    if group_session.note_signed_at is not None:
        raise LiveError("note_signed", "This note is signed, so it can no longer be changed.", 409)
    text = _typed(entry.NOTE, text, "note")
    if sign and not text:
        raise LiveError("note_empty", "Write the note before signing it.")
    group_session.note_text = text
    if sign:
        group_session.note_signed_at = at
        group_session.note_signed_by_id = by_user.id
    db.session().flush()
    audit.record("session.note_signed" if sign else "session.note_saved", target=f"session:{group_session.id}",
                 user=by_user, characters=len(text))

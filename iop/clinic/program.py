"""The program's records a coordinator keeps by hand: clients and groups. Validated, audited.

(Bulk loading goes through iop.imports; plans and levels of care through iop.plans.)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Sequence

from sqlalchemy import exists, func, select

from iop.clinic import audit
from iop.store import db
from iop.store.models import WEEKDAY_NAMES, Attendance, Client, Group, GroupSession, StaffUser

CLIENT_STATUSES = ("active", "discharged")


class RecordError(ValueError):
    """A record that cannot be saved; `problems` are sentences for the coordinator."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def _text(value: str | None, label: str, most: int, problems: list[str], needed: bool = True) -> str:
    value = (value or "").strip()
    if needed and not value:
        problems.append(f"{label} is needed.")
    elif len(value) > most:
        problems.append(f"{label} is longer than {most} characters.")
    return value


# ---- clients ------------------------------------------------------------------------------------

@dataclass
class ClientFields:
    client_id: str
    first_name: str
    last_name: str
    status: str = "active"
    group_ids: Sequence[int] = ()


def save_client(fields: ClientFields, by_user: StaffUser, client: Client | None = None) -> Client:
    """Add a client (client None) or change one; audited with the names of the fields changed."""
    problems: list[str] = []
    client_id = _text(fields.client_id, "The client ID", 40, problems)
    if client_id and any(ch.isspace() for ch in client_id):
        problems.append("The client ID cannot contain spaces.")
    first = _text(fields.first_name, "The first name", 80, problems)
    last = _text(fields.last_name, "The last name", 80, problems)
    if fields.status not in CLIENT_STATUSES:
        problems.append("The status must be active or discharged.")
    taken = db.session().scalar(select(Client.id).where(Client.client_id == client_id))
    if client_id and taken is not None and (client is None or taken != client.id):
        problems.append(f"Another client already has the ID {client_id}.")
    groups = _groups(fields.group_ids, problems)
    if problems:
        raise RecordError(problems)
    values = {"client_id": client_id, "first_name": first, "last_name": last, "status": fields.status}
    if client is None:
        client = Client(**values)
        client.groups = groups
        db.session().add(client)
        db.session().flush()
        audit.record("client.created", target=f"client:{client.public_id}", user=by_user)
        return client
    changed = sorted(name for name, value in values.items() if getattr(client, name) != value)
    for name in changed:
        setattr(client, name, values[name])
    if {g.id for g in client.groups} != {g.id for g in groups}:
        client.groups = groups
        changed.append("groups")
    db.session().flush()
    if changed:
        audit.record("client.updated", target=f"client:{client.public_id}", user=by_user, fields=changed)
    return client


def set_client_groups(client: Client, group_ids: Sequence[int], by_user: StaffUser) -> None:
    """Change only the client's groups (from the plan form); audited."""
    problems: list[str] = []
    groups = _groups(group_ids, problems)
    if problems:
        raise RecordError(problems)
    if {g.id for g in client.groups} != {g.id for g in groups}:
        client.groups = groups
        db.session().flush()
        audit.record("client.updated", target=f"client:{client.public_id}", user=by_user, fields=["groups"])


def _groups(group_ids: Sequence[int], problems: list[str]) -> list[Group]:
    wanted = set(group_ids)
    if not wanted:
        return []
    found = list(db.session().scalars(select(Group).where(Group.id.in_(wanted)).order_by(Group.code)))
    if len(found) != len(wanted):
        problems.append("One of the chosen groups no longer exists; reload the page.")
    return found


# ---- groups -------------------------------------------------------------------------------------

@dataclass
class GroupFields:
    code: str
    name: str
    track: str
    room: str
    weekdays: Sequence[str]
    start: time | None
    end: time | None
    facilitator_id: int | None = None
    active: bool = True


def save_group(fields: GroupFields, by_user: StaffUser, tracks: Sequence[str], today: date,
               group: Group | None = None) -> Group:
    """Add a group or change one. Sessions already made for today or later that have not begun
    follow the new schedule (a day the group no longer meets is cancelled, never deleted)."""
    problems: list[str] = []
    code = _text(fields.code, "The group code", 40, problems)
    if code and any(ch.isspace() for ch in code):
        problems.append("The group code is one word, like RP-AM.")
    taken = db.session().scalar(select(Group.id).where(Group.code == code))
    if code and taken is not None and (group is None or taken != group.id):
        problems.append(f"Another group already has the code {code}.")
    name = _text(fields.name, "The group name", 120, problems)
    room = _text(fields.room, "The room", 60, problems, needed=False)
    if fields.track not in tracks:
        problems.append(f"Choose a curriculum track (known: {', '.join(tracks) or 'none loaded'}).")
    days = [day for day in WEEKDAY_NAMES if day in set(fields.weekdays)]
    if not days:
        problems.append("Choose at least one weekday.")
    if len(days) != len(set(fields.weekdays)):
        problems.append("A weekday was not recognised.")
    if fields.start is None or fields.end is None:
        problems.append("Start and end need times like 09:00 (24-hour clock).")
    elif fields.end <= fields.start:
        problems.append("The end time must be after the start time (on the same day).")
    if fields.facilitator_id is not None:
        person = db.session().get(StaffUser, fields.facilitator_id)
        if person is None or not person.active:
            problems.append("The chosen facilitator is not an active staff member.")
    if problems:
        raise RecordError(problems)
    values = {"code": code, "name": name, "track": fields.track, "room": room, "weekdays": " ".join(days),
              "start": fields.start, "end": fields.end, "facilitator_id": fields.facilitator_id,
              "active": fields.active}
    if group is None:
        group = Group(**values)
        db.session().add(group)
        db.session().flush()
        audit.record("group.created", target=f"group:{group.code}", user=by_user)
        return group
    changed = sorted(name for name, value in values.items() if getattr(group, name) != value)
    for field_name in changed:
        setattr(group, field_name, values[field_name])
    db.session().flush()
    if changed:
        rescheduled = follow_schedule(group, today)
        audit.record("group.updated", target=f"group:{group.code}", user=by_user, fields=changed,
                     sessions_changed=rescheduled)
    return group


def follow_schedule(group: Group, today: date) -> int:
    """Move the group's sessions from `today` on that nobody has begun to its changed schedule
    (a day it no longer meets is cancelled, never deleted). Returns how many changed."""
    from iop.clinic.sessions import meets_on
    from iop.clock import local_to_utc, program_tz

    tz = program_tz()
    attended = exists().where(Attendance.session_id == GroupSession.id, Attendance.voided_at.is_(None))
    upcoming = db.session().scalars(select(GroupSession).where(
        GroupSession.group_id == group.id, GroupSession.date >= today, GroupSession.status == "scheduled",
        GroupSession.started_at.is_(None), ~attended))
    changed = 0
    for group_session in upcoming:
        if not meets_on(group, group_session.date):
            group_session.status = "cancelled"
        else:
            group_session.starts_at = local_to_utc(group_session.date, group.start, tz)
            group_session.ends_at = local_to_utc(group_session.date, group.end, tz)
            group_session.facilitator_id = group.facilitator_id
        changed += 1
    db.session().flush()
    return changed


def group_sizes() -> dict[int, int]:
    """{group id: active clients in it}."""
    from iop.store.models import ClientGroup

    return dict(db.session().execute(
        select(ClientGroup.group_id, func.count()).join(Client, Client.id == ClientGroup.client_key)
        .where(Client.status == "active").group_by(ClientGroup.group_id)).all())

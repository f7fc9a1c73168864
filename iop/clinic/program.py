"""The program's records a coordinator keeps by hand: clients and groups. Validated, audited.

(Bulk loading goes through iop.files.imports; plans and levels of care through iop.clinic.plans.
What people type is read by iop.rules.entry, the same rules the imports use.)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from iop.clinic import audit
from iop.rules import entry
from iop.store import db
from iop.store.models import Attendance, Client, ClientGroup, Group, GroupSession, Plan, StaffUser

CLIENT_STATUSES = ("active", "discharged")


class RecordError(entry.Refused):
    """A client or group that cannot be saved; `problems` are sentences for the coordinator."""


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
    problems = entry.Problems()
    client_id = problems.check(entry.client_id, fields.client_id)
    first = problems.check(entry.text, fields.first_name, entry.FIRST_NAME)
    last = problems.check(entry.text, fields.last_name, entry.LAST_NAME)
    if fields.status not in CLIENT_STATUSES:
        problems.add("The status must be active or discharged.", "status")
    taken = db.session().scalar(select(Client.id).where(Client.client_id == client_id)) if client_id else None
    if taken is not None and (client is None or taken != client.id):
        problems.add(f"Another client already has the ID {client_id}.", "client_id")
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
    problems = entry.Problems()
    groups = _groups(group_ids, problems)
    if problems:
        raise RecordError(problems)
    if {g.id for g in client.groups} != {g.id for g in groups}:
        client.groups = groups
        db.session().flush()
        audit.record("client.updated", target=f"client:{client.public_id}", user=by_user, fields=["groups"])


def _groups(group_ids: Sequence[int], problems: entry.Problems) -> list[Group]:
    wanted = set(group_ids)
    if not wanted:
        return []
    found = list(db.session().scalars(select(Group).where(Group.id.in_(wanted)).order_by(Group.code)))
    if len(found) != len(wanted):
        problems.add("One of the chosen groups no longer exists; reload the page.", "groups")
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
    problems = entry.Problems()
    code = problems.check(entry.group_code, fields.code)
    taken = db.session().scalar(select(Group.id).where(Group.code == code)) if code else None
    if taken is not None and (group is None or taken != group.id):
        problems.add(f"Another group already has the code {code}.", "code")
    name = problems.check(entry.text, fields.name, entry.GROUP_NAME)
    room = problems.check(entry.text, fields.room, entry.ROOM)
    if fields.track not in tracks:
        problems.add(f"Choose a curriculum track (known: {', '.join(tracks) or 'none loaded'}).", "track")
    days = problems.check(entry.weekdays, fields.weekdays)
    if fields.start is None or fields.end is None:
        problems.add("Start and end need times like 09:00 (24-hour clock).", "start")
    else:
        problems.check(entry.time_range, fields.start, fields.end)
    if fields.facilitator_id is not None:
        person = db.session().get(StaffUser, fields.facilitator_id)
        if person is None or not person.active:
            problems.add("The chosen facilitator is not an active staff member.", "facilitator_id")
    if problems:
        raise RecordError(problems)
    values = {"code": code, "name": name, "track": fields.track, "room": room, "weekdays": days,
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
    return dict(db.session().execute(
        select(ClientGroup.group_id, func.count()).join(Client, Client.id == ClientGroup.client_key)
        .where(Client.status == "active").group_by(ClientGroup.group_id)).all())


# ---- lists and look-ups for the coordinator's pages ------------------------------------------------

def groups() -> list[Group]:
    """Every group, by code."""
    return list(db.session().scalars(select(Group).order_by(Group.code)))


def group(group_id: int) -> Group | None:
    return db.session().get(Group, group_id)


def facilitators() -> list[StaffUser]:
    """Who may be chosen to run a group: active staff, by name."""
    return list(db.session().scalars(select(StaffUser).where(StaffUser.active.is_(True))
                                     .order_by(StaffUser.display_name)))


def client_record(public_id: str) -> Client | None:
    """A client by the opaque id in page addresses, with plans, phases and groups loaded."""
    return db.session().scalar(select(Client).options(
        selectinload(Client.plans).selectinload(Plan.phases), selectinload(Client.groups))
        .where(Client.public_id == public_id))


def _clients_query(status: str):
    """Clients of a status (active, discharged, or all) by client ID, with groups and plans (and their
    phases: the Clients list shows the phase in effect) loaded."""
    query = (select(Client).options(selectinload(Client.groups), selectinload(Client.plans).selectinload(Plan.phases))
             .order_by(Client.client_id, Client.id))
    return query if status == "all" else query.where(Client.status == status)


@dataclass(frozen=True)
class Page:
    """One page of a long list: its rows, its number (from 1), how many pages and rows in all."""

    rows: list
    number: int
    pages: int
    total: int
    size: int

    @property
    def first_row(self) -> int:
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)


def page_of(query, number: int, size: int) -> Page:
    """Page `number` (from 1; past the end: the last page) of an ordered `query`: one count and one
    page of rows (LIMIT/OFFSET), so a long list costs a page, whatever its length."""
    session = db.session()
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // size))
    number = min(max(1, number), pages)
    rows = list(session.scalars(query.offset((number - 1) * size).limit(size)))
    return Page(rows, number, pages, total, size)


def rows_page(rows: list, number: int, size: int) -> Page:
    """Page `number` (from 1; past the end: the last page) of rows already read and in order (a list
    whose order needs figures the database does not have)."""
    pages = max(1, -(-len(rows) // size))
    number = min(max(1, number), pages)
    return Page(rows[(number - 1) * size:number * size], number, pages, len(rows), size)


def clients_page(status: str, number: int, size: int) -> Page:
    """Page `number` of the clients of a status (active, discharged, or all) by client ID."""
    return page_of(_clients_query(status), number, size)

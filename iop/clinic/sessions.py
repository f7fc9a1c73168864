"""Group sessions: the dated meetings of each group, made from the group's schedule."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from iop.clock import local_to_utc, program_tz
from iop.store import db
from iop.store.models import Group, GroupSession


def meets_on(group: Group, day: date) -> bool:
    return group.active and day.weekday() in group.weekday_numbers


def ensure_session(group: Group, day: date) -> GroupSession:
    """The group's session on `day`, made when missing (the caller commits). Idempotent."""
    db_session = db.session()
    existing = db_session.scalar(
        select(GroupSession).where(GroupSession.group_id == group.id, GroupSession.date == day)
    )
    if existing is not None:
        return existing
    tz = program_tz()
    group_session = GroupSession(
        group_id=group.id,
        date=day,
        starts_at=local_to_utc(day, group.start, tz),
        ends_at=local_to_utc(day, group.end, tz),
        facilitator_id=group.facilitator_id,
        status="scheduled",
    )
    group_session.group = group
    from curriculum.rotation import assign_next_module

    assign_next_module(group_session)
    db_session.add(group_session)
    db_session.flush()
    return group_session


def ensure_sessions_for(day: date) -> list[GroupSession]:
    """Every active group's session on `day` (the caller commits)."""
    groups = db.session().scalars(select(Group).where(Group.active.is_(True)).order_by(Group.code))
    return [ensure_session(group, day) for group in groups if meets_on(group, day)]

"""Which modules a client has had, and which they can still make up.

A client has had a module when they were credited at least half of a session that ran it
(DOMAIN.md rule 1 minutes, from iop.hours, computed each time and never stored). Only sessions
that are over count: someone in the room now has not had today's module yet, so the roster's
"new to this module" mark stays up for the whole group.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import or_, select

from curriculum.catalog import Module, catalog
from iop import clock, db
from iop.hours import credited_minutes_sql, epoch_seconds, floor_div_60
from iop.models import Attendance, GroupSession


def _had_rows(client_pks: Iterable[int] | None, module_id: str | None):
    """(client_pk, module_id) for every credited half-or-more of a session that is over."""
    now = clock.now()
    credited = credited_minutes_sql(Attendance, GroupSession, now)
    scheduled = floor_div_60(epoch_seconds(GroupSession.ends_at) - epoch_seconds(GroupSession.starts_at))
    query = (
        select(Attendance.client_id, GroupSession.module_id).distinct()
        .join(GroupSession, GroupSession.id == Attendance.session_id)
        .where(Attendance.voided_at.is_(None), Attendance.status == "present",
               GroupSession.module_id.is_not(None),
               or_(GroupSession.status == "closed",
                   (GroupSession.status != "cancelled") & (GroupSession.ends_at <= now)),
               # credited >= half the scheduled minutes, in whole numbers (90 of 180 counts, 89 does not)
               credited * 2 >= scheduled)
    )
    if client_pks is not None:
        query = query.where(Attendance.client_id.in_(list(client_pks)))
    if module_id is not None:
        query = query.where(GroupSession.module_id == module_id)
    return db.session().execute(query).all()


def modules_had(client_pk: int) -> set[str]:
    """The ids of every module this client has had."""
    return {module_id for _client, module_id in _had_rows([client_pk], None)}


def modules_not_had(client_pk: int, track: str) -> list[Module]:
    """The track's modules this client has not had yet, in sequence: their make-ups."""
    had = modules_had(client_pk)
    return [module for module in catalog().track_modules(track) if module.id not in had]


def new_to_module(client_pks: Iterable[int], module_id: str) -> set[int]:
    """Of these clients, those who have NOT had the module (the roster's "new to this module" mark)."""
    wanted = set(client_pks)
    if not wanted:
        return set()
    had = {client_pk for client_pk, _module in _had_rows(wanted, module_id)}
    return wanted - had

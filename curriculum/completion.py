"""Which modules a client has had, and which they can still make up.

A client has had a module when they were credited at least half of a session that ran it
(docs/domain.md rule 1 minutes, from iop.store.hours_queries, computed each time and never stored).
Only sessions that are over count: someone in the room now has not had today's module yet, so the roster's
"new to this module" mark stays up for the whole group.
"""
from __future__ import annotations

import functools
from typing import Iterable

from sqlalchemy import bindparam, or_, select

from curriculum.catalog import catalog
from curriculum.model import Module
from iop import clock
from iop.store import db
from iop.store.hours_queries import credited_minutes_sql, epoch_seconds, floor_div_60
from iop.store.models import Attendance, GroupSession, UTCDateTime


def _had_rows(client_keys: Iterable[int] | None, module_id: str | None):
    """(client_key, module_id) for every credited half-or-more of a session that is over."""
    params = {"hours_now": clock.now()}
    if client_keys is not None:
        params["client_keys"] = list(client_keys)
    if module_id is not None:
        params["module_id"] = module_id
    return db.session().execute(_had_statement(client_keys is not None, module_id is not None), params).all()


@functools.cache
def _had_statement(for_named_clients: bool, for_one_module: bool):
    """_had_rows's query (built once per shape, bound per call; the time is the parameter hours_now)."""
    now = bindparam("hours_now", type_=UTCDateTime())
    credited = credited_minutes_sql(Attendance, GroupSession, None)
    scheduled = floor_div_60(epoch_seconds(GroupSession.ends_at) - epoch_seconds(GroupSession.starts_at))
    query = (
        select(Attendance.client_key, GroupSession.module_id).distinct()
        .join(GroupSession, GroupSession.id == Attendance.session_id)
        .where(Attendance.voided_at.is_(None), Attendance.status == "present",
               GroupSession.module_id.is_not(None),
               or_(GroupSession.status == "closed",
                   (GroupSession.status != "cancelled") & (GroupSession.ends_at <= now)),
               # credited >= half the scheduled minutes, in whole numbers (90 of 180 counts, 89 does not)
               credited * 2 >= scheduled)
    )
    if for_named_clients:
        query = query.where(db.one_of(Attendance.client_key, "client_keys"))
    if for_one_module:
        query = query.where(GroupSession.module_id == bindparam("module_id"))
    return query


def modules_had(client_key: int) -> set[str]:
    """The ids of every module this client has had."""
    return {module_id for _client, module_id in _had_rows([client_key], None)}


def modules_not_had(client_key: int, track: str) -> list[Module]:
    """The track's modules this client has not had yet, in sequence: their make-ups."""
    had = modules_had(client_key)
    return [module for module in catalog().track_modules(track) if module.id not in had]


def new_to_module(client_keys: Iterable[int], module_id: str) -> set[int]:
    """Of these clients, those who have NOT had the module (the roster's "new to this module" mark)."""
    wanted = set(client_keys)
    if not wanted:
        return set()
    had = {client_key for client_key, _module in _had_rows(wanted, module_id)}
    return wanted - had

"""Which module a group session gets: the next of its track, in sequence, wrapping around.

Groups are open-enrollment, so the track is a cycle: each session takes the module after the one
its group last ran (or was assigned), and a facilitator's choice before the start moves the cycle
on from what was actually chosen.
"""
from __future__ import annotations

from sqlalchemy import select

from curriculum.catalog import catalog
from curriculum.model import Module
from iop.clinic import audit
from iop.store import db
from iop.store.models import AuditEvent, Group, GroupSession, StaffUser

CHOSEN = "session.module_chosen"  # the audit action of a facilitator's choice
LOOK_BACK = 20  # earlier sessions read to find one whose module the catalog still has


class ModuleChoiceRefused(ValueError):
    """A module choice that cannot be made (the message says why, for the facilitator)."""


def next_module(track_modules: list[Module], previous_id: str | None) -> Module | None:
    """The module after `previous_id` in sequence, wrapping to the first; the first when none ran."""
    if not track_modules:
        return None
    ids = [module.id for module in track_modules]
    if previous_id not in ids:
        return track_modules[0]
    return track_modules[(ids.index(previous_id) + 1) % len(track_modules)]


def _group(group_session: GroupSession) -> Group:
    return group_session.group if group_session.group is not None else db.session().get(Group, group_session.group_id)


def previous_module_id(group_session: GroupSession) -> str | None:
    """The module of the group's latest earlier session that ran or was assigned (cancelled ones
    ran nothing), skipping modules the catalog no longer has or that belong to another track."""
    track_ids = {module.id for module in catalog().track_modules(_group(group_session).track)}
    earlier = db.session().scalars(
        select(GroupSession.module_id)
        .where(GroupSession.group_id == group_session.group_id, GroupSession.date < group_session.date,
               GroupSession.status != "cancelled", GroupSession.module_id.is_not(None))
        .order_by(GroupSession.date.desc())
        .limit(LOOK_BACK)
    )
    return next((module_id for module_id in earlier if module_id in track_ids), None)


def assign_next_module(group_session: GroupSession) -> None:
    """Set `group_session.module_id` to the next module of its group's track (None if the track has none)."""
    module = next_module(catalog().track_modules(_group(group_session).track), previous_module_id(group_session))
    group_session.module_id = module.id if module else None


def module_choices(group_session: GroupSession) -> list[Module]:
    """The modules a facilitator may pick for this session: its group's track, in sequence."""
    return catalog().track_modules(_group(group_session).track)


def can_choose_module(group_session: GroupSession) -> bool:
    """Until the facilitator starts the group (doors open 30 minutes early; the module stays open)."""
    return group_session.status in ("scheduled", "open") and group_session.started_at is None


def choose_module(group_session: GroupSession, module_id: str, user: StaffUser | None) -> Module:
    """A facilitator runs another module of the track in this session (before it starts); later
    sessions not yet started follow on from it. Audited; the caller commits."""
    if not can_choose_module(group_session):
        raise ModuleChoiceRefused("This group has already started, so its module can no longer be changed.")
    module = catalog().module(module_id)
    track = _group(group_session).track
    if module is None:
        raise ModuleChoiceRefused("That module is not in the curriculum. Please pick one from the list.")
    if module.track != track:
        raise ModuleChoiceRefused(f"“{module.title}” belongs to another track; this group follows {track}.")
    if group_session.module_id == module.id:
        return module
    audit.record(CHOSEN, target=f"session:{group_session.id}", user=user, module=module.id, previous=group_session.module_id)
    group_session.module_id = module.id
    follow_on_from(group_session)
    return module


def follow_on_from(group_session: GroupSession) -> list[GroupSession]:
    """Re-plan the group's later sessions that have not started, so the cycle continues from what
    `group_session` runs; a later session a facilitator chose for keeps its choice (and the cycle
    continues from that). Returns the sessions whose module changed (the caller commits)."""
    db_session = db.session()
    later = list(db_session.scalars(
        select(GroupSession)
        .where(GroupSession.group_id == group_session.group_id, GroupSession.date > group_session.date,
               GroupSession.status != "cancelled")
        .order_by(GroupSession.date)
    ))
    if not later:
        return []
    chosen = set(db_session.scalars(
        select(AuditEvent.target).where(AuditEvent.action == CHOSEN,
                                        AuditEvent.target.in_([f"session:{s.id}" for s in later]))))
    modules = catalog().track_modules(_group(group_session).track)
    previous, changed = group_session.module_id, []
    for session in later:
        if can_choose_module(session) and f"session:{session.id}" not in chosen:
            module = next_module(modules, previous)
            if module is not None and session.module_id != module.id:
                session.module_id = module.id
                changed.append(session)
        previous = session.module_id
    return changed

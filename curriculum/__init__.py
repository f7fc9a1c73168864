"""The group curriculum: module files per track, their loader and validator, and the rotation."""
from __future__ import annotations


def active_group_lengths():
    """Every active group's code, track and length from the database, or None when there is no
    database to ask (no app context, or no schema yet): the fit check is then skipped."""
    from flask import has_app_context
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from curriculum.validate import GroupLength
    from iop.store import db
    from iop.store.models import Group

    if not has_app_context():
        return None
    db_session = db.session()
    try:
        groups = db_session.scalars(select(Group).where(Group.active.is_(True))).all()
    except SQLAlchemyError:
        db_session.rollback()
        return None
    return [GroupLength(group.code, group.track, group.length_minutes) for group in groups]


def check(root=None) -> tuple[object, list[str], list | None]:
    """Read the files afresh and check them, and the active groups' lengths when a database answers:
    (catalog, problems, groups or None)."""
    from curriculum.catalog import load, tracks_dir
    from curriculum.validate import group_fit_problems

    fresh = load(root or tracks_dir())
    groups = active_group_lengths()
    problems = list(fresh.problems)
    if groups is not None:
        problems += group_fit_problems(fresh, groups)
    return fresh, problems, groups


def check_for_cli() -> tuple[list[str], str]:
    """(problems, summary) for `iop curriculum check`."""
    fresh, problems, groups = check()
    per_track = ", ".join(f"{track}: {len(fresh.track_modules(track))}" for track in sorted(fresh.tracks))
    summary = f"{len(fresh.modules)} modules in {len(fresh.tracks)} tracks are valid ({per_track})"
    if groups is None:
        summary += "; no database, so group lengths were not checked."
    else:
        summary += f"; they fit the {len(groups)} active group(s)."
    return problems, summary

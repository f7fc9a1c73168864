"""The append-only audit log: who did what, to what, when and why."""
from __future__ import annotations

from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from iop.store import db
from iop.store.models import AuditEvent, StaffUser


class AuditLogIsAppendOnly(RuntimeError):
    pass


def record(action: str, target: str = "", user: StaffUser | None = None, **detail) -> AuditEvent:
    """Add an audit event to the current unit of work; it commits with the change it describes.

    `target` names things by opaque id (client:<public_id>, session:<id>), never by name.
    """
    if user is None and has_request_context():
        user = g.get("staff_user")  # the signed-in staff member, as the role check found them
    entry = AuditEvent(
        user_id=user.id if user else None,
        username=user.username if user else "",
        action=action,
        target=target,
        detail=detail,
    )
    db.session().add(entry)
    return entry


@event.listens_for(Session, "before_flush")
def _refuse_rewrites(session: Session, _flush_context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise AuditLogIsAppendOnly("audit events are never changed or removed")

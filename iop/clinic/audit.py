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


# ---- reading the log: actions in words, targets by name (the admin's audit page and its CSV) ---------

ACTIONS = {
    "staff.sign_in": "Signed in",
    "staff.sign_out": "Signed out",
    "staff.sign_in_failed": "Sign-in failed",
    "staff.created": "Added a staff member",
    "staff.deactivated": "Deactivated a staff member",
    "staff.reactivated": "Reactivated a staff member",
    "staff.role_changed": "Changed a staff member's role",
    "staff.password_reset": "Reset a staff member's password",
    "staff.password_changed": "Changed their own password",
    "staff.unlocked": "Lifted a sign-in slow-down",
    "staff.details_changed": "Changed a staff member's name or credentials",
    "board.view": "Viewed the week board",
    "clients.view": "Viewed the client list",
    "client.view": "Viewed a client's page",
    "cards.view": "Viewed the cards page",
    "session.control_view": "Opened a group's control page (its roster)",
    "session.summary_view": "Viewed a session summary",
    "client.created": "Added a client",
    "client.updated": "Changed a client",
    "plan.created": "Added a plan",
    "plan.updated": "Changed a plan",
    "plan.deleted": "Removed a plan",
    "group.created": "Added a group",
    "group.updated": "Changed a group",
    "level_of_care.created": "Added a level of care",
    "level_of_care.updated": "Changed a level of care",
    "attendance.check_in": "Checked a client in by hand",
    "attendance.check_out": "Checked a client out by hand",
    "attendance.check_in_video": "Checked a client in by hand as joining by video",
    "authorization.created": "Added an authorization",
    "authorization.updated": "Changed an authorization",
    "utilization.view": "Viewed the utilization page",
    "attendance.excuse": "Marked a client excused",
    "attendance.correct": "Corrected an attendance",
    "session.start": "Started a group",
    "session.close": "Closed a group",
    "session.module_chosen": "Chose a group's module",
    "session.note_saved": "Saved a group note draft",
    "session.note_signed": "Signed a group note",
    "card.reissue": "Issued a new card",
    "cards.print": "Printed cards",
    "kiosk.enrollment_link": "Made a kiosk setup link",
    "kiosk.enrolled": "Set up a kiosk",
    "kiosk.rename": "Renamed a kiosk",
    "kiosk.revoke": "Revoked a kiosk",
    "kiosk.chime": "Changed a kiosk's chime",
    "curriculum.reload": "Reloaded the curriculum",
    "audit.export": "Downloaded the audit log (CSV)",
    # A refused import: the kind, counts, the first problems' line numbers and codes, never the content.
    "import.failed": "An import was refused",
}
KIND_WORDS = {"hours": "weekly hours", "attendance": "attendance", "days": "billing days", "fhir": "attendance for the EHR",
              "groups": "groups", "clients": "clients and plans", "utilization": "utilization",
              "authorizations": "authorizations"}


def action_words(action: str, detail: dict | None = None) -> str:
    """What happened, in words: "Signed in", "Exported attendance (CSV)"."""
    kind = action.split(".", 1)[1] if "." in action else ""
    fmt = str((detail or {}).get("format", "")).upper()
    if action.startswith("export.") and kind in KIND_WORDS:
        return f"Exported {KIND_WORDS[kind]} ({'FHIR' if kind == 'fhir' else fmt or 'CSV'})"
    if action.startswith("import.") and kind in KIND_WORDS:
        return f"Imported {KIND_WORDS[kind]} (CSV)"
    return ACTIONS.get(action, action.replace(".", ": ").replace("_", " ").capitalize())


def actor_names(user_ids) -> dict[int, str]:
    """Staff names by id, deactivated staff included (their names stay in the log)."""
    from sqlalchemy import select

    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return dict(db.session().execute(select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))).all())


def target_labels(targets) -> dict[str, str]:
    """A readable label for each target ("client:<public id>" -> "Maria Gonzalez (C1001)"), looked up in a
    few queries. For the admin's eyes only (the audit page and its CSV): never for a log line."""
    from sqlalchemy import select

    from iop.store.models import Attendance, Client, Group, GroupSession, KioskDevice

    by_kind: dict[str, set[str]] = {}
    for target in targets:
        kind, _, key = (target or "").partition(":")
        if key:
            by_kind.setdefault(kind, set()).add(key)
    session = db.session()
    labels: dict[str, str] = {}

    def numbers(keys):
        return [int(k) for k in keys if k.isdigit() and len(k) < 12]

    if "client" in by_kind:
        for public_id, first, last, client_id in session.execute(
                select(Client.public_id, Client.first_name, Client.last_name, Client.client_id)
                .where(Client.public_id.in_(sorted(by_kind["client"])))):
            labels[f"client:{public_id}"] = f"{first} {last} ({client_id})"
    if "staff" in by_kind:
        for user_id, name in actor_names(numbers(by_kind["staff"])).items():
            labels[f"staff:{user_id}"] = name
    if "kiosk" in by_kind:
        for public_id, name in session.execute(select(KioskDevice.public_id, KioskDevice.name)
                                               .where(KioskDevice.public_id.in_(sorted(by_kind["kiosk"])))):
            labels[f"kiosk:{public_id}"] = f"Kiosk “{name}”"
    if "group" in by_kind:
        for code, name in session.execute(select(Group.code, Group.name).where(Group.code.in_(sorted(by_kind["group"])))):
            labels[f"group:{code}"] = f"{name} ({code})"
    if "session" in by_kind:
        for session_id, code, day in session.execute(
                select(GroupSession.id, Group.code, GroupSession.date).join(Group, Group.id == GroupSession.group_id)
                .where(GroupSession.id.in_(numbers(by_kind["session"])))):
            labels[f"session:{session_id}"] = f"{code} on {day.isoformat()}"
    if "attendance" in by_kind:
        for record_id, first, last, code, day in session.execute(
                select(Attendance.id, Client.first_name, Client.last_name, Group.code, GroupSession.date)
                .join(Client, Client.id == Attendance.client_key)
                .join(GroupSession, GroupSession.id == Attendance.session_id)
                .join(Group, Group.id == GroupSession.group_id)
                .where(Attendance.id.in_(numbers(by_kind["attendance"])))):
            labels[f"attendance:{record_id}"] = f"{first} {last} at {code} on {day.isoformat()}"
    for key in by_kind.get("level", ()):
        labels[f"level:{key}"] = f"Level of care {key}"
    for kind in ("export", "import"):
        for key in by_kind.get(kind, ()):
            labels[f"{kind}:{key}"] = f"{kind.title()} of {KIND_WORDS.get(key, key)}"
    for target, words in (("cards", "Cards"), ("audit", "The audit log"), ("curriculum", "The curriculum"),
                          ("board", "The week board"), ("clients", "The client list")):
        labels[target] = words
    return labels

"""Staff accounts: roles, usernames, passwords and the sign-in check (no request, no page)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from iop import clock
from iop.clinic import audit
from iop.rules import entry
from iop.store import db
from iop.store.models import ROLES, StaffUser

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8


class StaffError(ValueError):
    """A staff account request a person can fix (the message says how)."""


# ---- accounts -------------------------------------------------------------------------------

def validate_username(username: str) -> str:
    return _entry(entry.username, username, entry.USERNAME)


def _entry(rule, value, field):
    """What a person typed, read by iop.rules.entry; StaffError with its sentence when refused."""
    try:
        return rule(value, field)
    except entry.EntryError as exc:
        raise StaffError(exc.message) from None


def add_user(username: str, password: str, role: str, display_name: str = "", credentials: str = "") -> StaffUser:
    """Create a staff login in the current session (the caller commits)."""
    username = validate_username(username)
    if role not in ROLES:
        raise StaffError(f"The role must be one of {', '.join(ROLES)}.")
    if not password or not password.strip():
        raise StaffError("The password is empty.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    db_session = db.session()
    if db_session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise StaffError(f"The username {username!r} is taken.")
    user = StaffUser(
        username=username,
        display_name=_entry(entry.text, display_name, entry.DISPLAY_NAME) or username,
        credentials=_entry(entry.text, credentials, entry.CREDENTIALS),
        role=role,
        password_hash=generate_password_hash(password),
    )
    db_session.add(user)
    return user


def authenticate(username: str, password: str) -> tuple[StaffUser | None, str]:
    """The user when the password is right and the account may sign in, else None and why."""
    db_session = db.session()
    user = db_session.scalar(select(StaffUser).where(StaffUser.username == (username or "").strip()))
    now = clock.now()
    generic = "That username and password do not match."
    if user is None or not user.active:
        # Spend the same work as a real check, so timing does not tell which usernames exist.
        check_password_hash(_DUMMY_HASH, password or "")
        return None, generic
    if user.locked_until and user.locked_until > now:
        return None, "Too many tries. This account is paused for 15 minutes; ask an admin if it is urgent."
    if not check_password_hash(user.password_hash, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record("staff.locked", target=f"staff:{user.id}", user=user)
        db_session.commit()
        return None, generic
    user.failed_logins = 0
    user.locked_until = None
    return user, ""


_DUMMY_HASH = generate_password_hash("not-a-real-password")


def has_role(user: StaffUser | None, minimum: str) -> bool:
    return user is not None and ROLE_RANK.get(user.role, 0) >= ROLE_RANK[minimum]

"""Staff accounts: roles, usernames, passwords, the sign-in check, and the changes an admin makes
(add, deactivate, reactivate, set a role, reset a password, lift a sign-in slow-down, edit the name
and credentials that sign group notes). No request, no page: the Staff page and `iop user` call these.

Accounts are never deleted: a deactivated account cannot sign in and keeps its name on notes and in
the audit log. Every change is audited; a password change, a role change and deactivation end every
session of that person at once (their open screens close within seconds, iop.live.realtime)."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from iop.clinic import audit, sign_in_throttle, staff_sessions
from iop.rules import entry
from iop.store import db
from iop.store.models import ROLES, StaffUser

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
# NIST SP 800-63B: at least 8 characters, more where the stakes are higher; no composition rules; long
# passphrases welcome; refuse what is common, expected or tied to the account.
MIN_PASSWORD_LENGTH = {"facilitator": 10, "coordinator": 10, "admin": 12}
MAX_PASSWORD_LENGTH = 256
# zxcvbn's estimate of the guesses an attacker needs: under 10^8 ("score" below 3) is a common password,
# a word with a year or digits, a keyboard run, a repeat or a sequence.
MIN_GUESSES_SCORE = 3
WRONG = "That username and password do not match."


class StaffError(ValueError):
    """A staff account request a person can fix (the message says how); `code` for programs."""

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.code = code


# ---- what people type ---------------------------------------------------------------------------

def validate_username(username: str) -> str:
    return _entry(entry.username, username, entry.USERNAME)


def checked_display_name(value: str) -> str:
    name = _entry(entry.text, value, entry.DISPLAY_NAME)
    if not name:
        raise StaffError("The name is needed (it signs group notes).", "name_needed")
    return name


def checked_credentials(value: str) -> str:
    return _entry(entry.text, value, entry.CREDENTIALS)


def _entry(rule, value, field):
    """What a person typed, read by iop.rules.entry (the one set of rules for typed text); StaffError
    with its sentence and code when refused."""
    try:
        return rule(value, field)
    except entry.EntryError as exc:
        raise StaffError(exc.message, exc.code) from None


def check_password(password: str, username: str, role: str) -> None:
    """NIST SP 800-63B's checks for a new password; StaffError says which one failed."""
    shortest = MIN_PASSWORD_LENGTH.get(role, max(MIN_PASSWORD_LENGTH.values()))
    if not password or not password.strip():
        raise StaffError("The password is empty.", "password_empty")
    if len(password) < shortest:
        raise StaffError(f"The password needs at least {shortest} characters"
                         f"{' for an admin' if role == 'admin' else ''}. A few words make a good one.",
                         "password_too_short")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"The password is too long (at most {MAX_PASSWORD_LENGTH} characters).", "password_too_long")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise StaffError("The password has a character that cannot be typed.", "password_unprintable")
    if username and username.lower() in password.lower():
        raise StaffError("The password may not contain the username.", "password_has_username")
    if _too_easy(password, username):
        raise StaffError("That password is too common or easy to guess (a known password, a word with a year "
                         "or digits, a keyboard run or a repeat). Try a few unrelated words.", "password_common")


def _too_easy(password: str, username: str) -> bool:
    """A common password (zxcvbn's list of the 30,000 most used) or one guessed in under 10^8 tries."""
    from zxcvbn import zxcvbn
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    if password.lower() in _COMMON.setdefault("passwords", frozenset(FREQUENCY_LISTS["passwords"])):
        return True
    # zxcvbn reads at most 72 characters (its matching grows with the length): enough to judge a password.
    return zxcvbn(password[:72], user_inputs=[username, "iop", "kiosk", "clinic"])["score"] < MIN_GUESSES_SCORE


_COMMON: dict[str, frozenset] = {}


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffError(f"The role must be one of {', '.join(ROLES)}.", "role_invalid")
    return role


# ---- accounts -------------------------------------------------------------------------------

def find(username: str) -> StaffUser:
    user = db.session().scalar(select(StaffUser).where(StaffUser.username == (username or "").strip()))
    if user is None:
        raise StaffError(f"There is no staff login {username!r}.", "unknown_user")
    return user


def member(user_id: int) -> StaffUser | None:
    """The account with this key, or None."""
    return db.session().get(StaffUser, user_id)


def everyone() -> list[StaffUser]:
    """Every account, active first, by name."""
    return list(db.session().scalars(select(StaffUser).order_by(StaffUser.active.desc(),
                                                                 func.lower(StaffUser.display_name))))


def add_user(username: str, password: str, role: str, display_name: str = "", credentials: str = "",
             by_user: StaffUser | None = None) -> StaffUser:
    """Create a staff login in the current session (the caller commits); audited."""
    username = validate_username(username)
    _check_role(role)
    display_name = checked_display_name(display_name or username)
    credentials = checked_credentials(credentials)
    db_session = db.session()
    if db_session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise StaffError(f"The username {username!r} is taken.", "username_taken")
    check_password(password, username, role)
    user = StaffUser(username=username, display_name=display_name, credentials=credentials, role=role,
                     password_hash=generate_password_hash(password))
    db_session.add(user)
    db_session.flush()
    _audit("staff.created", user, by_user, role=role)
    return user


def _audit(action: str, user: StaffUser, by_user: StaffUser | None, **detail) -> None:
    if by_user is None:
        detail["via"] = "cli"
    audit.record(action, target=f"staff:{user.id}", user=by_user, **detail)


def _active_admins() -> int:
    return db.session().scalar(select(func.count()).select_from(StaffUser)
                               .where(StaffUser.role == "admin", StaffUser.active.is_(True))) or 0


def _keep_an_admin(user: StaffUser, by_user: StaffUser | None) -> None:
    """Never leave the program without an active admin, and never lock yourself out by mistake."""
    if by_user is not None and by_user.id == user.id:
        raise StaffError("You cannot do this to your own account; ask another admin.", "own_account")
    if user.role == "admin" and user.active and _active_admins() <= 1:
        raise StaffError("This is the only active admin: make someone else an admin first.", "last_admin")


def deactivate(user: StaffUser, by_user: StaffUser | None, now: datetime) -> int:
    """The account can no longer sign in; every session ends. How many sessions were ended."""
    if not user.active:
        raise StaffError(f"{user.display_name} is already deactivated.", "already_deactivated")
    _keep_an_admin(user, by_user)
    user.active = False
    ended = staff_sessions.end_all(user.id, now, "deactivated")
    _audit("staff.deactivated", user, by_user, sessions_ended=ended)
    return ended


def reactivate(user: StaffUser, by_user: StaffUser | None) -> None:
    if user.active:
        raise StaffError(f"{user.display_name} is already active.", "already_active")
    user.active = True
    _audit("staff.reactivated", user, by_user)


def set_role(user: StaffUser, role: str, by_user: StaffUser | None, now: datetime) -> int:
    """A new role; every session of that person ends (they sign in again with it)."""
    _check_role(role)
    if role == user.role:
        raise StaffError(f"{user.display_name} is already a {role}.", "same_role")
    if user.role == "admin":
        _keep_an_admin(user, by_user)
    old, user.role = user.role, role
    ended = staff_sessions.end_all(user.id, now, "role")
    _audit("staff.role_changed", user, by_user, old=old, new=role, sessions_ended=ended)
    return ended


def reset_password(user: StaffUser, password: str, by_user: StaffUser | None, now: datetime) -> int:
    """An admin (or the command line) sets a new password; every session of that person ends."""
    check_password(password, user.username, user.role)
    user.password_hash = generate_password_hash(password)
    ended = staff_sessions.end_all(user.id, now, "password")
    _audit("staff.password_reset", user, by_user, sessions_ended=ended)
    return ended


def change_own_password(user: StaffUser, current: str, password: str, now: datetime) -> None:
    """A person changes their own password (knowing the current one); every session of theirs ends."""
    if not check_password_hash(user.password_hash, current or ""):
        raise StaffError("The current password is not right.", "wrong_password")
    if current == password:
        raise StaffError("The new password is the same as the current one.", "same_password")
    check_password(password, user.username, user.role)
    user.password_hash = generate_password_hash(password)
    ended = staff_sessions.end_all(user.id, now, "password")
    audit.record("staff.password_changed", target=f"staff:{user.id}", user=user, sessions_ended=ended)


def unlock(user: StaffUser, by_user: StaffUser | None) -> int:
    """Lift the sign-in slow-down of this username, from every address; how many counts were cleared."""
    cleared = sign_in_throttle.lift(user.username)
    _audit("staff.unlocked", user, by_user, cleared=cleared)
    return cleared


def edit_details(user: StaffUser, display_name: str, credentials: str, by_user: StaffUser | None) -> list[str]:
    """The name and credentials that sign group notes; the fields that changed (audited)."""
    wanted = {"display_name": checked_display_name(display_name), "credentials": checked_credentials(credentials)}
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    if changed:
        old = {name: getattr(user, name) for name in changed}
        for name in changed:
            setattr(user, name, wanted[name])
        _audit("staff.details_changed", user, by_user, fields=changed, old=old)
    return changed


# ---- signing in -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SignIn:
    """What a sign-in try came to: the user, or the words and code for the person (the same for a
    username that exists and one that does not)."""

    user: StaffUser | None
    code: str = ""
    message: str = ""
    wait_seconds: int = 0


def sign_in(username: str, password: str, address: str, now: datetime) -> SignIn:
    """Check a sign-in try; failures are counted (the slow-down) and audited. Commits its own writes."""
    tried = (username or "").strip()[:64]
    wait = sign_in_throttle.seconds_to_wait(tried, address, now)
    if wait:
        with db.transaction():
            known = db.session().scalar(select(StaffUser).where(StaffUser.username == tried)) if tried else None
            _failed(tried, address, known, "slowed_down")
        return SignIn(None, "too_many_tries", f"Too many tries. Please wait {_wait_words(wait)}, then try again.",
                      wait)
    user = db.session().scalar(select(StaffUser).where(StaffUser.username == tried)) if tried else None
    if user is None or not user.active:
        # The same work as a real check, so the time taken does not tell which usernames exist.
        check_password_hash(_DUMMY_HASH, password or "")
        right = False
    else:
        right = check_password_hash(user.password_hash, password or "")
    with db.transaction():
        if right:
            sign_in_throttle.forget_pair(tried, address)
        else:
            sign_in_throttle.count_failure(tried, address, now)
            _failed(tried, address, user, "deactivated" if user is not None and not user.active
                    else "wrong_password" if user is not None else "unknown_username")
    return SignIn(user) if right else SignIn(None, "wrong_password", WRONG)


def _failed(tried: str, address: str, user: StaffUser | None, why: str) -> None:
    """A failed sign-in in the audit log: the username tried and the address, never the password."""
    audit.record("staff.sign_in_failed", target=f"staff:{user.id}" if user is not None else "", user=None,
                 username_tried=tried, address=address, why=why)


def _wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


_DUMMY_HASH = generate_password_hash("not-a-real-password")


def has_role(user: StaffUser | None, minimum: str) -> bool:
    return user is not None and ROLE_RANK.get(user.role, 0) >= ROLE_RANK[minimum]

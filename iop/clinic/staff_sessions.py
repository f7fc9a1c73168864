"""Staff sign-ins held on the server (no request, no page): begun at sign-in, found again from the
cookie's token on each request, ended for good at sign-out, after idle time, and for every browser
of a person at once when their password or role changes or they are deactivated.

A session is live while it has not ended, its person is active, and it was seen within the idle time.
Sockets follow the same rule (iop.live.realtime checks the live sessions of the screens it holds)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from iop.store import db
from iop.store.models import StaffSession, StaffUser

# Seen-times are written at most this often: an idle time-out of 15 minutes needs no finer clock, and
# a staff page's requests (its scripts, its keepalive) then cost no write each.
TOUCH_EVERY = timedelta(seconds=30)
# However active, a sign-in lasts at most a working day (a clinic's evening group included); then the
# person signs in again (OWASP ASVS 3.3.2: 12 hours, or 30 minutes idle at Level 2; ours is 15).
LONGEST = timedelta(hours=12)

ENDED_BY = {
    "sign_out": "Signed out",
    "idle": "Signed out after idle time",
    "expired": "Signed out after 12 hours",
    "password": "Password changed",
    "role": "Role changed",
    "deactivated": "Account deactivated",
}


def idle_time() -> timedelta:
    """How long a session may go unused (IOP's idle sign-out, 15 minutes by default)."""
    from flask import current_app

    return timedelta(minutes=current_app.config["IDLE_SIGNOUT_MINUTES"])


def new_token() -> str:
    return secrets.token_urlsafe(32)


def key_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def begin(user: StaffUser, now: datetime, address: str = "") -> str:
    """A new session for `user` in the current unit of work; the token for the browser's cookie."""
    token = new_token()
    db.session().add(StaffSession(id=key_of(token), user_id=user.id, created_at=now, last_seen_at=now,
                                  address=address[:64]))
    return token


def find(token: str | None) -> tuple[StaffSession, StaffUser] | None:
    """The session the token names and its person, when it has not ended (idle time is the caller's)."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    found = db.session().execute(
        select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.id == key_of(token), StaffSession.ended_at.is_(None))).first()
    return (found[0], found[1]) if found else None


def idle_since(staff_session: StaffSession, now: datetime, idle: timedelta) -> bool:
    return now - staff_session.last_seen_at > idle


def why_over(staff_session: StaffSession, now: datetime, idle: timedelta) -> str | None:
    """"idle" or "expired" when the session may no longer be used, else None."""
    if now - staff_session.created_at > LONGEST:
        return "expired"
    return "idle" if idle_since(staff_session, now, idle) else None


def touch(staff_session: StaffSession, now: datetime) -> None:
    """Note activity (at most every TOUCH_EVERY), in its own short write."""
    if now - staff_session.last_seen_at < TOUCH_EVERY:
        return
    with db.transaction() as db_session:
        db_session.execute(update(StaffSession).where(StaffSession.id == staff_session.id,
                                                      StaffSession.ended_at.is_(None))
                           .values(last_seen_at=now))
    staff_session.last_seen_at = now


def end(staff_session_key: str, now: datetime, reason: str) -> None:
    """End one session (sign-out, idle) in the current unit of work."""
    db.session().execute(update(StaffSession).where(StaffSession.id == staff_session_key,
                                                    StaffSession.ended_at.is_(None))
                         .values(ended_at=now, end_reason=reason))


def end_all(user_id: int, now: datetime, reason: str) -> int:
    """End every open session of a person (password or role change, deactivation) in the current unit
    of work; their open screens are closed once it commits (iop.live.realtime.close_staff_screens)."""
    result = db.session().execute(update(StaffSession).where(StaffSession.user_id == user_id,
                                                             StaffSession.ended_at.is_(None))
                                  .values(ended_at=now, end_reason=reason))
    return result.rowcount or 0


def live_keys(keys: list[str], now: datetime, idle: timedelta) -> set[str]:
    """Of these sessions, those still live: not ended, their person active, seen within the idle time, begun
    within LONGEST."""
    if not keys:
        return set()
    return set(db.session().scalars(
        select(StaffSession.id).join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(db.one_of(StaffSession.id, "keys"), StaffSession.ended_at.is_(None),
               StaffSession.last_seen_at >= now - idle, StaffSession.created_at >= now - LONGEST,
               StaffUser.active.is_(True)),
        {"keys": keys}))


def last_sign_ins() -> dict[int, datetime]:
    """When each person last signed in (the Staff page)."""
    from sqlalchemy import func

    return dict(db.session().execute(select(StaffSession.user_id, func.max(StaffSession.created_at))
                                     .group_by(StaffSession.user_id)).all())

"""The sign-in slow-down: failed sign-ins make the next try wait, counted for the username tried from
one address together, and for the address alone. Never a lock on the account itself: a stranger
elsewhere who types someone's username slows only their own tries (from their own address), and an
admin can lift the slow-down of a username at once (audited).

The counts live in the database (sign_in_throttle), so every server process sees the same ones. The
same rules apply to a username that exists and one that does not: the answer never tells which."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from iop.store import db
from iop.store.models import SignInThrottle


@dataclass(frozen=True)
class Rule:
    free: int  # failures allowed before any wait
    longest: timedelta  # the wait never grows beyond this


# A person mistyping gets five tries; then waits of 2 s, 4 s, 8 s ... up to 15 minutes for that
# username from that address. An address trying many usernames (password spraying) gets twenty, then
# waits up to 5 minutes: a clinic's staff behind one address rarely fail twenty times within an hour.
PAIR = Rule(free=5, longest=timedelta(minutes=15))
ADDRESS = Rule(free=20, longest=timedelta(minutes=5))
FORGET_AFTER = timedelta(hours=1)  # an hour without failures starts the count again


def wait_after(failures: int, rule: Rule) -> timedelta:
    """How long the next try waits after `failures` failures in a row (pure)."""
    over = failures - rule.free
    if over <= 0:
        return timedelta(0)
    return min(rule.longest, timedelta(seconds=2 ** min(over, 20)))


def normal_username(username: str) -> str:
    return (username or "").strip().lower()[:64]


def _keys(username: str, address: str) -> dict[str, tuple[Rule, str]]:
    pair = hashlib.sha256(f"{normal_username(username)}\0{address}".encode("utf-8", "replace")).hexdigest()
    return {f"pair:{pair}": (PAIR, normal_username(username)), f"address:{address[:70]}": (ADDRESS, "")}


def seconds_to_wait(username: str, address: str, now: datetime) -> int:
    """Whole seconds before this username may be tried from this address again (0: now)."""
    keys = list(_keys(username, address))
    waits = db.session().scalars(select(SignInThrottle.wait_until).where(db.one_of(SignInThrottle.key, "keys"),
                                                                         SignInThrottle.wait_until > now),
                                 {"keys": keys})
    longest = max((until - now for until in waits), default=timedelta(0))
    return int(-(-longest.total_seconds() // 1))  # rounded up


def count_failure(username: str, address: str, now: datetime) -> None:
    """One more failure for both counts, in the current unit of work (the caller commits)."""
    db_session = db.session()
    for key, (rule, name) in _keys(username, address).items():
        _insert_if_missing(key, name, now)
        row = db_session.scalar(select(SignInThrottle).where(SignInThrottle.key == key).with_for_update())
        row.failures = 1 if now - row.last_failure_at > FORGET_AFTER else row.failures + 1
        row.last_failure_at = now
        row.wait_until = now + wait_after(row.failures, rule) if row.failures > rule.free else None


def _insert_if_missing(key: str, username: str, now: datetime) -> None:
    """The row, made by whichever process comes first (two processes failing at once both succeed)."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    db_session = db.session()
    insert = postgresql_insert if db_session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db_session.execute(insert(SignInThrottle).values(key=key, username=username, failures=0, last_failure_at=now)
                       .on_conflict_do_nothing(index_elements=["key"]))


def forget_pair(username: str, address: str) -> None:
    """A successful sign-in clears that username's count from that address (not the address's own)."""
    pair_key = next(iter(_keys(username, address)))
    db.session().execute(delete(SignInThrottle).where(SignInThrottle.key == pair_key))


def lift(username: str) -> int:
    """An admin lifts the slow-down of a username from every address; how many counts were cleared."""
    result = db.session().execute(delete(SignInThrottle).where(SignInThrottle.username == normal_username(username)))
    return result.rowcount or 0


def slowed_usernames(now: datetime) -> set[str]:
    """Usernames made to wait right now (the Staff page shows them, with "Lift")."""
    return set(db.session().scalars(select(SignInThrottle.username).where(SignInThrottle.username != "",
                                                                          SignInThrottle.wait_until > now)))

"""The kiosk scan: one card, one answer, at most one attendance (docs/interface.md, POST /kiosk/api/scan).

A scan is written in one transaction together with its `Scan` row, whose primary key is the
kiosk's scan_id: a retry of the same scan_id collides on that key and gets the stored answer, so
it is counted once however the retries race. Parallel scans of one card with different scan_ids
meet the partial unique index on unvoided attendance, and the losers answer already_checked_in.

Decisions (README "Kiosk"):
- A second scan at least REPEAT_SCAN_MINUTES after the check-in checks out (rule 2); sooner, it
  answers already_checked_in and writes nothing.
- A scan after the check-out of the same session answers the error `already_checked_out` ("see
  staff"): a check-out is never reopened or moved by the kiosk, and no second attendance is made.
- Offline scans carry `scanned_at`: up to OFFLINE_SCAN_MAX_AGE_HOURS old, never more than
  CLOCK_SKEW in the future; the session is looked up and the attendance recorded at that time.
  A check-in replayed after its session closed is recorded and checked out at the close (rule 2).
- Bad cards (unknown or revoked) from one kiosk are slowed: after BAD_SCANS_PER_MINUTE in a
  minute, every scan from that kiosk answers too_many_attempts for COOL_DOWN. The count lives in
  the process (app.extensions), so it costs no database write or query on the fast path; with
  several server processes each counts its own, which still slows a brute-force run.
"""
from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from iop import clock
from iop.clinic import attendance, cards, kiosks
from iop.clock import local_date, program_tz
from iop.rules import hours
from iop.store import db, hours_queries
from iop.store.models import Client, KioskDevice, Scan

log = logging.getLogger(__name__)

SCAN_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_CODE_LENGTH = 200
CLOCK_SKEW = timedelta(seconds=60)
BAD_SCANS_PER_MINUTE = 5
COOL_DOWN = timedelta(seconds=30)
BAD_CARD_CODES = frozenset({"unknown_card", "revoked_card"})

# The HTTP status of each answer; the words for the person live in the kiosk's catalogues.
STATUS = {
    "checked_in": 200,
    "checked_out": 200,
    "already_checked_in": 200,
    "bad_request": 400,
    "scanned_at_invalid": 422,
    "not_enrolled": 403,
    "inactive_client": 403,
    "unknown_card": 404,
    "revoked_card": 410,
    "no_session_now": 409,
    "already_checked_out": 409,
    "see_staff": 409,
    "too_large": 413,
    "too_many_attempts": 429,
}


@dataclass
class ScanRequest:
    code: str
    scan_id: str
    scanned_at: datetime | None = None


@dataclass
class ScanAnswer:
    """The HTTP status and JSON body (errors carry only the code; the view adds the words)."""

    status: int
    body: dict
    session_id: int | None = None  # set when a fresh answer changed a roster: publish after commit
    client_key: int | None = None

    @property
    def code(self) -> str:
        return self.body["error"]["code"] if "error" in self.body else self.body["result"]


class ScanRefused(ValueError):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def refusal(code: str, client_key: int | None = None) -> ScanAnswer:
    return ScanAnswer(STATUS[code], {"error": {"code": code}}, client_key=client_key)


# ---- the request -----------------------------------------------------------------------------

def parse_request(data: object) -> ScanRequest:
    """The scan as sent, checked at the edge; ScanRefused('bad_request'|'scanned_at_invalid')."""
    if not isinstance(data, dict):
        raise ScanRefused("bad_request")
    code, scan_id, scanned_at = data.get("code"), data.get("scan_id"), data.get("scanned_at")
    if not isinstance(code, str) or not isinstance(scan_id, str) or not SCAN_ID.match(scan_id):
        raise ScanRefused("bad_request")
    when = None
    if scanned_at is not None:
        if not isinstance(scanned_at, str) or len(scanned_at) > 40:
            raise ScanRefused("scanned_at_invalid")
        try:
            when = datetime.fromisoformat(scanned_at.strip())
        except ValueError:
            raise ScanRefused("scanned_at_invalid") from None
        if when.tzinfo is None:  # a wall-clock time without a zone could be anything
            raise ScanRefused("scanned_at_invalid")
        when = when.astimezone(timezone.utc)
    return ScanRequest(code=code.strip()[: MAX_CODE_LENGTH + 1], scan_id=scan_id, scanned_at=when)


def scan_time(scanned_at: datetime | None, now: datetime) -> datetime:
    """When the scan happened: now for an online scan, the kiosk's time for a replayed one.

    Raises ScanRefused('scanned_at_invalid') for a time in the future beyond clock skew or
    older than OFFLINE_SCAN_MAX_AGE_HOURS."""
    if scanned_at is None:
        return now
    oldest = now - timedelta(hours=current_app.config["OFFLINE_SCAN_MAX_AGE_HOURS"])
    if scanned_at > now + CLOCK_SKEW or scanned_at < oldest:
        raise ScanRefused("scanned_at_invalid")
    return min(scanned_at, now)


# ---- bad-scan slow-down ------------------------------------------------------------------------

@dataclass
class BadScanLimiter:
    per_minute: int = BAD_SCANS_PER_MINUTE
    cool_down: timedelta = COOL_DOWN
    _bad: dict[int, deque] = field(default_factory=dict)
    _until: dict[int, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, kiosk_id: int, now: datetime) -> bool:
        with self._lock:
            until = self._until.get(kiosk_id)
            if until is not None and now >= until:
                del self._until[kiosk_id]
                return False
            return until is not None

    def note_bad(self, kiosk_id: int, now: datetime) -> None:
        with self._lock:
            recent = self._bad.setdefault(kiosk_id, deque())
            recent.append(now)
            while recent and now - recent[0] > timedelta(minutes=1):
                recent.popleft()
            if len(recent) >= self.per_minute:
                self._until[kiosk_id] = now + self.cool_down
                recent.clear()


def limiter() -> BadScanLimiter:
    app = current_app._get_current_object()
    found = app.extensions.get("iop.scan_limiter")
    if found is not None:
        return found
    with _PER_APP_LOCK:
        return app.extensions.setdefault("iop.scan_limiter", BadScanLimiter(
            per_minute=app.config.get("KIOSK_BAD_SCANS_PER_MINUTE", BAD_SCANS_PER_MINUTE),
            cool_down=timedelta(seconds=app.config.get("KIOSK_BAD_SCAN_COOL_DOWN_SECONDS",
                                                       COOL_DOWN.total_seconds()))))


_PER_APP_LOCK = threading.Lock()


# ---- the use case ------------------------------------------------------------------------------
# A scan's whole cost is on the kiosk's wait and on every other kiosk's (one server, few cores), so
# the path is lean: one transaction of a few plain statements on indexed rows, nothing read twice,
# no ORM objects, and the roster pushed after the answer by the roster's publisher.

def record_scan(kiosk_id: int, request: ScanRequest) -> ScanAnswer:
    """Answer one scan from an enrolled kiosk, writing at most one check-in or check-out.

    What needs no database is checked here (the bad-card slow-down, the scan's time, the card's
    signature); the rest is written by the process's scan writer (ScanWriter), which answers
    after its transaction commits. A scan_id seen before gets its stored answer."""
    now = clock.now()
    if limiter().blocked(kiosk_id, now):
        return _stored_answer(request.scan_id, kiosk_id) or refusal("too_many_attempts")
    try:
        at = scan_time(request.scanned_at, now)
    except ScanRefused as exc:
        at, early = now, refusal(exc.code)
    else:
        early = None
    token = None
    if early is None:
        try:
            token = cards.read_card(request.code)
        except cards.CardError:
            early = refusal("unknown_card")
    db.end_snapshot()  # what the writer commits is seen by this request next
    answer = writer().write(PendingScan(kiosk_id, request.scan_id, token, early, at, now))
    if answer.code in BAD_CARD_CODES:
        limiter().note_bad(kiosk_id, now)
    if answer.session_id is not None:
        _publish(answer.session_id)
    return answer


# ---- the scan writer -----------------------------------------------------------------------------
# Twenty kiosks scanning at once used to mean twenty request threads queueing for the database's one
# writer, each with its own transaction: most of a scan's cost was the queue (threads woken and put
# back to sleep, a BEGIN and COMMIT each). Instead one thread a process writes the scans, in arrival
# order, several to a transaction when they arrive together; every kiosk still gets its answer only
# once its scan is committed.

def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class PendingScan:
    """A scan checked at the edge, waiting for the writer; `answer` or `error` once it is written."""

    kiosk_id: int
    scan_id: str
    token: cards.CardToken | None
    early: ScanAnswer | None  # the refusal already decided (bad time, bad card), stored like any answer
    at: datetime
    now: datetime
    answer: ScanAnswer | None = None
    error: BaseException | None = None
    # Held until the writer is done with the scan; its request waits by acquiring it. (A plain lock:
    # a threading.Event, made and waited on for every scan, cost a few percent of the server's time.)
    done: threading.Lock = field(default_factory=_held_lock)


class ScanWriter:
    """Per app: one thread writing the pending scans in arrival order, up to BATCH a transaction
    (measured on PostgreSQL too: a second or third writer thread only added contention).

    A batch is written optimistically in one transaction. When any of its scans meets what only a
    race produces (a unique key taken by a parallel retry or another process, a kiosk revoked
    meanwhile), the batch is rolled back and each of its scans is written alone, with the
    retries it needs, so no scan's answer depends on another's. A database error (unreachable)
    is raised in every waiting request, which answers the kiosk try_again (it queues the scan)."""

    BATCH = 32
    IDLE_SECONDS = 2.0  # the thread ends after this long without scans (started again on demand)
    # Under load (the last batch had company), wait this long for more scans before writing: the
    # kiosks just answered are sending their next scans, and one transaction for them all costs
    # less than two (PostgreSQL's commit_delay, for the same reason). A lone scan never waits.
    LINGER_SECONDS = 0.002

    def __init__(self, app):
        self.app = app
        self.lock = threading.Condition()
        self.pending: deque[PendingScan] = deque()
        self.running = False

    def write(self, scan: PendingScan) -> ScanAnswer:
        with self.lock:
            self.pending.append(scan)
            if self.running:
                self.lock.notify()
            else:
                self.running = True
                threading.Thread(target=self._run, name="iop-scan-writer", daemon=True).start()
        scan.done.acquire()
        if scan.error is not None:
            raise scan.error
        return scan.answer

    def _run(self) -> None:
        last = 0
        while True:
            with self.lock:
                if not self.pending:
                    self.lock.wait(self.IDLE_SECONDS)
                if not self.pending:
                    self.running = False
                    return
                if last > 1:
                    until = time.monotonic() + self.LINGER_SECONDS
                    while len(self.pending) < self.BATCH and (left := until - time.monotonic()) > 0:
                        self.lock.wait(left)
                batch = [self.pending.popleft() for _ in range(min(self.BATCH, len(self.pending)))]
                last = len(batch)
            try:
                with self.app.app_context():
                    self._write(batch)
            except BaseException as exc:  # noqa: BLE001  (never leave a kiosk waiting)
                log.exception("scan writer failed")
                for scan in batch:
                    if scan.answer is None and scan.error is None:
                        scan.error = exc
            finally:
                for scan in batch:
                    scan.done.release()

    def _write(self, batch: list[PendingScan]) -> None:
        if len(batch) > 1 and len({scan.scan_id for scan in batch}) == len(batch):
            try:
                answers = _commit(batch)
            except (IntegrityError, _KioskRevoked):
                pass  # rolled back: each scan again, alone (a scan_id sent twice meanwhile goes alone too)
            except Exception as exc:  # noqa: BLE001  (unreachable database: every kiosk is told to retry)
                for scan in batch:
                    scan.error = exc
                return
            else:
                for scan, answer in zip(batch, answers):
                    scan.answer = answer
                return
        for scan in batch:
            try:
                scan.answer = _write_alone(scan)
            except Exception as exc:  # noqa: BLE001  (told to the scan's own request)
                scan.error = exc


def writer() -> ScanWriter:
    app = current_app._get_current_object()
    found = app.extensions.get("iop.scan_writer")
    if found is None:
        with _PER_APP_LOCK:
            found = app.extensions.setdefault("iop.scan_writer", ScanWriter(app))
    return found


def _commit(scans: list[PendingScan]) -> list[ScanAnswer]:
    """The scans written and committed in one transaction, with their kiosks' last_seen_at."""
    with db.transaction():
        answers = _write_scans(scans)
        seen = _note_kiosks_seen(scans)
    for kiosk_id, now in seen:
        kiosks.note_seen(kiosk_id, now)
    return answers


def _write_scans(scans: list[PendingScan]) -> list[ScanAnswer]:
    """The scans (distinct scan_ids) in the caller's transaction, in arrival order: each decided and
    its attendance written, then the greetings' weeks read for all of them at once (as the
    transaction leaves them), then every new scan's row in one statement. _KioskRevoked when a
    kiosk was revoked meanwhile (nothing of it may be written: the caller rolls back)."""
    if len(scans) > 1:
        known, near, check_ins = _known_ids(scans), _sessions_near(scans), attendance.CheckIns()
        outcomes = [_decision(scan, known, near, check_ins) for scan in scans]
        check_ins.flush()
    else:
        outcomes = [_decision(scan) for scan in scans]
    bodies = iter(success_bodies([o for o in outcomes if isinstance(o, Greeting)], max(scan.now for scan in scans)))
    answers, new = [], []
    for scan, outcome in zip(scans, outcomes):
        if outcome is None:  # the scan_id is known: a retry, answered as before
            answers.append(_stored_answer(scan.scan_id, scan.kiosk_id))
            continue
        if isinstance(outcome, Greeting):
            outcome = ScanAnswer(200, next(bodies), session_id=outcome.session_id, client_key=outcome.client_key)
        answers.append(outcome)
        new.append((scan, outcome))
    if new and not _store(new):
        raise _KioskRevoked
    return answers


def _decision(scan: PendingScan, known: set[str] | None = None,
              near: dict[int, attendance.SessionsNear] | None = None,
              check_ins: attendance.CheckIns | None = None) -> ScanAnswer | Greeting | None:
    """The scan decided (None: its scan_id is known). `known`, `near` and `check_ins`: what a batch
    read for all its scans at once (the scan_ids stored before, the sessions near its clients) and
    its check-ins waiting to be written (written first when this scan reads on its own)."""
    if known is not None and scan.scan_id in known:
        return None
    if scan.early is not None:
        return scan.early if known is not None or not _known(scan.scan_id) else None
    if near and scan.token.client_key in near:
        return _decide(scan.token, scan.scan_id, scan.at, near[scan.token.client_key], check_ins)
    if check_ins is not None:
        check_ins.flush()
    return _decide(scan.token, scan.scan_id, scan.at, check_ins=check_ins)


@functools.cache
def _known_ids_statement():
    scan_id = Scan.__table__.c.scan_id
    return select(scan_id).where(db.one_of(scan_id, "scan_ids"))


def _known_ids(scans: list[PendingScan]) -> set[str]:
    """Which of the batch's scan_ids were stored before (one query)."""
    return set(db.session().connection().execute(_known_ids_statement(),
                                                  {"scan_ids": [scan.scan_id for scan in scans]}).scalars())


def _sessions_near(scans: list[PendingScan]) -> dict[int, attendance.SessionsNear]:
    """For a batch: the sessions near each client scanned once in it on the batch's day, in one query
    (a client scanned twice is read again for the second scan, after the first one's writes)."""
    tz = program_tz()
    live = [scan for scan in scans if scan.early is None]
    if len(live) < 2:
        return {}
    day = local_date(live[0].at, tz)
    counts: dict[int, int] = {}
    for scan in live:
        counts[scan.token.client_key] = counts.get(scan.token.client_key, 0) + 1
    once = [scan for scan in live if counts[scan.token.client_key] == 1 and local_date(scan.at, tz) == day]
    if not once:
        return {}
    earliest = min(scan.at for scan in once)
    near = attendance.clients_sessions_near(sorted(scan.token.client_key for scan in once), earliest)[0]
    return {client_key: sessions for client_key, sessions in near.items() if sessions.day == day}


def _note_kiosks_seen(batch: list[PendingScan]) -> list[tuple[int, datetime]]:
    """Write last_seen_at of the batch's kiosks that are due (once a minute each)."""
    latest: dict[int, datetime] = {}
    for scan in batch:
        latest[scan.kiosk_id] = max(scan.now, latest.get(scan.kiosk_id, scan.now))
    seen = [(kiosk_id, now) for kiosk_id, now in latest.items() if kiosks.seen_due(kiosk_id, now)]
    for kiosk_id, now in seen:
        _note_kiosk_seen(kiosk_id, now)
    return seen


def _write_alone(scan: PendingScan) -> ScanAnswer:
    """One scan in its own transaction. The scan's row is written last: a retry racing its original
    collides on the key, the whole transaction rolls back, and the stored answer is given."""
    for attempt in range(3):
        try:
            # One short transaction (on SQLite it holds the write lock): everything it reads is a few
            # indexed rows, and reading them in a transaction of their own first cost more (its own
            # BEGIN and COMMIT) than holding the lock for them.
            return _commit([scan])[0]
        except _KioskRevoked:
            kiosks.forget(scan.kiosk_id)
            return refusal("not_enrolled")
        except IntegrityError:
            # Either this scan_id was stored by a racing retry (answer as it was answered), or a
            # parallel scan of the same card checked in first, or made the day's session first
            # (PostgreSQL): try again on fresh data, where the decision sees what won.
            stored = _stored_answer(scan.scan_id, scan.kiosk_id)
            if stored is not None:
                return stored
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _KioskRevoked(Exception):
    """The kiosk was revoked (in another process, since its cookie was read): write nothing."""


@functools.cache
def _live_kiosks_statement():
    """Which of the named kiosks are not revoked, their rows held (FOR SHARE on PostgreSQL) until the
    batch commits: a revocation from another process waits for it instead of slipping in between.
    (On SQLite the transaction holds the database's one write lock already.)"""
    device = KioskDevice.__table__.c
    return (select(device.id).where(db.one_of(device.id, "kiosk_ids"), device.revoked_at.is_(None))
            .with_for_update(read=True))


def _store(new: list[tuple[PendingScan, ScanAnswer]]) -> bool:
    """Write the scans' rows with their answers (one statement); False, writing nothing, when a kiosk
    was revoked since this process last read its cookie (in another process)."""
    kiosk_ids = sorted({scan.kiosk_id for scan, _answer in new})
    connection = db.session().connection()
    if len(connection.execute(_live_kiosks_statement(), {"kiosk_ids": kiosk_ids}).all()) != len(kiosk_ids):
        return False
    connection.execute(Scan.__table__.insert(), [
        {"scan_id": scan.scan_id, "kiosk_id": scan.kiosk_id, "client_key": answer.client_key, "received_at": scan.now,
         "scanned_at": scan.at, "http_status": answer.status, "response": answer.body} for scan, answer in new])
    return True


@functools.cache
def _kiosk_seen_statement():
    device = KioskDevice.__table__
    return device.update().where(device.c.id == bindparam("kiosk_id")).values(last_seen_at=bindparam("seen_at"))


def _note_kiosk_seen(kiosk_id: int, now: datetime) -> None:
    db.session().connection().execute(_kiosk_seen_statement(), {"kiosk_id": kiosk_id, "seen_at": now})


@functools.cache
def _stored_statement():
    scan = Scan.__table__.c
    return select(scan.kiosk_id, scan.http_status, scan.response).where(scan.scan_id == bindparam("scan_id"))


def _stored_answer(scan_id: str, kiosk_id: int) -> ScanAnswer | None:
    row = db.session().connection().execute(_stored_statement(), {"scan_id": scan_id}).first()
    if row is None:
        return None
    if row.kiosk_id != kiosk_id or not row.http_status:
        return refusal("bad_request")  # another kiosk's scan_id: never replay its answer here
    return ScanAnswer(row.http_status, row.response)


def _publish(session_id: int) -> None:
    """Tell the session's screens; the scan is committed, so a failure here must not undo its answer."""
    from iop.live import roster

    try:
        roster.publish(session_id)
    except Exception:  # noqa: BLE001  (a screen update is best effort; the record is safe)
        log.exception("roster publish failed for session %s", session_id)


def _scan_known():
    from sqlalchemy import exists

    return exists().where(Scan.__table__.c.scan_id == bindparam("scan_id")).label("scan_known")


@functools.cache
def _near_statement():
    """attendance.client_sessions_statement, and whether this scan_id is known (one query, not two)."""
    return attendance.client_sessions_statement().add_columns(_scan_known())


@functools.cache
def _known_statement():
    return select(_scan_known())


def _known(scan_id: str) -> bool:
    return bool(db.session().connection().execute(_known_statement(), {"scan_id": scan_id}).scalar())


class Greeting(NamedTuple):
    """A scan that succeeded; its answer's body waits for the week's figures (success_bodies)."""

    result: str
    client_key: int
    name: str
    group_session: attendance.OpenSession
    at: datetime
    session_id: int | None  # the roster changed: publish after commit


def _decide(token: cards.CardToken, scan_id: str, at: datetime, near: attendance.SessionsNear | None = None,
            check_ins: attendance.CheckIns | None = None) -> ScanAnswer | Greeting | None:
    """Inside the scan's transaction: check the card, find the session, write in or out.
    None when the scan_id is known already (a retry: nothing is decided again). `near`: the client's
    sessions as read for a batch, without asking about the scan_id (a known one then collides when
    its row is stored, and the batch goes one scan at a time); `check_ins`: the batch's, where a new
    check-in waits to be written with the others."""
    client_key = token.client_key
    if near is None:
        near, rows = attendance.client_sessions_near(client_key, at, _near_statement(), {"scan_id": scan_id})
        if rows[0].scan_known if rows else _known(scan_id):
            return None
    client = near.client
    if client is None or token.version > client.card_version:
        return refusal("unknown_card")
    if token.version < client.card_version:
        return refusal("revoked_card", client_key)
    if client.status != "active":
        return refusal("inactive_client", client_key)
    group_session = session_at(client_key, at, near)
    if group_session is None:
        return refusal("no_session_now", client_key)

    record, elsewhere = attendance.kiosk_visits(group_session.id, client_key, at, near)
    if record is None:
        closed = None
        if group_session.status == "closed":  # a replayed scan of a session closed since: out at the close (rule 2)
            closed = max(hours.close_check_out(group_session.closed_at or group_session.ends_at, group_session.ends_at), at)
        attendance.kiosk_check_in(group_session.id, client_key, at, elsewhere, closed, "close" if closed else None,
                                  check_ins)
        result = "checked_in"
    elif record.status != "present" or record.check_in_at is None:
        return refusal("see_staff", client_key)  # staff recorded this visit by hand (e.g. excused)
    elif record.check_out_at is not None:
        return refusal("already_checked_out", client_key)
    elif at - record.check_in_at >= timedelta(minutes=current_app.config["REPEAT_SCAN_MINUTES"]):
        attendance.kiosk_check_out(record, at)
        result = "checked_out"
    else:
        result = "already_checked_in"
    return Greeting(result, client_key, Client.display_name.fget(client), group_session, at,
                    session_id=group_session.id if result != "already_checked_in" else None)


def session_at(client_key: int, at: datetime, near: attendance.SessionsNear | None = None
               ) -> attendance.OpenSession | None:
    """The client's session open at `at`; for a replayed offline scan, also one that closed since."""
    group_session = attendance.session_open_for(client_key, at, near)
    if group_session is not None:
        return group_session
    if near is None:
        near = attendance.client_sessions_near(client_key, at)[0]
    candidates = [m for m in near.sessions.values()
                  if m.status == "closed" and m.closed_at is not None and m.closed_at > at
                  and attendance.opens_at(m) <= at < m.ends_at]
    return min(candidates, key=lambda m: m.starts_at) if candidates else None


def success_bodies(greetings: list[Greeting], now: datetime) -> list[dict]:
    """The 200 answers: the scanner's own short name, the session, and this week's hours (hours.py:
    the figures of week_figures, from each client's minutes per day as this transaction leaves them,
    read for all the greetings of a batch in two queries)."""
    if not greetings:
        return []
    tz = program_tz()
    mondays = [hours.week_start(local_date(greeting.at, tz)) for greeting in greetings]
    first = min(min(monday, g.group_session.date) for monday, g in zip(mondays, greetings))
    last = max(max(monday + timedelta(days=6), g.group_session.date) for monday, g in zip(mondays, greetings))
    client_keys = sorted({greeting.client_key for greeting in greetings})
    minutes = hours_queries.minutes_by_client_day(first, last, now, client_keys)
    plans = hours_queries.plans_touching(first, last, client_keys)
    bodies = []
    for monday, greeting in zip(mondays, greetings):
        group_session, client_key = greeting.group_session, greeting.client_key
        by_day = {day: m for (pk, day), m in minutes.items() if pk == client_key}
        week_plans = [plan for plan in plans.get(client_key, ()) if plan.overlaps_week(monday)]
        bodies.append({
            "result": greeting.result,
            "client": {"display_name": greeting.name},
            "session": {
                "id": group_session.id,
                "group": group_session.group_name,
                "room": group_session.room,
                "starts": group_session.starts_at.astimezone(tz).strftime("%H:%M"),
                "ends": group_session.ends_at.astimezone(tz).strftime("%H:%M"),
            },
            "week": {
                "attended_minutes": hours.week_minutes(by_day, monday),
                "target_minutes": hours.week_target(week_plans, monday) or 0,
            },
            "today": {"attended_minutes": by_day.get(group_session.date, 0)},
        })
    return bodies

"""The kiosk scan: one card, one answer, at most one attendance (docs/interface.md, POST /kiosk/api/scan).

A scan is written in one transaction together with its `Scan` row, whose primary key is the
kiosk's scan_id: a retry of the same scan_id collides on that key and gets the stored answer, so
it is counted once however the retries race. Parallel scans of one card with different scan_ids
meet the partial unique index on unvoided attendance, and the losers answer already_checked_in.

The story of a scan, top-down below: checked at the edge (record_scan), then in the writer's
transaction decided (`decide`), written (`write`) and answered (`answer_and_store`). The writer that
groups scans arriving together is iop/clinic/scan_batch.py; it calls `write_together` for them, or
`write_alone` for each.

Decisions (README "Kiosk"):
- A second scan at least REPEAT_SCAN_MINUTES after the check-in writes nothing and answers
  confirm_check_out: the kiosk asks "Leaving now?", and the person's "Check out" (or the same card
  scanned again on that screen) sends the scan with `"action": "check_out"`, which checks out.
  Sooner, a second scan answers already_checked_in and writes nothing. A check_out without a
  check-in in the session open now answers the error `not_checked_in`.
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
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from iop import clock
from iop.clinic import attendance, cards, kiosks, scan_batch
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
ACTIONS = ("check_out",)  # what a scan body's optional "action" may say

# The HTTP status of each answer; the words for the person live in the kiosk's catalogues.
STATUS = {
    "checked_in": 200,
    "checked_out": 200,
    "already_checked_in": 200,
    "confirm_check_out": 200,
    "bad_request": 400,
    "scanned_at_invalid": 422,
    "not_enrolled": 403,
    "inactive_client": 403,
    "unknown_card": 404,
    "revoked_card": 410,
    "no_session_now": 409,
    "already_checked_out": 409,
    "not_checked_in": 409,
    "see_staff": 409,
    "too_large": 413,
    "too_many_attempts": 429,
}


@dataclass
class ScanRequest:
    code: str
    scan_id: str
    scanned_at: datetime | None = None
    check_out: bool = False  # `"action": "check_out"`: the person confirmed they are leaving


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
    if "action" in data and data["action"] not in ACTIONS:
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
    return ScanRequest(code=code.strip()[: MAX_CODE_LENGTH + 1], scan_id=scan_id, scanned_at=when,
                       check_out=data.get("action") == "check_out")


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


# ---- the scan, from the kiosk's request to its answer -----------------------------------------------
# A scan's whole cost is on the kiosk's wait and on every other kiosk's (one server, few cores), so
# the path is lean: one transaction of a few plain statements on indexed rows, nothing read twice,
# no ORM objects, and the roster pushed after the answer by the roster's publisher.

def record_scan(kiosk_id: int, request: ScanRequest) -> ScanAnswer:
    """Answer one scan from an enrolled kiosk, writing at most one check-in or check-out.

    What needs no database is checked here (the bad-card slow-down, the scan's time, the card's
    signature); the rest is written by the process's scan writer (iop/clinic/scan_batch.py), which
    answers after its transaction commits. A scan_id seen before gets its stored answer."""
    now = clock.now()
    if limiter().blocked(kiosk_id, now):
        return _stored_answer(request.scan_id, kiosk_id) or refusal("too_many_attempts")
    scan = checked_at_the_edge(kiosk_id, request, now)
    db.end_snapshot()  # what the writer commits is seen by this request next
    answer = writer().write(scan)
    if answer.code in BAD_CARD_CODES:
        limiter().note_bad(kiosk_id, now)
    if answer.session_id is not None:
        _publish(answer.session_id)
    return answer


@dataclass(frozen=True)
class PendingScan:
    """A scan checked at the edge, waiting for the writer."""

    kiosk_id: int
    scan_id: str
    token: cards.CardToken | None  # None when `early` refused it
    early: ScanAnswer | None  # the refusal already decided (bad time, bad card), stored like any answer
    at: datetime  # when it happened (a replayed offline scan's own time)
    now: datetime  # when it arrived
    check_out: bool = False  # the person confirmed on the kiosk that they are leaving


def checked_at_the_edge(kiosk_id: int, request: ScanRequest, now: datetime) -> PendingScan:
    """The scan's time and the card's signature, checked without the database."""
    try:
        at = scan_time(request.scanned_at, now)
    except ScanRefused as exc:
        return PendingScan(kiosk_id, request.scan_id, None, refusal(exc.code), now, now, request.check_out)
    try:
        token = cards.read_card(request.code)
    except cards.CardError:
        return PendingScan(kiosk_id, request.scan_id, None, refusal("unknown_card"), at, now, request.check_out)
    return PendingScan(kiosk_id, request.scan_id, token, None, at, now, request.check_out)


def writer() -> scan_batch.ScanWriter:
    """The process's scan writer: scans that arrive together are written together (write_together),
    else each alone (write_alone)."""
    return scan_batch.writer(current_app._get_current_object(), "iop.scan_writer", write_together, write_alone,
                             key=_scan_id)


def _scan_id(scan: PendingScan) -> str:
    return scan.scan_id


# ---- one scan's story: decide, write, answer ------------------------------------------------------

class Decision(NamedTuple):
    """A scan that found its client's session, and what it does there. Its answer's body waits for
    the week's figures (success_bodies)."""

    result: str  # checked_in, checked_out, confirm_check_out or already_checked_in
    client_key: int
    name: str  # the display name: first name and last initial
    group_session: attendance.OpenSession
    at: datetime
    visit: attendance.Visit | None  # the client's record in the session (none before a check-in)
    elsewhere: list[attendance.Visit]  # their records open in other sessions (a check-in ends them)

    @property
    def changes_roster(self) -> bool:
        return self.result in ("checked_in", "checked_out")


class Retry(NamedTuple):
    """The scan_id was stored before: a kiosk's retry, given the stored answer and decided no more."""


Outcome = ScanAnswer | Decision | Retry


def decide(scan: PendingScan, near: attendance.SessionsNear) -> ScanAnswer | Decision:
    """What the scan comes to, from its client's facts as this transaction reads them: the card,
    the session open now (made from the schedule if it has no row yet), the client's record there."""
    token, at = scan.token, scan.at
    client_key, client = token.client_key, near.client
    if client is None or token.version > client.card_version:
        return refusal("unknown_card")
    if token.version < client.card_version:
        return refusal("revoked_card", client_key)
    if client.status != "active":
        return refusal("inactive_client", client_key)
    group_session = session_at(near, at)
    if group_session is None:
        return refusal("no_session_now", client_key)
    visit, elsewhere = attendance.kiosk_visits(near, group_session.id, client_key, at)
    if visit is None:
        if scan.check_out:
            return refusal("not_checked_in", client_key)
        result = "checked_in"
    elif visit.status != "present" or visit.check_in_at is None:
        return refusal("see_staff", client_key)  # staff recorded this visit by hand (e.g. excused)
    elif visit.check_out_at is not None:
        return refusal("already_checked_out", client_key)
    elif scan.check_out and at >= visit.check_in_at:
        result = "checked_out"
    elif not scan.check_out and at - visit.check_in_at >= timedelta(minutes=current_app.config["REPEAT_SCAN_MINUTES"]):
        result = "confirm_check_out"  # asked on the kiosk's screen; nothing is written until confirmed
    else:
        result = "already_checked_in"
    return Decision(result, client_key, Client.display_name.fget(client), group_session, at, visit, elsewhere)


def write(decision: ScanAnswer | Decision, check_ins: attendance.CheckIns) -> None:
    """What the decision writes: a check-in (waiting in `check_ins`), a check-out, or nothing."""
    if not isinstance(decision, Decision):
        return
    if decision.result == "checked_in":
        group_session, closed = decision.group_session, None
        if group_session.status == "closed":  # a replayed scan of a session closed since: out at the close (rule 2)
            closed = max(hours.close_check_out(group_session.closed_at or group_session.ends_at, group_session.ends_at),
                         decision.at)
        attendance.kiosk_check_in(check_ins, group_session.id, decision.client_key, decision.at, decision.elsewhere,
                                  closed, "close" if closed else None)
    elif decision.result == "checked_out":
        attendance.kiosk_check_out(decision.visit, decision.at)


def answer_and_store(scans: list[PendingScan], outcomes: list[Outcome]) -> list[ScanAnswer]:
    """In the scans' transaction, once decided and written: each one's answer (the greetings' weeks
    read for all of them at once, as the transaction leaves them; a retry's stored answer), then
    every new scan's row in one statement. _KioskRevoked when a kiosk was revoked meanwhile (nothing
    of it may be written: the caller rolls back)."""
    decisions = [outcome for outcome in outcomes if isinstance(outcome, Decision)]
    bodies = iter(success_bodies(decisions, max(scan.now for scan in scans)))
    answers, new = [], []
    for scan, outcome in zip(scans, outcomes):
        if isinstance(outcome, Retry):
            answers.append(_stored_answer(scan.scan_id, scan.kiosk_id))
            continue
        if isinstance(outcome, Decision):
            outcome = ScanAnswer(200, next(bodies), client_key=outcome.client_key,
                                 session_id=outcome.group_session.id if outcome.changes_roster else None)
        answers.append(outcome)
        new.append((scan, outcome))
    if new and not _store(new):
        raise _KioskRevoked
    return answers


# ---- writing: one scan alone, or the scans that arrived together ----------------------------------

def write_alone(scan: PendingScan) -> ScanAnswer:
    """One scan in its own transaction. The scan's row is written last: a retry racing its original
    collides on the key, the whole transaction rolls back, and the stored answer is given."""
    for attempt in range(3):
        try:
            # One short transaction (on SQLite it holds the write lock): everything it reads is a few
            # indexed rows, and reading them in a transaction of their own first cost more (its own
            # BEGIN and COMMIT) than holding the lock for them.
            with db.transaction():
                [answer] = answer_and_store([scan], [_decide_alone(scan)])
                seen = _note_kiosks_seen([scan])
            _noted(seen)
            return answer
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


def _decide_alone(scan: PendingScan) -> Outcome:
    """The scan decided and written: its client's facts and whether its scan_id is known, in one query."""
    if scan.early is not None:
        return Retry() if _known(scan.scan_id) else scan.early
    near, known = _near_and_known(scan)
    if known:
        return Retry()
    check_ins = attendance.CheckIns()
    decision = decide(scan, near)
    write(decision, check_ins)
    check_ins.flush()
    return decision


def write_together(scans: list[PendingScan]) -> list[ScanAnswer] | None:
    """Scans (distinct scan_ids) that arrived together, in one transaction and in arrival order: what
    they need is read for all of them at once (which scan_ids are known, the sessions near their
    clients), their check-ins are written in one statement. None, with nothing written, when one of
    them met what only a race produces (a unique key taken by a parallel retry or another process, a
    kiosk revoked meanwhile): the writer then writes each alone."""
    try:
        with db.transaction():
            answers = answer_and_store(scans, _decide_together(scans))
            seen = _note_kiosks_seen(scans)
    except (IntegrityError, _KioskRevoked):
        return None  # rolled back
    _noted(seen)
    return answers


def _decide_together(scans: list[PendingScan]) -> list[Outcome]:
    known, near = _known_ids(scans), _sessions_near(scans)
    check_ins = attendance.CheckIns()
    outcomes: list[Outcome] = []
    for scan in scans:
        if scan.scan_id in known:
            outcomes.append(Retry())
            continue
        if scan.early is not None:
            outcomes.append(scan.early)
            continue
        client_near = near.get(scan.token.client_key)
        if client_near is None:  # scanned twice in the batch (or on another day): read after the writes before it
            check_ins.flush()
            client_near = attendance.client_sessions_near(scan.token.client_key, scan.at)
        decision = decide(scan, client_near)
        write(decision, check_ins)
        outcomes.append(decision)
    check_ins.flush()
    return outcomes


# ---- what the scans read and write -----------------------------------------------------------------

def _scan_known():
    from sqlalchemy import exists

    return exists().where(Scan.__table__.c.scan_id == bindparam("scan_id")).label("scan_known")


@functools.cache
def _near_statement():
    """attendance.client_sessions_statement, and whether this scan_id is known (one query, not two)."""
    return attendance.client_sessions_statement().add_columns(_scan_known())


def _near_and_known(scan: PendingScan) -> tuple[attendance.SessionsNear, bool]:
    """The scan's client's sessions near its time, and whether its scan_id is known (one query)."""
    client_key = scan.token.client_key
    rows = db.session().connection().execute(
        _near_statement(), {**attendance.sessions_near_parameters([client_key], scan.at),
                            "scan_id": scan.scan_id}).all()
    near = attendance.sessions_near_from_rows(rows, scan.at).get(client_key) or attendance.no_such_client(scan.at)
    return near, bool(rows[0].scan_known) if rows else _known(scan.scan_id)


@functools.cache
def _known_statement():
    return select(_scan_known())


def _known(scan_id: str) -> bool:
    return bool(db.session().connection().execute(_known_statement(), {"scan_id": scan_id}).scalar())


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
    near = attendance.clients_sessions_near(sorted(scan.token.client_key for scan in once), earliest)
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


def _noted(seen: list[tuple[int, datetime]]) -> None:
    """After the commit: the process remembers the kiosks' last_seen_at it wrote."""
    for kiosk_id, now in seen:
        kiosks.note_seen(kiosk_id, now)


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


# ---- the answer ------------------------------------------------------------------------------------

def session_at(near: attendance.SessionsNear, at: datetime) -> attendance.OpenSession | None:
    """The client's session open at `at`; for a replayed offline scan, also one that closed since."""
    group_session = attendance.session_open_for(near, at)
    if group_session is not None:
        return group_session
    candidates = [m for m in near.sessions.values()
                  if m.status == "closed" and m.closed_at is not None and m.closed_at > at
                  and attendance.opens_at(m) <= at < m.ends_at]
    return min(candidates, key=lambda m: m.starts_at) if candidates else None


def success_bodies(decisions: list[Decision], now: datetime) -> list[dict]:
    """The 200 answers: the scanner's own short name, the session, and this week's hours (hours.py:
    the figures of week_figures, from each client's minutes per day as this transaction leaves them,
    read for all the decisions of a batch in two queries). A confirm_check_out also says when the
    client checked in (the program's local time, with its offset)."""
    if not decisions:
        return []
    tz = program_tz()
    mondays = [hours.week_start(local_date(decision.at, tz)) for decision in decisions]
    first = min(min(monday, d.group_session.date) for monday, d in zip(mondays, decisions))
    last = max(max(monday + timedelta(days=6), d.group_session.date) for monday, d in zip(mondays, decisions))
    client_keys = sorted({decision.client_key for decision in decisions})
    minutes = hours_queries.minutes_by_client_day(first, last, now, client_keys)
    plans = hours_queries.plans_touching(first, last, client_keys)
    bodies = []
    for monday, decision in zip(mondays, decisions):
        group_session, client_key = decision.group_session, decision.client_key
        by_day = {day: m for (pk, day), m in minutes.items() if pk == client_key}
        week_plans = [plan for plan in plans.get(client_key, ()) if plan.overlaps_week(monday)]
        body = {
            "result": decision.result,
            "client": {"display_name": decision.name},
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
        }
        if decision.result == "confirm_check_out":
            body["check_in_at"] = decision.visit.check_in_at.astimezone(tz).isoformat(timespec="seconds")
        bodies.append(body)
    return bodies

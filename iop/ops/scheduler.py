"""The scheduled jobs (APScheduler 3.11): sessions made, opened and closed on time; at-risk weeks
marked; kiosk scans past their retention cleared; backups taken (iop/ops/backup.py).

Every job is idempotent and decides from the database what is due, not from when it last ran:
a restart, a missed run or a second run does no harm, and whatever was missed is caught up on
the next run (each job also runs once at start). They run inside `iop serve` by default, or in
the one `iop scheduler` process (IOP_SCHEDULER=off in the web processes). Each run has its own
app context, so its own database session.

The scheduler writes a heartbeat row, so /healthz in any process can tell whether jobs run.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, time, timedelta
from typing import Callable

from flask import Flask
from sqlalchemy import delete, select

from iop import clock
from iop.rules import hours
from iop.store import db, hours_queries
from iop.store.models import GroupSession, Scan, SchedulerHeartbeat, WeekFlag

log = logging.getLogger(__name__)

HEARTBEAT = "scheduler"
NOON_CHECK = "noon-check"   # a heartbeat row too: when the at-risk check last ran
HEARTBEAT_SECONDS = 30
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 4)
NOON = time(12, 0)
LIVE = ("scheduled", "open")
SCANS_PER_TRANSACTION = 5000  # SQLite's write lock is held for one chunk only: kiosks scan in between


# ---- the jobs (each a plain function of the database state and now) ----------------------------

def make_sessions(now: datetime | None = None) -> int:
    """Today's and tomorrow's group sessions from the groups' schedules. Returns how many exist."""
    from iop.clinic.sessions import ensure_sessions_for
    from iop.clock import local_date, program_tz

    today = local_date(now or clock.now(), program_tz())
    with db.transaction():
        made = ensure_sessions_for(today) + ensure_sessions_for(today + timedelta(days=1))
    return len(made)


def open_sessions(now: datetime | None = None) -> list[int]:
    """Scheduled sessions whose doors open now (from 30 minutes before the start until the end)."""
    from flask import current_app

    now = now or clock.now()
    lead = timedelta(minutes=current_app.config["SESSION_OPENS_BEFORE_MINUTES"])
    with db.transaction() as s:
        due = list(s.scalars(select(GroupSession).where(
            GroupSession.status == "scheduled", GroupSession.starts_at <= now + lead, GroupSession.ends_at > now)))
        for group_session in due:
            group_session.status = "open"
    return [group_session.id for group_session in due]


def close_sessions(now: datetime | None = None) -> list[int]:
    """Sessions past their scheduled end, closed at that end: anyone still in is checked out there
    (rule 2: the earlier of the close and the end). A session missed by a stopped scheduler closes
    the same way later, so its figures do not depend on when the job ran."""
    from iop.clinic.attendance import close_session

    now = now or clock.now()
    closed = []
    with db.transaction() as s:
        for group_session in s.scalars(select(GroupSession).where(
                GroupSession.status.in_(LIVE), GroupSession.ends_at <= now).order_by(GroupSession.ends_at)):
            close_session(group_session, group_session.ends_at)
            closed.append(group_session.id)
    for session_id in closed:
        _tell_screens(session_id)
    return closed


def _tell_screens(session_id: int) -> None:
    """Open control pages and room displays learn the group ended (as when a facilitator closes it)."""
    try:
        from iop.live import realtime, roster

        realtime.emit_to_session("closed", {"session_id": session_id}, session_id)
        roster.publish(session_id)
    except Exception as exc:  # the close is saved; a screen that missed this asks for state on reconnect
        log.warning("closed-session push for session %s failed: %s", session_id, type(exc).__name__)


def last_noon(now: datetime, tz) -> datetime | None:
    """The latest weekday noon (local) at or before `now`, if it falls in now's week."""
    local_now = now.astimezone(tz)
    day = local_now.date()
    for back in range(7):
        candidate = day - timedelta(days=back)
        noon = datetime.combine(candidate, NOON, tzinfo=tz)
        if candidate.weekday() < 5 and noon <= local_now:
            return noon if hours.week_start(candidate) == hours.week_start(day) else None
    return None


def flag_at_risk(now: datetime | None = None, force: bool = False) -> list[int]:
    """At a weekday noon (or the first run after one that was missed, in the same week): mark every
    client whose week is at_risk with a WeekFlag, once per client and week. Returns who was newly
    flagged. A week that has ended is not flagged: by then it is met or short."""
    from iop.clock import program_tz

    now = now or clock.now()
    tz = program_tz()
    due = last_noon(now, tz)
    if due is None and not force:
        return []
    with db.transaction() as s:
        checked = s.get(SchedulerHeartbeat, NOON_CHECK)
        if not force and checked is not None and checked.beat_at >= due:
            return []  # this noon's check is done
        monday = hours.week_start(now.astimezone(tz).date())
        at_risk = [pk for pk, figure in hours_queries.week_figures(monday, now, tz).items() if figure.status == "at_risk"]
        already = set(s.scalars(select(WeekFlag.client_key).where(WeekFlag.week_start == monday)))
        new = [pk for pk in at_risk if pk not in already]
        for client_key in new:
            s.add(WeekFlag(client_key=client_key, week_start=monday, status="at_risk", flagged_at=now))
        _beat(s, NOON_CHECK, now)
    return new


def clear_old_scans(now: datetime | None = None, chunk: int = SCANS_PER_TRANSACTION) -> int:
    """Delete kiosk scans received more than SCAN_RETENTION_DAYS ago, `chunk` rows a transaction, so
    the scan log stops growing. Returns how many were deleted.

    Invariant: a scan a kiosk may still replay (scanned up to OFFLINE_SCAN_MAX_AGE_HOURS ago, plus
    the clock skew a scan may carry) is never deleted, whatever the settings: its retry gets the
    stored answer, and a replay of a deleted scan_id is refused as too old, never counted again.
    Only the scan log shrinks: attendance (the billing record) is its own table, and no table
    refers to scan rows."""
    from flask import current_app

    from iop.clinic.scan import CLOCK_SKEW

    if chunk < 1:
        raise ValueError("chunk must be at least one scan")
    now = now or clock.now()
    replayable = timedelta(hours=current_app.config["OFFLINE_SCAN_MAX_AGE_HOURS"]) + CLOCK_SKEW
    cut_off = now - max(timedelta(days=current_app.config["SCAN_RETENTION_DAYS"]), replayable)
    scan = Scan.__table__
    expired = select(scan.c.scan_id).where(scan.c.received_at < cut_off).limit(chunk)
    deleted = 0
    while True:
        with db.transaction() as s:
            gone = s.execute(delete(scan).where(scan.c.scan_id.in_(expired))).rowcount
        deleted += gone
        if gone < chunk:
            break
    if deleted:
        log.info("cleared %d kiosk scans past their retention", deleted)
    return deleted


def heartbeat(now: datetime | None = None) -> None:
    with db.transaction() as s:
        _beat(s, HEARTBEAT, now or clock.now())


def _beat(s, name: str, now: datetime) -> None:
    row = s.get(SchedulerHeartbeat, name)
    if row is None:
        s.add(SchedulerHeartbeat(name=name, beat_at=now, host=_host()))
    else:
        row.beat_at, row.host = now, _host()


def _host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def catch_up() -> None:
    """Everything that is due now, in order; what the scheduler runs first when it starts."""
    make_sessions()
    open_sessions()
    close_sessions()
    flag_at_risk()
    heartbeat()
    clear_old_scans()  # last: after a long stop it may have much to delete, and nothing waits on it


# ---- health --------------------------------------------------------------------------------------

def health(app: Flask) -> str:
    """"ok" while a scheduler (here or in another process) beats; "off" when none is meant to run
    here and none ever has; "stale" when the beat stopped; "not running" when this process's
    scheduler should run and does not."""
    local = app.extensions.get("iop.scheduler")
    if app.config.get("SCHEDULER") and (local is None or not local.running):
        return "not running"
    try:
        with app.app_context():
            beat = db.session().scalar(select(SchedulerHeartbeat.beat_at)
                                       .where(SchedulerHeartbeat.name == HEARTBEAT))
    except Exception:  # the database check in /healthz reports why
        return "unknown"
    if beat is None:
        return "off" if not app.config.get("SCHEDULER") else "ok"
    return "ok" if clock.now() - beat <= STALE_AFTER else "stale"


# ---- the scheduler -------------------------------------------------------------------------------

def _in_context(app: Flask, job: Callable[[], object], name: str) -> Callable[[], None]:
    def run() -> None:
        with app.app_context():
            try:
                job()
            except Exception:  # logged without data; the next run tries again from the state
                log.exception("scheduled job %s failed", name)
    run.__name__ = name
    return run


def tidy_imports() -> None:
    """Fail the imports whose process stopped and take back what their loads wrote; forget old jobs."""
    from iop.files import import_jobs

    import_jobs.tidy()


def start(app: Flask):
    """Start this process's background scheduler: catch up at once, then run on time."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tz = clock.program_tz(app)
    scheduler = BackgroundScheduler(timezone=tz, job_defaults={"coalesce": True, "max_instances": 1})
    jobs = [
        ("heartbeat", heartbeat, IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=tz), 30),
        ("make_sessions", make_sessions, CronTrigger(minute="*/15", timezone=tz), 600),
        ("open_sessions", open_sessions, IntervalTrigger(minutes=1, timezone=tz), 60),
        ("close_sessions", close_sessions, IntervalTrigger(minutes=1, timezone=tz), 60),
        ("flag_at_risk", flag_at_risk, CronTrigger(day_of_week="mon-fri", hour=12, minute=0, timezone=tz), 3600),
        # The noon check again every quarter hour: it does nothing unless a noon passed unchecked.
        ("flag_at_risk_catch_up", flag_at_risk, CronTrigger(minute="7,22,37,52", timezone=tz), 600),
        # At night, when no group meets; a server that sleeps then clears them at its next start.
        ("clear_old_scans", clear_old_scans, CronTrigger(hour=3, minute=15, timezone=tz), 3600),
        # An import whose process stopped mid-load (a killed `iop import`) is taken back within minutes.
        ("tidy_imports", tidy_imports, IntervalTrigger(minutes=1, timezone=tz), 60),
    ]
    for name, job, trigger, grace in jobs:
        scheduler.add_job(_in_context(app, job, name), trigger, id=name, name=name, misfire_grace_time=grace,
                          replace_existing=True)
    if app.config["BACKUP_EVERY_HOURS"]:
        from iop.ops.backup import scheduled_backup

        # Every quarter hour (and now) it looks whether a backup is due; in a job of its own, so a long
        # backup delays none of the others.
        scheduler.add_job(_in_context(app, scheduled_backup, "backup"), IntervalTrigger(minutes=15, timezone=tz),
                          id="backup", name="backup", misfire_grace_time=900, replace_existing=True,
                          next_run_time=datetime.now(tz))
    scheduler.add_job(_in_context(app, catch_up, "catch_up"), id="catch_up", name="catch_up")  # once, now
    scheduler.start()
    app.extensions["iop.scheduler"] = scheduler
    return scheduler


def run_forever(app: Flask) -> None:
    scheduler = start(app)
    log.info("scheduler running with %d jobs", len(scheduler.get_jobs()))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=False)

"""Web imports as jobs outside the request (docs/interface.md, "Imports").

The upload is saved in the instance folder (imports/, 0700; the file 0600) and an import_job row is
written; a thread of the process that took the upload runs iop.files.imports on the saved file and
writes its progress and outcome to that row, so any server process (gunicorn workers, deploy/'s
several) answers the page that follows the job. The thread paces itself (`PACE`): after each chunk
of work it sleeps a share of the time it worked, so the kiosks' requests in the same process get
the interpreter and the database between chunks (bench/bench_import_load.py measures it).

The `iop import` command keeps a job row too (`run_here`). A job whose row has not moved for
STALE_AFTER (its process stopped) is failed when next looked at (its page, the next import, the
scheduler's minute), and the attendance rows its load had written are taken back. Finished jobs are kept a day (their
problem lines quote cells of the file), then deleted.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
import threading
import time as wall
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import delete, select, update

from iop import clock
from iop.config import FILE_MODE, FOLDER_MODE
from iop.files import imports
from iop.store import db
from iop.store.models import ImportJob, StaffUser

log = logging.getLogger(__name__)

FOLDER = "imports"
STALE_AFTER = timedelta(minutes=2)
KEEP_FINISHED = timedelta(days=1)
WRITE_EVERY = 0.5  # seconds between progress writes
PACE = 2.0  # after working t seconds the job sleeps PACE * t (at most MAX_PAUSE): a third of the time at work
MAX_PAUSE = 0.1
# While a job runs, the interpreter hands over between threads every 1 ms instead of 5: a kiosk's
# request, which waits for the interpreter at each database call, then waits 1 ms at most, not 5.
SWITCH_INTERVAL = 0.001
RUNNING = ("queued", "checking", "loading")
PHASE_WORDS = {"queued": "Waiting to start", "checking": "Checking every row", "loading": "Loading",
               "done": "Done", "failed": "Nothing was imported"}
_threads: dict[str, threading.Thread] = {}
_one_at_a_time = threading.Lock()  # a process's jobs run in turn (two loads of one file would collide)


# ---- starting a job ------------------------------------------------------------------------

def start(kind: str, stream, actor: StaffUser | None) -> str:
    """Save the upload (at most imports.UPLOAD_MAX_BYTES of it), record the job and start it. Returns
    the job's id. ImportFailed (audited) for an unknown kind or a file too large."""
    imports.check_kind(kind)
    tidy()
    folder = upload_folder()
    job_id = secrets.token_hex(16)
    path = folder / f"{job_id}.csv"
    written = 0
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as out:
            while chunk := stream.read(256 * 1024):
                written += len(chunk)
                if written > imports.UPLOAD_MAX_BYTES:
                    raise imports.upload_too_large()
                out.write(chunk)
    except imports.ImportFailed as failure:
        path.unlink(missing_ok=True)
        imports.audit_failure(kind, failure, actor, "web")
        raise
    with db.transaction() as s:
        s.add(ImportJob(id=job_id, kind=kind, via="web", user_id=actor.id if actor else None, total=written,
                        problems={}))
    app = current_app._get_current_object()
    thread = threading.Thread(target=_run, args=(app, job_id), name=f"import-{job_id[:8]}", daemon=True)
    _threads[job_id] = thread
    thread.start()
    return job_id


def run_here(kind: str, path: Path, show_progress: bool) -> imports.ImportResult:
    """The `iop import` command: the import runs in this process, kept as a job row like a web
    import's, so that a load stopped part-way (the command killed, the machine stopping) is found
    stale and its rows taken back (`tidy`: the scheduler's minute, the next import): all rows or
    none holds for the command as for the page. ImportFailed as `imports.import_file`."""
    imports.check_kind(kind)
    tidy()
    job_id = secrets.token_hex(16)
    with db.transaction() as s:
        s.add(ImportJob(id=job_id, kind=kind, via="cli", user_id=None, total=0, problems={}))
    try:
        size = path.stat().st_size if path.is_file() else 0
    except OSError:
        size = 0
    tracker = CommandProgress(job_id, size, show_progress)
    try:
        result = imports.import_file(kind, path, via="cli", sink=tracker)
    except imports.ImportFailed as failure:
        tracker.finish("failed", failure.summary, rows=failure.rows)
        raise
    except BaseException:  # an error or an interrupt: the load took its rows back; the row says so
        with contextlib.suppress(Exception):
            _write(job_id, status="failed", finished_at=clock.now(), problems={},
                   summary="Nothing was imported: the import stopped before it finished.")
        raise
    tracker.finish("done", result.summary, rows=result.rows)
    return result


def upload_folder(app: Flask | None = None) -> Path:
    folder = Path((app or current_app).instance_path) / FOLDER
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != FOLDER_MODE:
        folder.chmod(FOLDER_MODE)
    return folder


def wait(job_id: str, timeout: float = 120) -> bool:
    """Wait for this process's thread of the job to end (the tests and the benchmark); True when it did."""
    thread = _threads.get(job_id)
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def _run(app: Flask, job_id: str) -> None:
    with app.app_context():
        path = upload_folder(app) / f"{job_id}.csv"
        try:
            job = db.session().get(ImportJob, job_id)
            actor = db.session().get(StaffUser, job.user_id) if job.user_id else None
            kind = job.kind
            db.end_snapshot()
            tracker = JobProgress(job_id, job.total)
            while not _one_at_a_time.acquire(timeout=STALE_AFTER.total_seconds() / 4):
                _write(job_id)  # still queued here, not stale
            switching = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            try:
                result = imports.import_file(kind, path, actor=actor, via="web", sink=tracker)
            except imports.ImportFailed as failure:
                tracker.finish("failed", failure.summary, rows=failure.rows, problems={
                    "shown": failure.problems, "count": failure.problem_count, "lines": failure.line_count,
                    "more": failure.more})
            else:
                tracker.finish("done", result.summary, rows=result.rows)
            finally:
                sys.setswitchinterval(switching)
                _one_at_a_time.release()
        except Exception as exc:  # never the file's content or a name in the log: the error's type only
            log.error("import job %s stopped: %s", job_id[:8], type(exc).__name__)
            with contextlib.suppress(Exception):
                _write(job_id, status="failed", finished_at=clock.now(), problems={}, summary=(
                    "Nothing was imported: the import stopped on an unexpected error. Try again; if it "
                    "happens again, the server's log says why."))
        finally:
            path.unlink(missing_ok=True)
            _threads.pop(job_id, None)


# ---- progress, in the job's row ------------------------------------------------------------

class JobProgress(imports.Progress):
    """imports.Progress for a job: each phase and at most every WRITE_EVERY seconds how far it got,
    written to the import_job row in a transaction of its own; and the pauses that pace the job."""

    def __init__(self, job_id: str, size: int):
        super().__init__(size, enabled=True, unit="bytes")
        self.enabled = True
        self.job_id = job_id
        self.last_write = 0.0
        self.worked_from = wall.perf_counter()

    def phase(self, label: str, total: int | None = None, unit: str | None = None) -> None:
        if total is not None:
            self.total = total
        if unit is not None:
            self.unit = unit
        self.label = label
        _write(self.job_id, status="loading" if label == "Loading" else "checking", done=0, total=self.total)
        self.last_write = wall.monotonic()

    def update(self, done: int) -> None:
        now = wall.monotonic()
        if now - self.last_write >= WRITE_EVERY or (self.total and done >= self.total):
            self.last_write = now
            _write(self.job_id, done=done)

    def loading(self, first_row_id: int, stamp: datetime) -> None:
        _write(self.job_id, first_row_id=first_row_id, stamp=stamp)

    def breathe(self) -> None:
        worked = wall.perf_counter() - self.worked_from
        if worked > 0.005:
            wall.sleep(min(MAX_PAUSE, worked * PACE))
            self.worked_from = wall.perf_counter()

    def done(self) -> None:
        pass

    def finish(self, status: str, summary: str, rows: int, problems: dict | None = None) -> None:
        _write(self.job_id, status=status, summary=summary[:300], rows=rows, problems=problems or {},
               finished_at=clock.now(), done=self.total)


class CommandProgress(JobProgress):
    """The command's progress: written to its job row (what `tidy` needs to take a stopped load back)
    and drawn on the terminal. No pauses: the command is a process of its own, the kiosks are not
    waiting for its interpreter."""

    def __init__(self, job_id: str, size: int, show: bool):
        super().__init__(job_id, size)
        self.terminal = imports.Progress(size, enabled=show, unit="bytes")

    def phase(self, label: str, total: int | None = None, unit: str | None = None) -> None:
        super().phase(label, total, unit)
        self.terminal.phase(label, total, unit)

    def update(self, done: int) -> None:
        super().update(done)
        self.terminal.update(done)

    def breathe(self) -> None:
        pass

    def done(self) -> None:
        self.terminal.done()


def _write(job_id: str, **values) -> None:
    """Update the job's row in a transaction of its own (never inside the import's)."""
    database = db.database()
    lock = database.write_lock
    with lock if lock is not None else contextlib.nullcontext():
        with database.sessions() as s:
            s.connection(execution_options={"iop_write": True})
            s.execute(update(ImportJob).where(ImportJob.id == job_id).values(updated_at=clock.now(), **values))
            s.commit()


# ---- what the page shows -------------------------------------------------------------------

@dataclass
class JobState:
    id: str
    kind: str
    status: str
    percent: int
    phase: str
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    more: str = ""
    problem_count: int = 0

    @property
    def finished(self) -> bool:
        return self.status not in RUNNING

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def as_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status, "percent": self.percent,
                "phase": self.phase, "finished": self.finished, "summary": self.summary if self.finished else ""}


def state(job_id: str) -> JobState | None:
    """The job as a page shows it, or None when there is no such job (or it was deleted)."""
    if not job_id.isalnum() or len(job_id) > 32:
        return None
    s = db.session()
    job = s.get(ImportJob, job_id)
    if job is None:
        return None
    if job.status in RUNNING and _is_stale(job):
        recover(job_id)
        db.end_snapshot()
        job = s.get(ImportJob, job_id, populate_existing=True)
    return JobState(id=job.id, kind=job.kind, status=job.status, percent=_percent(job),
                    phase=PHASE_WORDS.get(job.status, job.status), summary=job.summary,
                    problems=list((job.problems or {}).get("shown", [])), more=(job.problems or {}).get("more", ""),
                    problem_count=int((job.problems or {}).get("count", 0)))


def _percent(job: ImportJob) -> int:
    """Checking is the first 70% of the bar, loading the rest (loading is the shorter part)."""
    if job.status in ("done", "failed"):
        return 100
    share = min(1.0, job.done / job.total) if job.total else 0.0
    if job.status == "loading":
        return int(70 + 30 * share)
    return int(70 * share)


def _is_stale(job: ImportJob) -> bool:
    return job.updated_at is not None and clock.now() - job.updated_at > STALE_AFTER


def recover(job_id: str) -> None:
    """A job whose process stopped: take back the rows its load wrote, and fail it in words."""
    job = db.session().get(ImportJob, job_id)
    if job is None or job.status not in RUNNING:
        return
    if job.first_row_id is not None and job.stamp is not None:
        imports.take_back(job.first_row_id, job.stamp)
    _write(job_id, status="failed", finished_at=clock.now(), problems={}, summary=(
        "Nothing was imported: the import stopped before it finished (the server stopped). Upload the file "
        "again."))
    (upload_folder() / f"{job_id}.csv").unlink(missing_ok=True)


def tidy() -> None:
    """Fail stale jobs, and delete jobs finished more than KEEP_FINISHED ago (their problem lines quote
    the file)."""
    s = db.session()
    now = clock.now()
    for job_id in s.scalars(select(ImportJob.id).where(ImportJob.status.in_(RUNNING),
                                                       ImportJob.updated_at < now - STALE_AFTER)).all():
        recover(job_id)
    db.end_snapshot()
    with db.transaction() as t:
        t.execute(delete(ImportJob).where(ImportJob.finished_at.is_not(None),
                                          ImportJob.finished_at < now - KEEP_FINISHED))

"""The scan log's clean-up: scans past IOP_SCAN_RETENTION_DAYS go, in chunks; answers a kiosk may
still ask for and the attendance (the billing record) stay."""
from __future__ import annotations

import logging
import time as wall
from datetime import timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from helpers.world import KIOSK_DAY, local
from iop import clock, create_app
from iop.config import DEFAULTS, ConfigError, finish, from_environment
from iop.ops import scheduler
from iop.store import db
from iop.store.models import Attendance, Scan

NOW = local(KIOSK_DAY, 3, 15)  # when the nightly job runs


def _scan_log(app, kiosk_id, **received_at):
    """Scan rows by scan_id, received at the given times (the stored answer does not matter here)."""
    with app.app_context(), db.transaction() as s:
        s.add_all(Scan(scan_id=scan_id, kiosk_id=kiosk_id, received_at=at, scanned_at=at, http_status=200,
                       response={"result": "checked_in"}) for scan_id, at in received_at.items())


def _scan_ids(app) -> set[str]:
    with app.app_context():
        return set(db.session().scalars(select(Scan.scan_id)))


def _clear(app, now=NOW, **kwargs) -> int:
    with app.app_context():
        return scheduler.clear_old_scans(now, **kwargs)


def _attendance_rows(app):
    with app.app_context():
        return db.session().execute(select(Attendance.__table__).order_by(Attendance.id)).all()


# ---- what goes and what stays ---------------------------------------------------------------------

def test_scans_older_than_the_retention_go_and_the_rest_stay(app, world):
    device, _cookie = world.kiosk()
    ninety_days = timedelta(days=90)
    _scan_log(app, device.id,
              **{"old-scan-1": NOW - ninety_days - timedelta(minutes=1),
                 "old-scan-2": NOW - timedelta(days=400),
                 "kept-edge": NOW - ninety_days + timedelta(minutes=1),
                 "kept-recent": NOW - timedelta(hours=1)})
    assert _clear(app) == 2
    assert _scan_ids(app) == {"kept-edge", "kept-recent"}
    assert _clear(app) == 0  # a second run finds nothing more to do
    assert _scan_ids(app) == {"kept-edge", "kept-recent"}


def test_the_retention_comes_from_the_setting(app, world):
    device, _cookie = world.kiosk()
    _scan_log(app, device.id, **{"ten-days": NOW - timedelta(days=10), "two-days": NOW - timedelta(days=2)})
    app.config["SCAN_RETENTION_DAYS"] = 7
    assert _clear(app) == 1
    assert _scan_ids(app) == {"two-days"}


def test_a_scan_a_kiosk_may_still_replay_is_never_deleted(app, world):
    """Even when the settings would allow it: the cut-off is never inside the offline replay window."""
    device, _cookie = world.kiosk()
    app.config.update(SCAN_RETENTION_DAYS=1, OFFLINE_SCAN_MAX_AGE_HOURS=72)  # past finish()'s check
    _scan_log(app, device.id, **{"inside-window": NOW - timedelta(hours=71),
                                 "edge-of-window": NOW - timedelta(hours=72),
                                 "past-window": NOW - timedelta(hours=72, minutes=2)})
    assert _clear(app) == 1
    assert _scan_ids(app) == {"inside-window", "edge-of-window"}


def test_deletes_in_chunks_of_the_given_size(app, world):
    device, _cookie = world.kiosk()
    old = NOW - timedelta(days=100)
    _scan_log(app, device.id, **{f"old-{n:04d}": old + timedelta(seconds=n) for n in range(23)},
              **{"recent-0001": NOW - timedelta(days=1)})
    deletes = []

    def note(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(_cursor.rowcount)

    engine = db.database(app).engine
    event.listen(engine, "after_cursor_execute", note)
    try:
        assert _clear(app, chunk=5) == 23
    finally:
        event.remove(engine, "after_cursor_execute", note)
    assert deletes == [5, 5, 5, 5, 3]  # one statement a transaction, none above the chunk
    assert _scan_ids(app) == {"recent-0001"}


def test_a_chunk_of_nothing_is_refused(app):
    with pytest.raises(ValueError):
        _clear(app, chunk=0)


def test_the_log_line_carries_the_count_only(app, world, caplog):
    device, _cookie = world.kiosk()
    _scan_log(app, device.id, **{"secret-scan-id-1": NOW - timedelta(days=200)})
    with caplog.at_level(logging.INFO, logger="iop.ops.scheduler"):
        assert _clear(app) == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "iop.ops.scheduler"]
    assert "1" in line and "secret-scan-id-1" not in line


# ---- through the kiosk: attendance stays, retries keep their answer --------------------------------

def test_attendance_is_untouched_when_its_scans_are_cleared(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    assert kiosk_scene.scan(code).get_json()["result"] == "checked_in"
    clock.advance(timedelta(hours=2))
    assert kiosk_scene.scan(code, action="check_out").get_json()["result"] == "checked_out"
    before = _attendance_rows(app)
    assert len(before) == 1 and len(_scan_ids(app)) == 2
    assert _clear(app, clock.now() + timedelta(days=100)) == 2
    assert _scan_ids(app) == set()
    assert _attendance_rows(app) == before


def test_a_retry_within_the_retention_still_gets_its_stored_answer(kiosk_scene, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    scanned_at = clock.now().astimezone(timezone.utc).isoformat()
    first = kiosk_scene.scan(code, scan_id="kept-retry-01")
    assert first.get_json()["result"] == "checked_in"

    clock.advance(timedelta(days=30))
    assert _clear(app, clock.now()) == 0
    again = kiosk_scene.scan(code, scan_id="kept-retry-01", scanned_at=scanned_at)
    assert (again.status_code, again.get_json()) == (first.status_code, first.get_json())

    clock.advance(timedelta(days=70))  # 100 days on: the row is gone, and a replay is refused as too old
    assert _clear(app, clock.now()) == 1
    late = kiosk_scene.scan(code, scan_id="kept-retry-01", scanned_at=scanned_at)
    assert late.get_json()["error"]["code"] == "scanned_at_invalid"
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Attendance)) == 1


# ---- the job and the setting ---------------------------------------------------------------------------

def test_the_job_runs_nightly_and_at_start(app, world):
    device, _cookie = world.kiosk()
    _scan_log(app, device.id, **{"stale-at-start": clock.now() - timedelta(days=365)})
    app.config["SCHEDULER"] = True
    running = scheduler.start(app)
    try:
        job = running.get_job("clear_old_scans")
        assert job is not None and job.misfire_grace_time == 3600
        assert (job.next_run_time.hour, job.next_run_time.minute) == (3, 15)
        assert job.next_run_time.tzinfo.key == "America/New_York"
        deadline = wall.monotonic() + 10
        while wall.monotonic() < deadline and _scan_ids(app):
            wall.sleep(0.05)
        assert _scan_ids(app) == set()  # the catch-up at start cleared it
    finally:
        running.shutdown(wait=True)


def _settings(tmp_path, **env):
    values = dict(DEFAULTS)
    values.update(from_environment({"IOP_INSTANCE_PATH": str(tmp_path), **env}))
    finish(values)
    return values


def test_the_retention_setting_defaults_to_90_days_and_reads_the_environment(tmp_path):
    assert _settings(tmp_path)["SCAN_RETENTION_DAYS"] == 90
    assert _settings(tmp_path, IOP_SCAN_RETENTION_DAYS=" 30 ")["SCAN_RETENTION_DAYS"] == 30
    assert _settings(tmp_path, IOP_SCAN_RETENTION_DAYS="1")["SCAN_RETENTION_DAYS"] == 1


@pytest.mark.parametrize("raw", ["0", "-5", "1.5", "ninety", "9_0", "٣", "36501", "1e3"])
def test_a_bad_retention_is_refused_at_start_in_one_line(tmp_path, raw):
    with pytest.raises(ConfigError) as excinfo:
        _settings(tmp_path, IOP_SCAN_RETENTION_DAYS=raw)
    assert "IOP_SCAN_RETENTION_DAYS" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_a_retention_inside_the_offline_replay_window_is_refused(tmp_path):
    base = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k"}
    with pytest.raises(ConfigError, match="IOP_SCAN_RETENTION_DAYS"):
        create_app({**base, "OFFLINE_SCAN_MAX_AGE_HOURS": 48, "SCAN_RETENTION_DAYS": 2})
    assert create_app({**base, "OFFLINE_SCAN_MAX_AGE_HOURS": 48, "SCAN_RETENTION_DAYS": 3}).config[
        "SCAN_RETENTION_DAYS"] == 3

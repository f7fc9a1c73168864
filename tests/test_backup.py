"""Backups: `iop backup`, `iop backup verify`, `iop restore` through the real `iop` command (good files and
every kind of bad one), the scheduled backups, /healthz and the admin Backups page.

The restore drill with real servers is tests/test_backup_drill.py."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import servers
from iop import clock
from iop.ops import backup

KEY = "correct-horse-battery-staple-1"
OTHER_KEY = "another-long-key-for-the-test-2"


# ---- the real command -------------------------------------------------------------------------------

def environment(instance: Path, **extra: str) -> dict:
    env = servers.environment(instance, f"sqlite:///{instance / 'iop.sqlite3'}")
    env.update(extra)
    return env


def iop(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(servers.BIN / "iop"), *args], env=env, capture_output=True, text=True, timeout=300)


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 1 with one line on stderr naming `words`, and no traceback."""
    line = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and line.count("\n") == 0, result.stderr
    for word in words:
        assert word in line, line
    return line


def everything(instance: Path) -> str:
    """Every row of the instance's database, as SQL text (to prove nothing changed)."""
    connection = sqlite3.connect(instance / "iop.sqlite3")
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def manifest_of(path: Path) -> tuple[dict, bytes]:
    """The manifest and the database member of a plain backup, read without IOP's code."""
    raw = path.read_bytes()
    assert raw[:16] == b"IOP-KIOSK-BACKUP" and raw[16] == 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw[17:]))) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        database = tar.extractfile("database.sqlite3").read()
    return manifest, database


def export(env: dict, kind: str, at: datetime) -> str:
    """`iop export KIND` of the instance as at `at` (an attendance still open is credited up to "now"),
    run in this process so its clock can be stopped there."""
    from iop import config, create_app
    from iop.store import db

    today = at.date()
    app = create_app({**config.from_environment(env), "SCHEDULER": False})
    try:
        with clock.frozen(at):
            result = app.test_cli_runner().invoke(args=[
                "export", kind, "--from", (today - timedelta(days=60)).isoformat(),
                "--to", (today + timedelta(days=7)).isoformat()])
    finally:
        db.database(app).engine.dispose()
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An instance with the demo program, a plain backup and an encrypted one of it."""
    folder = tmp_path_factory.mktemp("source")
    instance = folder / "instance"
    env = environment(instance)
    assert iop(env, "demo").returncode == 0
    made = iop(env, "backup")
    assert made.returncode == 0, made.stderr
    plain = next((instance / "backups").glob("iop-backup-*.iopbak"))
    encrypted = folder / "encrypted.iopbak"
    sealed = iop({**env, "IOP_BACKUP_KEY": KEY}, "backup", "-o", str(encrypted))
    assert sealed.returncode == 0, sealed.stderr
    at = datetime.now(timezone.utc)
    return {"instance": instance, "env": env, "plain": plain, "encrypted": encrypted, "folder": folder, "at": at,
            "exports": {kind: export(env, kind, at) for kind in ("hours", "attendance", "days")}}


def changed_copy(source, instance: Path, change: str) -> Path:
    """A new instance folder holding a copy of the source's database with one SQL statement applied."""
    instance.mkdir(mode=0o700)
    shutil.copy(source["instance"] / "iop.sqlite3", instance / "iop.sqlite3")
    connection = sqlite3.connect(instance / "iop.sqlite3")
    connection.execute(change)
    connection.commit()
    connection.close()
    return instance


@pytest.fixture
def target(tmp_path, source):
    """Another instance holding a program (a copy of the source's database, changed a little)."""
    instance = changed_copy(source, tmp_path / "target",
                            "UPDATE client SET first_name = 'Changed' WHERE client_id = (SELECT min(client_id) FROM client)")
    return {"instance": instance, "env": environment(instance), "before": everything(instance)}


def assert_unchanged(target: dict) -> None:
    assert everything(target["instance"]) == target["before"], "the refused restore changed the database"
    assert not list(target["instance"].glob("backups/replaced-*")), "nothing was kept aside: nothing was replaced"


# ---- iop backup ---------------------------------------------------------------------------------------

def test_a_backup_is_one_private_compressed_file_with_its_manifest(source):
    path = source["plain"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    manifest, database = manifest_of(path)
    assert manifest["timezone"] == "America/New_York" and manifest["database"] == "sqlite"
    assert manifest["schema_revision"] == backup.known_revisions()[-1]
    assert manifest["seconds"] >= 0 and manifest["made_at"].endswith("Z")
    assert manifest["sha256"] == hashlib.sha256(database).hexdigest()
    live = sqlite3.connect(source["instance"] / "iop.sqlite3")
    for table in ("client", "attendance", "group_session", "staff_user"):
        assert manifest["tables"][table] == live.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
    live.close()
    assert path.stat().st_size < len(database), "the file is compressed"


def test_backup_o_writes_the_named_file_and_says_what_it_holds(source, tmp_path):
    path = tmp_path / "named.iopbak"
    result = iop(source["env"], "backup", "-o", str(path))
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout and "not encrypted" in result.stdout
    assert path.stat().st_mode & 0o777 == 0o600


def test_backup_o_into_a_missing_folder_or_onto_a_folder_is_one_line(source, tmp_path):
    refused(iop(source["env"], "backup", "-o", str(tmp_path / "no" / "such" / "b.iopbak")), "folder does not exist")
    refused(iop(source["env"], "backup", "-o", str(tmp_path)), "is a folder")


def test_backup_of_an_instance_without_a_database_is_one_line(tmp_path):
    refused(iop(environment(tmp_path / "empty"), "backup"), "iop init")


def test_an_encrypted_backup_needs_its_key(source):
    raw = source["encrypted"].read_bytes()
    assert raw[16] == 1, "marked encrypted"
    with pytest.raises(OSError):
        gzip.decompress(raw[17:])  # no readable compressed data inside
    ok = iop({**source["env"], "IOP_BACKUP_KEY": KEY}, "backup", "verify", str(source["encrypted"]))
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stderr
    refused(iop(source["env"], "backup", "verify", str(source["encrypted"])), "encrypted", "IOP_BACKUP_KEY")
    refused(iop({**source["env"], "IOP_BACKUP_KEY": OTHER_KEY}, "backup", "verify", str(source["encrypted"])),
            "wrong key")


def test_a_short_backup_key_or_bad_schedule_setting_is_one_line(tmp_path):
    env = environment(tmp_path / "i")
    refused(iop({**env, "IOP_BACKUP_KEY": "short"}, "init"), "IOP_BACKUP_KEY", "16")
    refused(iop({**env, "IOP_BACKUP_EVERY_HOURS": "daily"}, "init"), "IOP_BACKUP_EVERY_HOURS")
    refused(iop({**env, "IOP_BACKUP_KEEP": "0"}, "init"), "IOP_BACKUP_KEEP")


def test_postgres_without_pg_dump_is_one_clear_line(tmp_path):
    base = servers.required_postgres()
    with servers.fresh_schema(base) as url:
        env = servers.environment(tmp_path / "pg", url)
        assert iop(env, "init").returncode == 0
        no_tools = tmp_path / "bin"
        no_tools.mkdir()
        refused(iop({**env, "PATH": str(no_tools)}, "backup", "-o", str(tmp_path / "b.iopbak")),
                "pg_dump is not installed")
        assert not (tmp_path / "b.iopbak").exists()


# ---- iop backup verify: good and bad files ---------------------------------------------------------------

def test_verify_restores_into_a_temporary_database_and_passes(source):
    result = iop(source["env"], "backup", "verify", str(source["plain"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK") and "rows" in result.stdout
    assert not list(source["instance"].glob(".iop-restore-*")), "the temporary database is gone"


def bad_files(source, folder: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of bad file, with the words its refusal says."""
    raw = source["plain"].read_bytes()
    files = {}

    def write(name, data, words):
        path = folder / name
        path.write_bytes(data)
        files[name] = (path, words)

    write("empty.iopbak", b"", "truncated")
    write("truncated.iopbak", raw[:len(raw) // 2], "truncated")
    corrupt = bytearray(raw)
    corrupt[len(raw) // 2] ^= 0xFF
    write("corrupt.iopbak", bytes(corrupt), "damaged")
    write("foreign-sqlite.iopbak", (source["instance"] / "iop.sqlite3").read_bytes(), "not an IOP Kiosk backup")
    write("foreign-text.iopbak", b"client_id,first_name\nC1,Maria\n", "not an IOP Kiosk backup")
    stray = io.BytesIO()
    with tarfile.open(fileobj=stray, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    write("foreign-tar.iopbak", b"IOP-KIOSK-BACKUP\x00" + stray.getvalue(), "not an IOP Kiosk backup")
    # Whole and with a matching checksum, but its database is not one (made by hand, or a bug).
    garbage = b"not a database " * 100
    manifest, _database = manifest_of(source["plain"])
    manifest.update(sha256=hashlib.sha256(garbage).hexdigest(), size=len(garbage))
    crafted = io.BytesIO()
    with tarfile.open(fileobj=crafted, mode="w:gz") as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode()), ("database.sqlite3", garbage)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    write("not-a-database.iopbak", b"IOP-KIOSK-BACKUP\x00" + crafted.getvalue(), "damaged")
    sealed = bytearray(source["encrypted"].read_bytes())
    sealed[-40] ^= 0x01
    files["corrupt-encrypted.iopbak"] = (folder / "corrupt-encrypted.iopbak", "damaged")
    files["corrupt-encrypted.iopbak"][0].write_bytes(bytes(sealed))
    return files


def test_verify_refuses_every_kind_of_bad_file_in_one_line(source, tmp_path):
    env = {**source["env"], "IOP_BACKUP_KEY": KEY}  # the key of the encrypted one: only the damage is wrong
    for name, (path, words) in bad_files(source, tmp_path).items():
        line = refused(iop(env, "backup", "verify", str(path)), words)
        assert "Maria" not in line, name
    refused(iop(env, "backup", "verify", str(tmp_path / "missing.iopbak")), "no file")
    refused(iop(env, "backup", "verify", str(tmp_path)), "folder")


@pytest.fixture
def newer_schema_backup(source, tmp_path):
    """A backup whose schema revision this version does not know (as if made by a later version)."""
    instance = changed_copy(source, tmp_path / "newer", "UPDATE alembic_version SET version_num = '0099'")
    path = tmp_path / "newer.iopbak"
    assert iop(environment(instance), "backup", "-o", str(path)).returncode == 0
    return path


def test_verify_refuses_a_newer_schema(source, newer_schema_backup):
    refused(iop(source["env"], "backup", "verify", str(newer_schema_backup)), "newer", "0099")


# ---- iop restore -----------------------------------------------------------------------------------------

def test_restore_into_a_new_instance_gives_the_same_exports(source, tmp_path):
    env = environment(tmp_path / "new-machine")
    result = iop(env, "restore", str(source["plain"]))
    assert result.returncode == 0, result.stderr
    assert "Restored" in result.stdout
    assert (tmp_path / "new-machine" / "iop.sqlite3").stat().st_mode & 0o777 == 0o600
    for kind, text in source["exports"].items():
        assert export(env, kind, source["at"]) == text, kind


def test_restore_on_a_server_with_another_secret_key_says_what_stops_working(source, tmp_path):
    same = iop(environment(tmp_path / "same-key"), "restore", str(source["plain"]))
    assert same.returncode == 0 and "secret key" not in same.stderr
    other = iop(environment(tmp_path / "other-key", IOP_SECRET_KEY="another-secret-" + "z" * 40),
                "restore", str(source["plain"]))
    assert other.returncode == 0, other.stderr
    assert "secret key" in other.stderr and "IOP_SECRET_KEY" in other.stderr and "cards" in other.stderr


def test_restore_of_an_encrypted_backup_with_its_key(source, tmp_path):
    env = environment(tmp_path / "new-machine", IOP_BACKUP_KEY=KEY)
    result = iop(env, "restore", str(source["encrypted"]))
    assert result.returncode == 0, result.stderr
    assert export(env, "attendance", source["at"]) == source["exports"]["attendance"]


def test_restore_refuses_to_replace_data_without_force(source, target):
    refused(iop(target["env"], "restore", str(source["plain"])), "--force")
    assert_unchanged(target)


def test_restore_force_replaces_data_and_keeps_the_old_database_aside(source, target):
    result = iop(target["env"], "restore", "--force", str(source["plain"]))
    assert result.returncode == 0, result.stderr
    assert export(target["env"], "attendance", source["at"]) == source["exports"]["attendance"]
    kept = list((target["instance"] / "backups").glob("replaced-*.iopbak"))
    assert len(kept) == 1 and str(kept[0]) in result.stdout
    assert kept[0].stat().st_mode & 0o777 == 0o600
    # What was replaced can itself be restored: the changed name comes back.
    back = iop(target["env"], "restore", "--force", str(kept[0]))
    assert back.returncode == 0, back.stderr
    connection = sqlite3.connect(target["instance"] / "iop.sqlite3")
    assert connection.execute("SELECT count(*) FROM client WHERE first_name = 'Changed'").fetchone()[0] == 1
    connection.close()


def test_restore_refuses_bad_files_and_changes_nothing(source, target, tmp_path, newer_schema_backup):
    folder = tmp_path / "bad"
    folder.mkdir()
    env = {**target["env"], "IOP_BACKUP_KEY": KEY}
    cases = {name: words for name, (_path, words) in bad_files(source, folder).items()}
    for name, words in cases.items():
        refused(iop(env, "restore", "--force", str(folder / name)), words)
    refused(iop(env, "restore", "--force", str(folder / "missing.iopbak")), "no file")
    refused(iop({**target["env"], "IOP_BACKUP_KEY": OTHER_KEY}, "restore", "--force", str(source["encrypted"])),
            "wrong key")
    refused(iop(target["env"], "restore", "--force", str(source["encrypted"])), "encrypted")
    refused(iop(env, "restore", "--force", str(newer_schema_backup)), "newer")
    assert_unchanged(target)


def test_restore_refuses_another_time_zone_unless_forced(source, tmp_path):
    env = environment(tmp_path / "elsewhere", IOP_TIMEZONE="America/Chicago")
    refused(iop(env, "restore", str(source["plain"])), "IOP_TIMEZONE=America/New_York")
    assert not (tmp_path / "elsewhere" / "iop.sqlite3").exists()


def test_an_older_schema_is_migrated_forward_after_the_restore(tmp_path):
    from alembic import command

    from iop import create_app
    from iop.store import db, migrate

    old = tmp_path / "old"
    app = create_app({"INSTANCE_PATH": str(old), "SECRET_KEY": "x" * 40, "SCHEDULER": False})
    with app.app_context():
        command.upgrade(migrate.alembic_config(app), "0003")
    db.database(app).engine.dispose()
    path = tmp_path / "old.iopbak"
    assert iop(environment(old), "backup", "-o", str(path)).returncode == 0
    assert manifest_of(path)[0]["schema_revision"] == "0003"
    env = environment(tmp_path / "new")
    result = iop(env, "restore", str(path))
    assert result.returncode == 0, result.stderr
    head = backup.known_revisions()[-1]
    assert f"revision {head}" in result.stdout
    connection = sqlite3.connect(tmp_path / "new" / "iop.sqlite3")
    assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head
    connection.close()
    added = iop(env, "user", "add", "lee", "--role", "facilitator", "--password-stdin")
    assert added.returncode in (0, 1) and "Traceback" not in added.stderr


# ---- scheduled backups -------------------------------------------------------------------------------

UTC = timezone.utc


def test_the_schedule_backs_up_when_due_verifies_and_keeps_the_last_n(app, world, freeze):
    world.client(first="Maria", last="Gonzalez")
    app.config.update(BACKUP_EVERY_HOURS=24, BACKUP_KEEP=2)
    freeze(datetime(2026, 3, 2, 8, tzinfo=UTC))
    with app.app_context():
        first = backup.scheduled_backup()
        assert first is not None and first.exists()
        listed = backup.backups(app)
        assert [entry.path for entry in listed] == [first] and listed[0].verified is True
        assert backup.scheduled_backup() is None, "not due again at once"
        clock.advance(timedelta(hours=23, minutes=59))
        assert backup.scheduled_backup() is None, "not due before the interval"
        clock.advance(timedelta(minutes=1))
        second = backup.scheduled_backup()
        assert second is not None
        # A backup being written (its partial name) is never deleted.
        writing = first.parent / ".iop-backup-20260303T080000Z.iopbak.abcd.partial"
        writing.write_bytes(b"half")
        clock.advance(timedelta(days=3))  # a missed run (the server was off): one backup, not three
        third = backup.scheduled_backup()
        assert backup.scheduled_backup() is None
        assert [entry.path for entry in backup.backups(app)] == [third, second]
        assert not first.exists() and writing.exists()
        assert not Path(str(first) + backup.CHECKED_SUFFIX).exists()


def test_the_schedule_is_off_at_zero(app, freeze):
    app.config.update(BACKUP_EVERY_HOURS=0)
    with app.app_context():
        assert backup.scheduled_backup() is None
    assert backup.backups(app) == []


def test_health_reports_none_ok_stale_and_off(app, client, freeze):
    app.config.update(BACKUP_EVERY_HOURS=24)
    freeze(datetime(2026, 3, 2, 8, tzinfo=UTC))
    assert client.get("/healthz").get_json()["backup"] == "none"
    with app.app_context():
        backup.scheduled_backup()
    body = client.get("/healthz").get_json()
    assert body["backup"] == "ok" and body["status"] == "ok"
    clock.advance(timedelta(hours=48))
    assert client.get("/healthz").get_json()["backup"] == "ok", "stale only past twice the interval"
    clock.advance(timedelta(minutes=1))
    body = client.get("/healthz").get_json()
    assert body["backup"] == "stale" and body["status"] == "degraded"
    app.config.update(BACKUP_EVERY_HOURS=0)
    assert client.get("/healthz").get_json()["backup"] == "off"


def test_a_failed_scheduled_backup_is_logged_without_names_and_shows(app, client, world, auth, freeze, tmp_path,
                                                                    caplog):
    world.client(first="Maria", last="Gonzalez")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    app.config.update(BACKUP_EVERY_HOURS=24, BACKUP_DIR=str(blocker / "backups"))
    freeze(datetime(2026, 3, 2, 8, tzinfo=UTC))
    with caplog.at_level(logging.INFO), app.app_context():
        assert backup.scheduled_backup() is None
    failed = [record.getMessage() for record in caplog.records if "backup" in record.getMessage()]
    assert failed and "failed" in failed[0]
    assert not any("Maria" in line or "Gonzalez" in line for line in caplog.messages)
    body = client.get("/healthz").get_json()
    assert body["backup"] == "none" and body["status"] == "degraded" and body["backup_failed_at"]
    auth.login("ada", "an admin password 1", role="admin")
    page = client.get("/coordinator/backups").get_data(as_text=True)
    assert 'id="backup-failure"' in page and "failed" in page

    app.config.update(BACKUP_DIR=str(tmp_path / "backups"))  # someone fixes the folder
    clock.advance(backup.RETRY_AFTER)
    with app.app_context():
        assert backup.scheduled_backup() is not None
    body = app.test_client().get("/healthz").get_json()  # a monitor, not the admin signed out as idle
    assert body["backup"] == "ok" and "backup_failed_at" not in body and body["status"] == "ok"
    client.get("/login?idle=1")  # the idle admin signs in again
    auth.login("ada", "an admin password 1", role="admin")
    assert 'id="backup-failure"' not in client.get("/coordinator/backups").get_data(as_text=True)


# ---- the Backups page -----------------------------------------------------------------------------------

def test_the_backups_page_lists_time_size_and_check_for_admins_only(app, client, auth, world, freeze):
    world.client(first="Maria", last="Gonzalez")
    app.config.update(BACKUP_EVERY_HOURS=24)
    freeze(datetime(2026, 3, 2, 13, 5, tzinfo=UTC))
    with app.app_context():
        checked = backup.scheduled_backup()
        clock.advance(timedelta(hours=1))
        unchecked = backup.new_backup_path(app)
        backup.write_backup(app, unchecked)
    auth.login("casey", "a coordinator pw", role="coordinator")
    assert client.get("/coordinator/backups").status_code == 403
    assert "/coordinator/backups" not in client.get("/coordinator/").get_data(as_text=True)
    auth.logout()
    auth.login("ada", "an admin password 1", role="admin")
    response = client.get("/coordinator/backups")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Mon 02 Mar 2026 08:05" in page and "Mon 02 Mar 2026 09:05" in page  # program time (New York)
    assert checked.name in page and unchecked.name in page
    assert "Verified" in page and "Not checked" in page and " MB" in page
    assert 'href="/coordinator/backups"' in client.get("/coordinator/").get_data(as_text=True)
    assert "Maria" not in page


def test_the_real_scheduler_takes_a_verified_backup_at_start_and_none_when_off(app, world):
    import time as wall

    from iop.ops import scheduler

    world.client(first="Maria", last="Gonzalez")
    app.config.update(SCHEDULER=True, BACKUP_EVERY_HOURS=24)
    running = scheduler.start(app)
    try:
        assert "backup" in {job.id for job in running.get_jobs()}
        deadline = wall.monotonic() + 60
        while wall.monotonic() < deadline and not any(entry.verified for entry in backup.backups(app)):
            wall.sleep(0.1)
        assert [entry.verified for entry in backup.backups(app)] == [True]
    finally:
        running.shutdown(wait=True)
    app.config.update(BACKUP_EVERY_HOURS=0)
    running = scheduler.start(app)
    try:
        assert "backup" not in {job.id for job in running.get_jobs()}
    finally:
        running.shutdown(wait=True)


def test_restore_over_a_database_that_cannot_be_read_says_what_to_do(source, target):
    database = target["instance"] / "iop.sqlite3"
    database.write_bytes(b"x" * 100 + database.read_bytes()[100:])
    refused(iop(target["env"], "restore", "--force", str(source["plain"])), "cannot be read", "move its files")

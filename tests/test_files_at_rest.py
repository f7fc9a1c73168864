"""Files at rest are the service user's alone, whatever the umask it was started with: the instance
folder 0700; the database with its WAL and SHM files, the secret key, TLS keys and every file the
commands write with -o (exports, card PDFs, FHIR folders) 0600. Tested with a umask of 000."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from helpers.world import TEST_SECRET

BIN = Path(sys.executable).parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_new_instance_and_its_database_are_private(tmp_path, permissive_umask):
    from iop import create_app
    from iop.store import db, migrate

    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "SCHEDULER": False, "TESTING": True})
    migrate.upgrade(app)
    engine = db.database(app).engine
    with engine.connect() as connection:  # a reader holds the WAL and SHM files open
        connection.execute(text("SELECT count(*) FROM staff_user"))
        database = instance / "iop.sqlite3"
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), instance / "secret_key"):
            assert path.exists() and mode(path) == 0o600, (path.name, oct(mode(path)))
    assert mode(instance) == 0o700
    engine.dispose()


def test_an_older_instance_left_readable_is_closed_up_at_start(tmp_path, permissive_umask):
    import sqlite3

    from iop import create_app
    from iop.store import db

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "iop.sqlite3"
    sqlite3.connect(database).close()
    (instance / "secret_key").write_text("k" * 64 + "\n")
    for path in (database, instance / "secret_key"):
        path.chmod(0o644)
    instance.chmod(0o755)
    app = create_app({"INSTANCE_PATH": str(instance), "SCHEDULER": False, "TESTING": True})
    assert mode(instance) == 0o700
    assert mode(database) == 0o600 and mode(instance / "secret_key") == 0o600
    db.database(app).engine.dispose()


def test_tls_keys_made_for_iop_serve_https_are_private(tmp_path, permissive_umask):
    from iop import create_app
    from iop.ops import serving
    from iop.store import db

    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": TEST_SECRET, "SCHEDULER": False})
    cert, key = serving.ssl_context(app, None, None)
    tls = Path(key).parent
    assert mode(tls) == 0o700
    assert sorted(p.name for p in tls.iterdir()) == ["ca.crt", "ca.key", "server.crt", "server.key"]
    assert all(mode(p) == 0o600 for p in tls.iterdir()), {p.name: oct(mode(p)) for p in tls.iterdir()}
    db.database(app).engine.dispose()


def iop(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "iop"), *args], env=env, capture_output=True, text=True, timeout=180, umask=0)
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done


def test_files_the_commands_write_with_o_are_private_under_umask_000(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("IOP_")}
    env.update(IOP_INSTANCE_PATH=str(tmp_path / "instance"), IOP_SCHEDULER="off", IOP_SECRET_KEY=TEST_SECRET)
    iop(env, "demo")
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    first, last = (date.today() - timedelta(days=30)).isoformat(), (date.today() + timedelta(days=1)).isoformat()
    existing = out / "attendance.csv"
    existing.write_text("an older export, readable by all\n")
    existing.chmod(0o644)
    iop(env, "export", "attendance", "--from", first, "--to", last, "-o", str(existing))
    iop(env, "export", "hours", "--from", first, "--to", last, "--format", "xlsx", "-o", str(out / "hours.xlsx"))
    iop(env, "cards", "-o", str(out / "cards.pdf"))
    iop(env, "export", "fhir", "--from", first, "--to", last, "-o", str(out / "fhir"))
    written = {path.relative_to(out).as_posix(): mode(path) for path in out.rglob("*")}
    assert written == {"attendance.csv": 0o600, "hours.xlsx": 0o600, "cards.pdf": 0o600, "fhir": 0o700,
                       "fhir/Encounter.ndjson": 0o600, "fhir/Patient.ndjson": 0o600,
                       "fhir/Practitioner.ndjson": 0o600, "fhir/Group.ndjson": 0o600}, written
    assert existing.read_text().startswith("date,")  # the export replaced the older file
    instance = tmp_path / "instance"
    assert mode(instance) == 0o700
    kept = {p.name: mode(p) for p in instance.iterdir()}
    assert kept and set(kept.values()) == {0o600}, kept

"""Backups and restore: `iop backup`, `iop backup verify`, `iop restore` and the scheduled backups.

A backup is one file, mode 0600:

    MAGIC, then one byte: 0 (plain) or 1 (encrypted), then the body.
    plain body:     a gzip-compressed tar of `manifest.json` and the database: `database.sqlite3` (a copy
                    made with SQLite's online backup API, never a file copy of the live database) or
                    `database.pgdump` (pg_dump's custom format, taken in the snapshot the row counts read).
    encrypted body: salt (16 bytes), key check (32), nonce (12), then the plain body sealed with
                    AES-256-GCM (the `cryptography` library), the header as associated data. The key is
                    derived from IOP_BACKUP_KEY with scrypt; the key check tells a wrong key from damage.

The manifest names the program's time zone, the schema revision, the time taken, the rows of every
table and the SHA-256 of the database member. Reading a backup checks all of it before anything is
changed; `verify` also restores it into a temporary database and counts the rows there.

Scheduled backups (the scheduler's `backup` job) look at the backup folder, not at when they last ran:
a backup is due when the newest good one is older than IOP_BACKUP_EVERY_HOURS. Each is verified right
after it is written (the result is kept beside it), then the oldest beyond IOP_BACKUP_KEEP are deleted;
a backup being written has a hidden partial name and is never deleted. A failure is recorded in
`backup-failure.json` in the instance folder (a time and a reason, no names) for /healthz and the
Backups page.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from iop import clock
from iop.config import FILE_MODE, FOLDER_MODE, replacing
from iop.store import db

log = logging.getLogger(__name__)

MAGIC = b"IOP-KIOSK-BACKUP"  # 16 bytes
PLAIN, ENCRYPTED = 0, 1
FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
POSTGRES_MEMBER = "database.pgdump"
SALT_BYTES, CHECK_BYTES, NONCE_BYTES = 16, 32, 12
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}

NAME = re.compile(r"^iop-backup-(\d{8}T\d{6})Z(?:-\d+)?\.iopbak$")
CHECKED_SUFFIX = ".check.json"   # beside each scheduled backup: did it verify, and why not
FAILURE_FILE = "backup-failure.json"  # in the instance folder: there even when the backup folder cannot be
RETRY_AFTER = timedelta(hours=1)  # a failed scheduled backup is tried again after this (or the interval)
# Rows that every program has from `iop init` on: a database holding only these has no data to lose.
NOT_DATA = {"alembic_version", "level_of_care", "scheduler_heartbeat"}
# Tables every schema revision has: a restored database without one of them is not a program's.
CORE_TABLES = ("alembic_version", "client", "attendance", "group_session", "program_group", "staff_user")


class BackupError(Exception):
    """A backup cannot be made, read, verified or restored; the message is one line for a person."""


@dataclass
class Manifest:
    made_at: str                 # ISO UTC
    database: str                # "sqlite" | "postgresql"
    timezone: str
    schema_revision: str
    seconds: float
    tables: dict[str, int]
    sha256: str
    size: int
    schema_name: str | None = None   # PostgreSQL: the schema the program's tables live in
    secret_key_id: str = ""          # which IOP_SECRET_KEY signed its cards and kiosks (a hash, not the key)
    format: int = FORMAT

    def as_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError
            if int(data.get("format", 0)) > FORMAT:
                raise BackupError("the backup was made by a newer version of IOP Kiosk (format "
                                  f"{data['format']}): upgrade IOP Kiosk first.")
            made = cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
            if not isinstance(made.tables, dict) or not all(isinstance(n, int) for n in made.tables.values()):
                raise TypeError
            return made
        except (ValueError, TypeError):
            raise BackupError("the backup's manifest cannot be read: the file is damaged.") from None

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def describe(self) -> str:
        return (f"backup of {self.made_at.replace('T', ' ')[:16]} UTC, schema {self.schema_revision}, "
                f"{self.rows:,} rows in {len(self.tables)} tables")


# ---- settings ------------------------------------------------------------------------------------

def backup_dir(app: Flask | None = None) -> Path:
    return Path((app or current_app).config["BACKUP_DIR"])


def _key(app: Flask) -> str | None:
    return app.config.get("BACKUP_KEY") or None


def _dialect(app: Flask) -> str:
    return db.database(app).engine.dialect.name


# ---- making a backup -------------------------------------------------------------------------------

def new_backup_path(app: Flask, now: datetime | None = None, prefix: str = "iop-backup") -> Path:
    """A fresh name in the backup folder (made 0700 if missing), from the time. A database replaced by a
    restore is kept as "replaced-...": not one of the backups the schedule counts and deletes."""
    folder = backup_dir(app)
    _private_folder(folder)
    stamp = (now or clock.now()).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{prefix}-{stamp}.iopbak"
    count = 1
    while path.exists():
        path = folder / f"{prefix}-{stamp}-{count}.iopbak"
        count += 1
    return path


def _private_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        folder.chmod(FOLDER_MODE)
    except OSError as exc:
        raise BackupError(f"the backup folder {folder} cannot be made ({exc.strerror}): "
                          "set IOP_BACKUP_DIR to a folder this user can write.") from None


def write_backup(app: Flask, path: Path) -> Manifest:
    """Write a backup of the app's database to `path` (0600; nothing is left behind on failure)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise BackupError(f"cannot write {path}: its folder does not exist.")
    if path.is_dir():
        raise BackupError(f"{path} is a folder: name the backup file to write.")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=".iop-backup-", dir=path.parent) as work:
            work = Path(work)
            member = SQLITE_MEMBER if _dialect(app) == "sqlite" else POSTGRES_MEMBER
            database = work / member
            manifest = _copy_sqlite(app, database) if member == SQLITE_MEMBER else _dump_postgres(app, database)
            manifest.sha256, manifest.size = _sha256(database), database.stat().st_size
            manifest.seconds = round(time.monotonic() - started, 3)
            with replacing(path) as partial:
                _seal(partial, manifest, member, database, _key(app))
    except OSError as exc:
        raise BackupError(f"cannot write {path} ({exc.strerror or type(exc).__name__}).") from None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database cannot be read ({_first_line(exc)}).") from None
    return manifest


def _manifest(app: Flask, database: str, revision: str, tables: dict[str, int], schema_name=None) -> Manifest:
    return Manifest(made_at=clock.now().astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    database=database, timezone=str(app.config["TIMEZONE"]), schema_revision=revision,
                    seconds=0.0, tables=tables, sha256="", size=0, schema_name=schema_name,
                    secret_key_id=secret_key_id(app))


def secret_key_id(app: Flask) -> str:
    """A fingerprint of the secret key (which signs cards, kiosk cookies and sessions): a restore can tell
    whether the server has the key the backup's cards and kiosks were made with. The key is not kept."""
    return hashlib.sha256(b"iop-secret-key-id:" + str(app.config["SECRET_KEY"]).encode()).hexdigest()[:16]


def _sqlite_path(app: Flask) -> Path:
    return Path(make_url(app.config["DATABASE_URL"]).database)


def _copy_sqlite(app: Flask, copy: Path) -> Manifest:
    """SQLite's online backup API, in one step: one read transaction, so the copy is consistent, and in
    WAL mode kiosks keep writing meanwhile. The copy is made a standalone file (no WAL) and counted."""
    source_path = _sqlite_path(app)
    if not source_path.exists():
        raise BackupError("there is no database to back up yet: run `iop init` first.")
    source = sqlite3.connect(source_path, timeout=15)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
    try:
        target.execute("PRAGMA journal_mode=DELETE")
        tables, revision = _sqlite_contents(target)
    finally:
        target.close()
    return _manifest(app, "sqlite", revision, tables)


def _sqlite_contents(connection: sqlite3.Connection) -> tuple[dict[str, int], str]:
    names = [name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    tables = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    if "alembic_version" not in tables:
        raise BackupError("the database has no schema: run `iop init` first.")
    revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return tables, revision[0] if revision else ""


def _dump_postgres(app: Flask, dump: Path) -> Manifest:
    """pg_dump of the program's schema, in the snapshot (REPEATABLE READ) the row counts were read in."""
    pg_dump = _tool("pg_dump")
    raw = db.database(app).engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot(), current_schema()")
        snapshot, schema = cursor.fetchone()
        tables, revision = _postgres_contents(cursor, schema)
        dsn, env = _libpq(app.config["DATABASE_URL"])
        _run([pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}", f"--schema={schema}",
              "--no-owner", "--no-privileges", f"--file={dump}", f"--dbname={dsn}"], env, "pg_dump")
        raw.rollback()
    finally:
        raw.close()
    return _manifest(app, "postgresql", revision, tables, schema_name=schema)


def _postgres_contents(cursor, schema: str) -> tuple[dict[str, int], str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))
    names = [name for (name,) in cursor.fetchall()]
    if "alembic_version" not in names:
        raise BackupError("the database has no schema: run `iop init` first.")
    tables = {}
    for name in names:
        cursor.execute(f'SELECT count(*) FROM "{schema}"."{name}"')
        tables[name] = cursor.fetchone()[0]
    cursor.execute(f'SELECT version_num FROM "{schema}".alembic_version')
    revision = cursor.fetchone()
    return tables, revision[0] if revision else ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools "
                          "(e.g. apt install postgresql-client) to back up or restore a PostgreSQL database.")
    return found


def _libpq(url: str, database: str | None = None) -> tuple[str, dict]:
    """The libpq connection string of a SQLAlchemy URL, the password in the environment (not argv)."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    parsed = parsed.set(drivername="postgresql", password=None)
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict, what: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        reason = next((line for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
        raise BackupError(f"{what} failed: {reason.strip()[:200]}")
    return done.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- the file: a compressed tar, optionally sealed ---------------------------------------------------

def _seal(path: Path, manifest: Manifest, member: str, database: Path, key: str | None) -> None:
    body = io.BytesIO() if key else None
    with open(path, "wb") as out:
        out.write(MAGIC + bytes([ENCRYPTED if key else PLAIN]))
        target = body if key else out
        with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=6, mtime=0) as zipped:
            with tarfile.open(fileobj=zipped, mode="w") as tar:
                _add(tar, MANIFEST, io.BytesIO(manifest.as_json()), len(manifest.as_json()))
                with open(database, "rb") as handle:
                    _add(tar, member, handle, database.stat().st_size)
        if key:
            out.write(_encrypt(body.getvalue(), key))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, FILE_MODE)


def _add(tar: tarfile.TarFile, name: str, handle, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, FILE_MODE
    tar.addfile(info, handle)


def _derive(key: str, salt: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    derived = Scrypt(salt=salt, length=64, **SCRYPT).derive(key.encode())
    return derived[:32], hashlib.sha256(derived[32:]).digest()


def _encrypt(body: bytes, key: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
    secret, check = _derive(key, salt)
    header = salt + check + nonce
    return header + AESGCM(secret).encrypt(nonce, body, MAGIC + bytes([ENCRYPTED]) + header)


def _decrypt(sealed: bytes, key: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header_size = SALT_BYTES + CHECK_BYTES + NONCE_BYTES
    if len(sealed) < header_size + 16:
        raise BackupError("the backup is truncated.")
    salt, check = sealed[:SALT_BYTES], sealed[SALT_BYTES:SALT_BYTES + CHECK_BYTES]
    nonce, header = sealed[SALT_BYTES + CHECK_BYTES:header_size], sealed[:header_size]
    secret, expected = _derive(key, salt)
    if not secrets.compare_digest(check, expected):
        raise BackupError("IOP_BACKUP_KEY does not open this backup (a wrong key).")
    try:
        return AESGCM(secret).decrypt(nonce, sealed[header_size:], MAGIC + bytes([ENCRYPTED]) + header)
    except InvalidTag:
        raise BackupError("the backup is truncated or damaged (its encryption does not check out).") from None


@dataclass
class Opened:
    manifest: Manifest
    database: Path          # the database member, extracted
    encrypted: bool = False
    notes: list[str] = field(default_factory=list)


def open_backup(app: Flask, path: Path, work: Path) -> Opened:
    """Read and check a backup file into `work`: the kind of file, the key, the compression, the
    manifest, the checksum and the schema revision. Changes nothing else; raises BackupError."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC) + 1)
            if len(head) < len(MAGIC) + 1 and (MAGIC + b"\x00").startswith(head[:len(MAGIC)]):
                raise BackupError(f"{path.name} is truncated (empty or cut short).")
            if head[:len(MAGIC)] != MAGIC or head[-1] not in (PLAIN, ENCRYPTED):
                raise BackupError(f"{path.name} is not an IOP Kiosk backup.")
            encrypted = head[-1] == ENCRYPTED
            if encrypted:
                key = _key(app)
                if not key:
                    raise BackupError("the backup is encrypted: set IOP_BACKUP_KEY to the key it was made with.")
                body = io.BytesIO(_decrypt(handle.read(), key))
                opened = _unpack(body, work)
            else:
                opened = _unpack(handle, work)
    except FileNotFoundError:
        raise BackupError(f"there is no file {path}.") from None
    except IsADirectoryError:
        raise BackupError(f"{path} is a folder, not a backup file.") from None
    except PermissionError:
        raise BackupError(f"{path} cannot be read (permission denied).") from None
    opened.encrypted = encrypted
    _check_revision(opened.manifest)
    return opened


def _unpack(handle, work: Path) -> Opened:
    manifest, database = None, None
    try:
        with tarfile.open(fileobj=handle, mode="r|gz") as tar:
            for info in tar:
                if info.name == MANIFEST and info.isfile() and info.size < 1 << 20:
                    manifest = Manifest.from_json(tar.extractfile(info).read())
                elif info.name in (SQLITE_MEMBER, POSTGRES_MEMBER) and info.isfile():
                    database = work / info.name
                    with open(database, "wb") as out:
                        shutil.copyfileobj(tar.extractfile(info), out, 1 << 20)
                else:
                    raise BackupError("the backup holds an unexpected file: it is not an IOP Kiosk backup.")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile):
        raise BackupError("the backup is truncated or damaged (it cannot be uncompressed).") from None
    if manifest is None or database is None:
        raise BackupError("the backup is truncated or damaged (its manifest or database is missing).")
    expected = SQLITE_MEMBER if manifest.database == "sqlite" else POSTGRES_MEMBER
    if database.name != expected:
        raise BackupError("the backup's manifest does not match its contents: the file is damaged.")
    if database.stat().st_size != manifest.size or _sha256(database) != manifest.sha256:
        raise BackupError("the backup's checksum does not match: the file is damaged.")
    return Opened(manifest, database)


def known_revisions() -> list[str]:
    """The schema revisions this version knows, oldest first."""
    from alembic.script import ScriptDirectory

    from iop.store.migrate import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))
    return [revision.revision for revision in reversed(list(scripts.walk_revisions()))]


def _check_revision(manifest: Manifest) -> None:
    if manifest.schema_revision not in known_revisions():
        raise BackupError(f"the backup's schema (revision {manifest.schema_revision!r}) is newer than this version "
                          "of IOP Kiosk knows: upgrade IOP Kiosk, then restore.")


# ---- verify: restore into a temporary database and count ------------------------------------------

def verify(app: Flask, path: Path) -> Manifest:
    """Check the file, restore it into a temporary database, and check the rows and the schema there."""
    with _work_folder(app) as work:
        opened = open_backup(app, path, work)
        _verify_opened(app, opened, work)
        return opened.manifest


@contextlib.contextmanager
def _work_folder(app: Flask):
    """A private temporary folder for an opened backup (in the instance folder: it may be large).
    A disk that fills up, or a database member SQLite cannot read, is the person's one line too."""
    try:
        with tempfile.TemporaryDirectory(prefix=".iop-restore-", dir=app.config["INSTANCE_PATH"]) as work:
            yield Path(work)
    except sqlite3.DatabaseError:
        raise BackupError("the backup's database cannot be read by SQLite: the file is damaged.") from None
    except OSError as exc:
        raise BackupError(f"the backup cannot be unpacked here ({exc.strerror or type(exc).__name__}).") from None


def _verify_opened(app: Flask, opened: Opened, work: Path) -> None:
    manifest = opened.manifest
    if manifest.database == "sqlite":
        temporary = work / "verify.sqlite3"
        _restore_sqlite(opened.database, temporary)
        connection = sqlite3.connect(temporary)
        try:
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError("the backup's database fails SQLite's integrity check: the file is damaged.")
            tables, revision = _sqlite_contents(connection)
        finally:
            connection.close()
    else:
        tables, revision = _verify_postgres(app, opened)
    if revision != manifest.schema_revision:
        raise BackupError(f"the restored schema is revision {revision!r}, the manifest says "
                          f"{manifest.schema_revision!r}: the file is damaged.")
    missing = sorted(set(CORE_TABLES) - set(tables))
    if missing:
        raise BackupError(f"the restored database lacks the table(s) {', '.join(missing)} of its schema.")
    for table, count in manifest.tables.items():
        if tables.get(table) != count:
            raise BackupError(f"the restored table {table} has {tables.get(table)} rows, the manifest says {count}.")


def _verify_postgres(app: Flask, opened: Opened) -> tuple[dict[str, int], str]:
    if _dialect(app) != "postgresql":
        raise BackupError("this is a PostgreSQL backup: verify it with IOP_DATABASE_URL naming a PostgreSQL server "
                          "(a temporary database is made there).")
    url = app.config["DATABASE_URL"]
    name = f"iop_verify_{secrets.token_hex(6)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            try:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
            except Exception as exc:
                raise BackupError("a temporary database cannot be made to verify the backup (the database role "
                                  f"needs CREATEDB): {_first_line(exc)}") from None
        try:
            temporary_url = make_url(url).set(database=name)
            _pg_restore(temporary_url.render_as_string(hide_password=False), opened.database,
                        opened.manifest.schema_name)
            engine = create_engine(temporary_url)
            try:
                raw = engine.raw_connection()
                try:
                    return _postgres_contents(raw.cursor(), opened.manifest.schema_name)
                finally:
                    raw.close()
            finally:
                engine.dispose()
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _first_line(exc: BaseException) -> str:
    words = str(getattr(exc, "orig", None) or exc).strip()
    return (words.splitlines()[0] if words else type(exc).__name__)[:200]


# ---- restore -------------------------------------------------------------------------------------

@dataclass
class Restored:
    manifest: Manifest
    kept_aside: Path | None
    revision_now: str
    same_secret_key: bool


def database_has_data(app: Flask) -> bool:
    """Whether the app's database holds anything beyond what `iop init` puts there."""
    engine = db.database(app).engine
    if engine.dialect.name == "sqlite" and not _sqlite_path(app).exists():
        return False
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql" and connection.execute(text("SELECT current_schema()")).scalar() is None:
            return False  # its schema does not exist yet
        names = set(inspect(connection).get_table_names()) - NOT_DATA
        return any(connection.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() for name in sorted(names))


def restore(app: Flask, path: Path, force: bool = False) -> Restored:
    """Check the backup, restore it over the app's database and migrate it forward. Refuses (changing
    nothing) a file that does not check out, and a database with data unless `force`; the replaced
    database is first kept aside as a backup of its own."""
    from iop.store import migrate

    with _work_folder(app) as work:
        opened = open_backup(app, path, work)
        manifest = opened.manifest
        here = _dialect(app)
        if manifest.database != here:
            raise BackupError(f"this is a {_kind(manifest.database)} backup and IOP_DATABASE_URL names a "
                              f"{_kind(here)} database: restore it into a {_kind(manifest.database)} database.")
        if manifest.timezone != str(app.config["TIMEZONE"]) and not force:
            raise BackupError(f"the backup's program time zone is {manifest.timezone} and IOP_TIMEZONE is "
                              f"{app.config['TIMEZONE']}: set IOP_TIMEZONE={manifest.timezone} (or add --force).")
        if here == "postgresql":
            schema = _current_schema(app)
            if manifest.schema_name != schema:
                raise BackupError(f"the backup is of the PostgreSQL schema {manifest.schema_name!r} and "
                                  f"IOP_DATABASE_URL uses the schema {schema!r}: restore it where the search path "
                                  f"is {manifest.schema_name!r}.")
        try:
            has_data = database_has_data(app)
        except DatabaseError as exc:
            raise BackupError(f"the database being replaced cannot be read ({_first_line(exc)}): move its files "
                              "out of the way (or drop its tables), then restore.") from None
        if has_data and not force:
            raise BackupError("the database already holds data: add --force to replace it "
                              "(it is kept aside as a backup first).")
        _verify_opened(app, opened, work)
        kept = None
        if has_data:
            kept = new_backup_path(app, prefix="replaced")
            write_backup(app, kept)
        db.database(app).engine.dispose()
        if here == "sqlite":
            _restore_sqlite(opened.database, _sqlite_path(app))
        else:
            _restore_postgres(app, opened)
        db.database(app).engine.dispose()
        migrate.upgrade(app)
        with db.database(app).engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        same_key = not manifest.secret_key_id or manifest.secret_key_id == secret_key_id(app)
        return Restored(manifest, kept, revision, same_key)


def _kind(dialect: str) -> str:
    return "SQLite" if dialect == "sqlite" else "PostgreSQL"


def _restore_sqlite(source_file: Path, database: Path) -> None:
    """Copy the backup's database into `database` with SQLite's backup API: the target is replaced whole
    in one write transaction, whether or not it exists (its folder is made 0700)."""
    database.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    source = sqlite3.connect(source_file)
    target = sqlite3.connect(database, timeout=15)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(FILE_MODE)


def _current_schema(app: Flask) -> str:
    """The schema the program's tables go in: the first of the search path (which may not exist yet,
    on a new database server)."""
    with db.database(app).engine.connect() as connection:
        found = connection.execute(text("SELECT current_schema()")).scalar()
        if found:
            return found
        path = connection.execute(text("SHOW search_path")).scalar()
    names = [name.strip().strip('"') for name in path.split(",")]
    return next((name for name in names if name and name != "$user"), "public")


def _restore_postgres(app: Flask, opened: Opened) -> None:
    """Drop the program's tables in the schema, then pg_restore the dump into it."""
    from iop.store.models import Base

    schema = opened.manifest.schema_name
    engine = db.database(app).engine
    with engine.begin() as connection:
        for table in [*reversed(Base.metadata.sorted_tables), "alembic_version"]:
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{schema}"."{getattr(table, "name", table)}" CASCADE')
    _pg_restore(app.config["DATABASE_URL"], opened.database, schema)


def _pg_restore(url: str, dump: Path, schema: str) -> None:
    """pg_restore into the database at `url`, into `schema` (made if missing; the dump's own CREATE
    SCHEMA is left out, so a schema that exists, like public, is used as it is)."""
    pg_restore = _tool("pg_restore")
    dsn, env = _libpq(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        admin.dispose()
    contents = _run([pg_restore, "--list", str(dump)], env, "pg_restore")
    wanted = dump.with_suffix(".list")
    wanted.write_text("".join(line + "\n" for line in contents.splitlines() if not re.search(r"\bSCHEMA - ", line)))
    _run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          f"--use-list={wanted}", f"--dbname={dsn}", str(dump)], env, "pg_restore")


# ---- the backup folder: listing, scheduled backups, health ------------------------------------------

@dataclass
class Entry:
    path: Path
    made_at: datetime
    size: int
    verified: bool | None      # None: not checked
    reason: str = ""


def backups(app: Flask | None = None) -> list[Entry]:
    """The backups in the backup folder, newest first (files being written are not listed)."""
    folder = backup_dir(app)
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for path in folder.iterdir():
            match = NAME.match(path.name)
            if not match:
                continue
            made = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
            check = _read_json(path.with_name(path.name + CHECKED_SUFFIX))
            with contextlib.suppress(FileNotFoundError):
                found.append(Entry(path, made, path.stat().st_size, check.get("verified"), check.get("reason", "")))
    return sorted(found, key=lambda entry: entry.path.name, reverse=True)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    with replacing(path) as partial:
        partial.write_text(json.dumps(data))


def record_check(path: Path, verified: bool, reason: str = "") -> None:
    """Keep whether a backup verified beside it (for the Backups page and the freshness check)."""
    _write_json(Path(path).with_name(Path(path).name + CHECKED_SUFFIX),
                {"verified": verified, "reason": reason, "at": clock.now().isoformat()})


def newest_good(app: Flask | None = None) -> Entry | None:
    """The newest backup that did not fail its check."""
    return next((entry for entry in backups(app) if entry.verified is not False), None)


@dataclass
class Failure:
    at: datetime
    reason: str


def last_failure(app: Flask | None = None) -> Failure | None:
    """The last scheduled backup's failure, unless a good backup was made after it."""
    data = _read_json(_failure_path(app))
    try:
        failure = Failure(datetime.fromisoformat(data["at"]), str(data.get("reason", "")))
    except (KeyError, TypeError, ValueError):
        return None
    good = newest_good(app)
    return None if good is not None and good.made_at >= failure.at.replace(microsecond=0) else failure


def _failure_path(app: Flask | None) -> Path:
    return Path((app or current_app).config["INSTANCE_PATH"]) / FAILURE_FILE


def _record_failure(app: Flask, now: datetime, reason: str) -> None:
    log.error("scheduled backup failed: %s", reason)
    with contextlib.suppress(OSError):
        _write_json(_failure_path(app), {"at": now.isoformat(), "reason": reason})


def scheduled_backup(now: datetime | None = None) -> Path | None:
    """The scheduler's job: if the newest good backup is older than IOP_BACKUP_EVERY_HOURS (or there is
    none), write one, verify it, then delete the oldest beyond IOP_BACKUP_KEEP. Returns the new file."""
    app = current_app._get_current_object()
    every = app.config["BACKUP_EVERY_HOURS"]
    if not every:
        return None
    now = now or clock.now()
    interval = timedelta(hours=every)
    good = newest_good(app)
    if good is not None and now - good.made_at < interval:
        return None
    failure = last_failure(app)
    if failure is not None and now - failure.at < min(RETRY_AFTER, interval):
        return None  # tried and failed a moment ago: the next run tries again
    try:
        path = new_backup_path(app, now)
        write_backup(app, path)
    except BackupError as exc:
        _record_failure(app, now, str(exc))
        return None
    except Exception as exc:  # the reason's type only: its words might quote data
        _record_failure(app, now, f"unexpected {type(exc).__name__}")
        return None
    try:
        verify(app, path)
    except BackupError as exc:
        record_check(path, False, str(exc))
        _record_failure(app, now, f"the backup did not verify: {exc}")
        return path
    except Exception as exc:
        record_check(path, False, f"unexpected {type(exc).__name__}")
        _record_failure(app, now, f"the backup did not verify: unexpected {type(exc).__name__}")
        return path
    record_check(path, True)
    prune(app)
    log.info("scheduled backup written and verified (%d bytes)", path.stat().st_size)
    return path


def prune(app: Flask) -> list[Path]:
    """Delete the backups beyond the newest IOP_BACKUP_KEEP (and their check files). Only finished
    backups are listed, so one being written is never touched."""
    gone = []
    for entry in backups(app)[app.config["BACKUP_KEEP"]:]:
        for path in (entry.path, entry.path.with_name(entry.path.name + CHECKED_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        gone.append(entry.path)
    return gone


def health(app: Flask) -> str:
    """"off" when scheduled backups are off, "none" before the first, "ok" while the newest good backup is
    younger than twice the interval, "stale" after."""
    every = app.config["BACKUP_EVERY_HOURS"]
    if not every:
        return "off"
    good = newest_good(app)
    if good is None:
        return "none"
    return "ok" if clock.now() - good.made_at <= 2 * timedelta(hours=every) else "stale"

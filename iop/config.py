"""Settings from the environment (docs/interface.md), read when the app is made, never at import; and
the hours rules' two settings (full day, grace) as every module reads them."""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from iop.rules import hours


class ConfigError(Exception):
    """A setting a person gave is wrong; the message says which and how to fix it."""


MAX_SCAN_RETENTION_DAYS = 36500  # a hundred years: beyond that the cut-off date no longer exists


DEFAULTS = {
    "TIMEZONE": "America/New_York",
    "SCHEDULER": True,
    "REDIS_URL": None,
    "REDIS_CHANNEL": "iop-kiosk",
    "FULL_DAY_MINUTES": hours.FULL_DAY_MINUTES,  # rule 3 (docs/domain.md); read with full_day_minutes()
    "GRACE_MINUTES": hours.GRACE_MINUTES,  # rule 8; read with grace_minutes()
    "SESSION_OPENS_BEFORE_MINUTES": 30,
    "REPEAT_SCAN_MINUTES": 5,
    "OFFLINE_SCAN_MAX_AGE_HOURS": 12,
    "SCAN_RETENTION_DAYS": 90,
    "FHIR_SERVICE_CODE": "90853",  # CPT group psychotherapy: the type of the FHIR export's Encounters
    "IDLE_SIGNOUT_MINUTES": 15,
    # Services billed only under a payer's authorization: attended days that qualify for one but fall
    # under no authorization are listed (code[:day|session], space-separated).
    "SERVICES_NEEDING_AUTHORIZATION": "H0015",
    # Scheduled backups (iop/ops/backup.py): one every BACKUP_EVERY_HOURS (0: none) into BACKUP_DIR
    # (default <instance>/backups), the last BACKUP_KEEP kept; BACKUP_KEY (when set) encrypts them.
    "BACKUP_EVERY_HOURS": 24,
    "BACKUP_KEEP": 14,
    "BACKUP_DIR": None,
    "BACKUP_KEY": None,
    "PROXY_HOPS": 0,  # proxies in front whose X-Forwarded-* headers are trusted (deploy/: 1)
    "SOCKETS_PER_ADDRESS": 100,
    "KIOSK_WELCOME": "Welcome. Please scan your card.",
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    # Text responses (CSS, JS, and pages and JSON that carry no secret: iop/web/compression.py, against
    # BREACH) compressed when the browser asks (Flask-Compress).
    # Static files are streamed, so gzip is allowed for streams too (browsers on plain http ask for
    # gzip only); CSV, XLSX and zip exports are not in the list and stream untouched. Socket.IO is
    # served before Flask and never compressed here.
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
    "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                           "application/json", "image/svg+xml"],
    # A compressed file's ETag gets the encoding's name: revalidate with it, or a cached script
    # would be sent again whole each time.
    "COMPRESS_STREAMING_ENDPOINT_CONDITIONAL": ["static", "kiosk.static", "facilitator.static",
                                                "coordinator.static"],
}


# ---- the hours rules' settings, read one way (in an app context) ---------------------------------

def full_day_minutes() -> int:
    """The credited minutes that make a day a full day (rule 3) in this program."""
    return current_app.config["FULL_DAY_MINUTES"]


def grace_minutes() -> int:
    """The minutes after the start (before the end) before a check-in is late (a check-out early), rule 8."""
    return current_app.config["GRACE_MINUTES"]


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"on", "1", "true", "yes"}:
        return True
    if value in {"off", "0", "false", "no"}:
        return False
    raise ConfigError(f"{name} must be 'on' or 'off', not {raw!r}.")


def from_environment(environ: dict[str, str] | None = None) -> dict:
    """The settings named in docs/interface.md, from `environ` (os.environ by default)."""
    env = os.environ if environ is None else environ
    settings: dict = {}
    instance = env.get("IOP_INSTANCE_PATH", "").strip() or str(Path.cwd() / "instance")
    settings["INSTANCE_PATH"] = str(Path(instance).expanduser().resolve())
    if env.get("IOP_DATABASE_URL", "").strip():
        settings["DATABASE_URL"] = env["IOP_DATABASE_URL"].strip()
    if env.get("IOP_REDIS_URL", "").strip():
        settings["REDIS_URL"] = env["IOP_REDIS_URL"].strip()
    if env.get("IOP_REDIS_CHANNEL", "").strip():
        settings["REDIS_CHANNEL"] = env["IOP_REDIS_CHANNEL"].strip()
    if env.get("IOP_SECRET_KEY", "").strip():
        settings["SECRET_KEY"] = env["IOP_SECRET_KEY"].strip()
    if env.get("IOP_SECRET_KEY_FALLBACKS", "").strip():
        settings["SECRET_KEY_FALLBACKS"] = env["IOP_SECRET_KEY_FALLBACKS"].split()
    if env.get("IOP_TIMEZONE", "").strip():
        settings["TIMEZONE"] = env["IOP_TIMEZONE"].strip()
    if env.get("IOP_SCHEDULER", "").strip():
        settings["SCHEDULER"] = _flag("IOP_SCHEDULER", env["IOP_SCHEDULER"])
    if env.get("IOP_HTTPS", "").strip() and _flag("IOP_HTTPS", env["IOP_HTTPS"]):
        settings["PREFERRED_URL_SCHEME"] = "https"  # people reach us over TLS (a proxy or --https)
    if env.get("IOP_SCAN_RETENTION_DAYS", "").strip():
        settings["SCAN_RETENTION_DAYS"] = _whole_number(env["IOP_SCAN_RETENTION_DAYS"])
    if env.get("IOP_PROXY_HOPS", "").strip():
        settings["PROXY_HOPS"] = _whole_number(env["IOP_PROXY_HOPS"])
    if env.get("IOP_SOCKETS_PER_ADDRESS", "").strip():
        settings["SOCKETS_PER_ADDRESS"] = _whole_number(env["IOP_SOCKETS_PER_ADDRESS"])
    if "IOP_SERVICES_NEEDING_AUTHORIZATION" in env:
        settings["SERVICES_NEEDING_AUTHORIZATION"] = env["IOP_SERVICES_NEEDING_AUTHORIZATION"].strip()
    if env.get("IOP_BACKUP_EVERY_HOURS", "").strip():
        settings["BACKUP_EVERY_HOURS"] = _whole_number(env["IOP_BACKUP_EVERY_HOURS"])
    if env.get("IOP_BACKUP_KEEP", "").strip():
        settings["BACKUP_KEEP"] = _whole_number(env["IOP_BACKUP_KEEP"])
    if env.get("IOP_BACKUP_DIR", "").strip():
        settings["BACKUP_DIR"] = str(Path(env["IOP_BACKUP_DIR"].strip()).expanduser().resolve())
    if env.get("IOP_BACKUP_KEY", "").strip():
        settings["BACKUP_KEY"] = env["IOP_BACKUP_KEY"].strip()
    if env.get("IOP_FHIR_SERVICE_CODE", "").strip():
        settings["FHIR_SERVICE_CODE"] = env["IOP_FHIR_SERVICE_CODE"].strip()
    return settings


def _whole_number(raw: str) -> int | str:
    """A whole number as an int; anything else as given, for finish() to refuse with the setting's name."""
    value = raw.strip()
    return int(value) if value.isascii() and value.isdigit() else value


def finish(config: dict) -> None:
    """Fill derived settings and check every value; raises ConfigError with one clear line."""
    instance = Path(config["INSTANCE_PATH"])
    try:
        instance.mkdir(parents=True, exist_ok=True)
        # A probe of this process's own: several server processes may start at once (a shared name
        # was written by one and removed by another, and that one's start failed).
        with tempfile.TemporaryFile(dir=instance):
            pass
    except OSError as exc:
        raise ConfigError(
            f"The instance folder {instance} cannot be written ({exc.strerror}). "
            "Set IOP_INSTANCE_PATH to a folder this user can write."
        ) from None
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{instance / 'iop.sqlite3'}"
    _check_database_url(config["DATABASE_URL"])
    protect_instance(instance, config["DATABASE_URL"])
    try:
        ZoneInfo(str(config["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"IOP_TIMEZONE {config['TIMEZONE']!r} is not a time zone name (try America/New_York)."
        ) from None
    redis_url = config.get("REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("IOP_REDIS_URL must start with redis://, rediss:// or unix://.")
    _check_scan_retention(config["SCAN_RETENTION_DAYS"], config["OFFLINE_SCAN_MAX_AGE_HOURS"])
    _check_count("IOP_PROXY_HOPS", config.setdefault("PROXY_HOPS", DEFAULTS["PROXY_HOPS"]), 0, 5)
    _check_count("IOP_SOCKETS_PER_ADDRESS", config.setdefault("SOCKETS_PER_ADDRESS", DEFAULTS["SOCKETS_PER_ADDRESS"]),
                 1, 100_000)
    config["FHIR_SERVICE_CODE"] = _service_code(config["FHIR_SERVICE_CODE"])
    config["SERVICES_NEEDING_AUTHORIZATION_UNITS"] = _services_needing(
        config.setdefault("SERVICES_NEEDING_AUTHORIZATION", DEFAULTS["SERVICES_NEEDING_AUTHORIZATION"]))
    _check_backups(config, instance)
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _instance_secret(instance / "secret_key")
    if config.get("PREFERRED_URL_SCHEME") == "https":
        config.setdefault("SESSION_COOKIE_SECURE", True)  # never send the staff cookie in clear text


def _check_database_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "IOP_DATABASE_URL is not a database URL "
            "(try sqlite:///path/iop.sqlite3 or postgresql+psycopg://host/db)."
        ) from None
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError("IOP_DATABASE_URL must be a SQLite or PostgreSQL URL.")


def _check_scan_retention(days, offline_hours) -> None:
    """Scans are kept longer than a kiosk may replay one, so a replayed scan always finds its answer."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_SCAN_RETENTION_DAYS:
        raise ConfigError(
            f"IOP_SCAN_RETENTION_DAYS must be a whole number of days from 1 to {MAX_SCAN_RETENTION_DAYS}, not {days!r}.")
    if days * 24 <= offline_hours:
        raise ConfigError(f"IOP_SCAN_RETENTION_DAYS ({days}) must be longer than the {offline_hours} hours "
                          "a kiosk may replay an offline scan.")


def _check_count(name: str, value, lowest: int, highest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise ConfigError(f"{name} must be a whole number from {lowest} to {highest}, not {value!r}.")


MIN_BACKUP_KEY_LENGTH = 16


def _check_backups(config: dict, instance: Path) -> None:
    _check_count("IOP_BACKUP_EVERY_HOURS", config.setdefault("BACKUP_EVERY_HOURS", DEFAULTS["BACKUP_EVERY_HOURS"]),
                 0, 24 * 366)
    _check_count("IOP_BACKUP_KEEP", config.setdefault("BACKUP_KEEP", DEFAULTS["BACKUP_KEEP"]), 1, 10_000)
    config["BACKUP_DIR"] = str(config.get("BACKUP_DIR") or instance / "backups")
    key = config.get("BACKUP_KEY")
    if key is not None and len(str(key)) < MIN_BACKUP_KEY_LENGTH:
        raise ConfigError(f"IOP_BACKUP_KEY must be at least {MIN_BACKUP_KEY_LENGTH} characters long "
                          "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))').")


def _service_code(code) -> str:
    """The FHIR export's service code, upper case; refused unless it is shaped like a CPT or HCPCS code."""
    from iop.rules.service_codes import service_code_system

    normal = str(code).strip().upper()
    if service_code_system(normal) is None:
        raise ConfigError(f"IOP_FHIR_SERVICE_CODE must be a CPT code (like 90853) or an HCPCS Level II code "
                          f"(like H0015), not {code!r}.")
    return normal


def _services_needing(setting) -> dict[str, str]:
    from iop.rules.authorizations import services_needing
    from iop.rules.entry import EntryError

    try:
        return services_needing(setting)
    except EntryError as exc:
        raise ConfigError(f"IOP_SERVICES_NEEDING_AUTHORIZATION: {exc.in_file} (give codes like "
                          f"'H0015' or 'H0015:day 90853:session', or leave it empty for none).") from None


def _instance_secret(path: Path) -> str:
    """The secret key kept in the instance folder, made once with mode 0600."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def signing_keys(config) -> list[str]:
    """Old keys first, the current key last: itsdangerous signs with the last and accepts all."""
    return [*(config.get("SECRET_KEY_FALLBACKS") or []), config["SECRET_KEY"]]


# ---- files at rest ------------------------------------------------------------------------------
# The instance folder 0700, and every file the program writes (the database with its WAL and SHM files,
# the secret key, TLS keys, exports, card PDFs, FHIR folders) 0600, whatever the umask the process was
# started with. The one place that sets the process's umask is protect_instance, called when the app is
# made: from then on whatever this process creates (SQLite makes its -wal and -shm files with the
# database file's own mode) is readable by the service's user alone.

PRIVATE_UMASK = 0o077
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def protect_instance(instance: Path, database_url: str | None) -> None:
    """Set the umask, close the instance folder, and close up what an older version left readable."""
    os.umask(PRIVATE_UMASK)
    _chmod(instance, FOLDER_MODE)
    for path in (instance / "secret_key", *sqlite_files(database_url)):
        _chmod(path, FILE_MODE)
    tls = instance / "tls"
    if tls.is_dir():
        _chmod(tls, FOLDER_MODE)
        for path in tls.iterdir():
            _chmod(path, FILE_MODE)


def sqlite_files(database_url: str | None) -> list[Path]:
    """The SQLite database file named by the URL and its journal files (none for PostgreSQL or memory)."""
    if not database_url or not database_url.startswith("sqlite"):
        return []
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return []
    database = Path(name)
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


@contextlib.contextmanager
def replacing(path: Path):
    """Write beside `path` and rename into place at the end: the file is 0600 even when `path`
    existed with another mode, and an error leaves no half file. Yields the temporary path."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        yield partial
        os.chmod(partial, FILE_MODE)  # a writer that replaced the file (openpyxl) made its own
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()

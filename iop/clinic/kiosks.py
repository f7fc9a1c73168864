"""Kiosk devices: one-time enrollment links and the signed, revocable cookie that binds a tablet."""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import event, select

from iop import clock
from iop.clinic import audit
from iop.config import signing_keys
from iop.rules import entry
from iop.store import db
from iop.store.models import KioskDevice

ENROLLMENT_LIFETIME = timedelta(hours=24)
COOKIE_NAME = "iop_kiosk"
COOKIE_SALT = "iop.kiosk.v1"
CACHE_SECONDS = 5.0
CACHE_SIZE = 1000


class KioskError(ValueError):
    pass


def issue_enrollment(name: str, created_by_id: int | None = None) -> KioskDevice:
    """A kiosk record with a fresh one-time link (the caller commits). Re-issuing for a name renews it."""
    name = kiosk_name(name)
    db_session = db.session()
    device = db_session.scalar(
        select(KioskDevice).where(KioskDevice.name == name, KioskDevice.enrolled_at.is_(None),
                                  KioskDevice.revoked_at.is_(None))
    )
    if device is None:
        device = KioskDevice(name=name, created_by_id=created_by_id)
        db_session.add(device)
    device.enrollment_nonce = secrets.token_urlsafe(24)
    device.enrollment_expires_at = clock.now() + ENROLLMENT_LIFETIME
    db_session.flush()
    audit.record("kiosk.enrollment_link", target=f"kiosk:{device.public_id}", name=name)
    return device


def kiosk_name(name: str) -> str:
    """The name as it will be shown (iop.rules.entry's rules for a kiosk's name); KioskError if refused."""
    try:
        return entry.text(name, entry.KIOSK_NAME)
    except entry.EntryError as exc:
        raise KioskError(exc.message) from None


def enrollment_path(device: KioskDevice) -> str:
    return f"/kiosk/enroll/{device.enrollment_nonce}"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app.config), salt=COOKIE_SALT)


def complete_enrollment(nonce: str) -> KioskDevice:
    """Use a one-time link: the device becomes enrolled and the link stops working."""
    db_session = db.session()
    device = db_session.scalar(select(KioskDevice).where(KioskDevice.enrollment_nonce == nonce))
    if device is None or device.revoked_at is not None:
        raise KioskError("This enrollment link was already used or is not valid. Ask staff for a new one.")
    if device.enrollment_expires_at is None or device.enrollment_expires_at < clock.now():
        raise KioskError("This enrollment link has expired. Ask staff for a new one.")
    device.enrollment_nonce = None
    device.enrollment_expires_at = None
    device.enrolled_at = clock.now()
    device.last_seen_at = clock.now()
    audit.record("kiosk.enrolled", target=f"kiosk:{device.public_id}", name=device.name)
    return device


def cookie_value(device: KioskDevice) -> str:
    return _serializer().dumps(device.public_id)


@dataclass(frozen=True)
class Kiosk:
    """An enrolled, unrevoked kiosk as its requests need it: a snapshot, shared by the process's threads."""

    id: int
    public_id: str
    name: str
    chime: bool
    last_seen_at: datetime | None


@dataclass
class _Known:
    """Per app: cookies already verified and looked up (for CACHE_SECONDS), and when each kiosk's
    last_seen_at was last written, so a busy kiosk writes it once a minute, not once a scan."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_cookie: dict[str, tuple[float, Kiosk]] = field(default_factory=dict)
    seen_at: dict[int, datetime] = field(default_factory=dict)


def _known() -> _Known:
    extensions = current_app.extensions
    known = extensions.get("iop.kiosks")
    if known is None:
        with _KNOWN_LOCK:
            known = extensions.setdefault("iop.kiosks", _Known())
    return known


_KNOWN_LOCK = threading.Lock()


def device_from_cookie(value: str | None) -> Kiosk | None:
    """The enrolled, unrevoked kiosk this cookie names, or None.

    A kiosk posts every scan with the same cookie: its answer is kept for CACHE_SECONDS, so the
    signature check and the device's row cost once, not once a scan. Revoking, renaming or changing
    a kiosk forgets it in this process at once; other processes see it within CACHE_SECONDS (and
    a revoked kiosk's scan is refused at once anyway: scan.py checks the row in its transaction)."""
    if not value:
        return None
    known = _known()
    hit = known.by_cookie.get(value)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    try:
        public_id = _serializer().loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(public_id, str):
        return None
    device = db.session().scalar(select(KioskDevice).where(KioskDevice.public_id == public_id))
    if device is None or device.revoked_at is not None or device.enrolled_at is None:
        return None
    kiosk = Kiosk(device.id, device.public_id, device.name, bool(device.chime), device.last_seen_at)
    with known.lock:
        if len(known.by_cookie) > CACHE_SIZE:
            known.by_cookie.clear()
        known.by_cookie[value] = (time.monotonic() + CACHE_SECONDS, kiosk)
        if device.last_seen_at is not None and device.id not in known.seen_at:
            known.seen_at[device.id] = device.last_seen_at
    return kiosk


def forget(device_id: int, known: _Known | None = None) -> None:
    """Drop what this process keeps about a kiosk (it was revoked, renamed or changed)."""
    known = known or _known()
    with known.lock:
        for cookie in [c for c, (_until, kiosk) in known.by_cookie.items() if kiosk.id == device_id]:
            del known.by_cookie[cookie]


def _forget_after_commit(device_id: int) -> None:
    """Forget now and again when the change commits, so no request caches the old row in between."""
    known = _known()
    forget(device_id, known)
    event.listen(db.session(), "after_commit", lambda _session: forget(device_id, known), once=True)


COOKIE_MAX_AGE = int(timedelta(days=365).total_seconds())
LAST_SEEN_EVERY = timedelta(minutes=1)
HELP_EVERY = timedelta(seconds=60)
_HELP_LOCK = threading.Lock()


def help_due(kiosk_id: int, now: datetime) -> bool:
    """Whether a "Forgot your card?" press should alert staff now: once a minute per kiosk, however
    often the button is pressed (in this process)."""
    with _HELP_LOCK:
        last = current_app.extensions.setdefault("iop.kiosk_help", {})
        due = kiosk_id not in last or now - last[kiosk_id] >= HELP_EVERY
        if due:
            last[kiosk_id] = now
    return due


def all_devices() -> list[KioskDevice]:
    """Every kiosk, working ones first, then links not yet used, then revoked ones."""
    devices = db.session().scalars(select(KioskDevice).order_by(KioskDevice.name, KioskDevice.id)).all()
    return sorted(devices, key=lambda d: (d.revoked_at is not None, d.enrolled_at is None, d.name.lower()))


def device_by_public_id(public_id: str) -> KioskDevice:
    device = db.session().scalar(select(KioskDevice).where(KioskDevice.public_id == public_id))
    if device is None:
        raise KioskError("There is no such kiosk.")
    return device


def rename(device: KioskDevice, name: str, by_user=None) -> KioskDevice:
    name = kiosk_name(name)
    if name != device.name:
        audit.record("kiosk.rename", target=f"kiosk:{device.public_id}", user=by_user, old=device.name, new=name)
        device.name = name
        _forget_after_commit(device.id)
    return device


def revoke(device: KioskDevice, by_user=None) -> KioskDevice:
    """The tablet stops being a kiosk at its next request; an unused link stops working too."""
    if device.revoked_at is None:
        device.revoked_at = clock.now()
        device.enrollment_nonce = None
        device.enrollment_expires_at = None
        audit.record("kiosk.revoke", target=f"kiosk:{device.public_id}", user=by_user, name=device.name)
        _forget_after_commit(device.id)
    return device


def set_chime(device: KioskDevice, on: bool, by_user=None) -> KioskDevice:
    if device.chime != on:
        device.chime = on
        audit.record("kiosk.chime", target=f"kiosk:{device.public_id}", user=by_user, chime=on)
        _forget_after_commit(device.id)
    return device


def enrollment_device(nonce: str) -> KioskDevice | None:
    """The kiosk a still-usable one-time link would set up (for the confirm page), or None."""
    if not nonce or len(nonce) > 64:
        return None
    device = db.session().scalar(select(KioskDevice).where(KioskDevice.enrollment_nonce == nonce))
    if device is None or device.revoked_at is not None or device.enrollment_expires_at is None \
            or device.enrollment_expires_at < clock.now():
        return None
    return device


def seen_due(kiosk_id: int, now: datetime, last_seen_at: datetime | None = None) -> bool:
    """Whether the kiosk's last_seen_at should be written now: at most once a minute."""
    last = _known().seen_at.get(kiosk_id, last_seen_at)  # what this process wrote last, else the row's
    return last is None or not (now - LAST_SEEN_EVERY < last <= now)


def note_seen(kiosk_id: int, at: datetime) -> None:
    """last_seen_at was written (and committed) as `at`."""
    _known().seen_at[kiosk_id] = at


def seen(device: Kiosk | KioskDevice) -> None:
    """Note the kiosk's activity (at most once a minute, so an idle kiosk's polling writes little)."""
    now = clock.now()
    if seen_due(device.id, now, device.last_seen_at):
        with db.transaction() as db_session:
            fresh = db_session.get(KioskDevice, device.id)
            fresh.last_seen_at = now
        note_seen(device.id, now)

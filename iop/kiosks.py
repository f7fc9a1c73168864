"""Kiosk devices: one-time enrollment links and the signed, revocable cookie that binds a tablet."""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from iop.config import signing_keys
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from iop import audit, clock, db
from iop.models import KioskDevice

ENROLLMENT_LIFETIME = timedelta(hours=24)
COOKIE_NAME = "iop_kiosk"
COOKIE_SALT = "iop.kiosk.v1"


class KioskError(ValueError):
    pass


def issue_enrollment(name: str, created_by_id: int | None = None) -> KioskDevice:
    """A kiosk record with a fresh one-time link (the caller commits). Re-issuing for a name renews it."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise KioskError("A kiosk needs a name of 1 to 80 characters (for example: Front desk).")
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


def device_from_cookie(value: str | None) -> KioskDevice | None:
    """The enrolled, unrevoked kiosk this cookie names, or None."""
    if not value:
        return None
    try:
        public_id = _serializer().loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(public_id, str):
        return None
    device = db.session().scalar(select(KioskDevice).where(KioskDevice.public_id == public_id))
    if device is None or device.revoked_at is not None or device.enrolled_at is None:
        return None
    return device


COOKIE_MAX_AGE = int(timedelta(days=365).total_seconds())
LAST_SEEN_EVERY = timedelta(minutes=1)


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
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise KioskError("A kiosk needs a name of 1 to 80 characters (for example: Front desk).")
    if name != device.name:
        audit.record("kiosk.rename", target=f"kiosk:{device.public_id}", user=by_user, old=device.name, new=name)
        device.name = name
    return device


def revoke(device: KioskDevice, by_user=None) -> KioskDevice:
    """The tablet stops being a kiosk at its next request; an unused link stops working too."""
    if device.revoked_at is None:
        device.revoked_at = clock.now()
        device.enrollment_nonce = None
        device.enrollment_expires_at = None
        audit.record("kiosk.revoke", target=f"kiosk:{device.public_id}", user=by_user, name=device.name)
    return device


def set_chime(device: KioskDevice, on: bool, by_user=None) -> KioskDevice:
    if device.chime != on:
        device.chime = on
        audit.record("kiosk.chime", target=f"kiosk:{device.public_id}", user=by_user, chime=on)
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


def seen(device: KioskDevice) -> None:
    """Note the kiosk's activity (at most once a minute, so an idle kiosk's polling writes little)."""
    now = clock.now()
    last = device.last_seen_at
    if last is None or not (now - LAST_SEEN_EVERY < last <= now):
        with db.transaction() as db_session:
            fresh = db_session.get(KioskDevice, device.id)
            fresh.last_seen_at = now

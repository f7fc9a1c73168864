"""Kiosk devices: one-time enrollment links and the signed, revocable cookie that binds a tablet."""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from iop.config import signing_keys
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from iop import clock, db
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

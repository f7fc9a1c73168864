"""The one time source, and the program's local time.

Tests stop the clock with `frozen(...)`; everything else calls `now()`. The program's time zone
(IOP_TIMEZONE) is read in one place, `program_tz()`."""
from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Flask, current_app

_frozen_at: list[datetime | None] = [None]


def now() -> datetime:
    """The current time, aware, in UTC."""
    return _frozen_at[0] or datetime.now(timezone.utc)


@contextlib.contextmanager
def frozen(at: datetime):
    """Stop the clock at `at` (aware) for every thread until the block ends."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    previous = _frozen_at[0]
    _frozen_at[0] = at.astimezone(timezone.utc)
    try:
        yield
    finally:
        _frozen_at[0] = previous


def advance(delta: timedelta) -> None:
    """Move a frozen clock forward (tests)."""
    if _frozen_at[0] is None:
        raise RuntimeError("advance() works on a frozen clock")
    _frozen_at[0] = _frozen_at[0] + delta


# ---- the program's local time ----------------------------------------------------------------

def program_tz(app: Flask | None = None) -> ZoneInfo:
    """The program's time zone (IOP_TIMEZONE), of `app` or the current one."""
    return (app or current_app).config["PROGRAM_TZ"]


def local_moment(moment: datetime) -> datetime:
    """An instant on the program's wall clock (pages format it; the template filter `local`)."""
    return moment.astimezone(program_tz())


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock time on `day` as an aware UTC datetime (DST-safe via zoneinfo)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def time_text(moment: datetime | None) -> str:
    """A local wall-clock time as people say it: "9:04 AM"."""
    if moment is None:
        return ""
    local = moment.astimezone(program_tz())
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"

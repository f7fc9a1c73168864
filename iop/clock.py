"""The one time source. Tests stop it with `frozen(...)`; everything else calls `now()`."""
from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

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

"""What the session's screens are told when its roster changes (the facilitator work fills this in).

Kiosk scans and manual changes call `publish(session_id)` after their transaction commits.
"""
from __future__ import annotations


def publish(session_id: int) -> None:
    """Push the session's roster to its facilitator screens and the headcount to its displays."""
    return None


def publish_help_request(kiosk_name: str) -> int:
    """Alert the facilitators of every session open now that someone at a kiosk needs help.

    Returns how many sessions were alerted."""
    return 0

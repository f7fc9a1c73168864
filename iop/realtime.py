"""The one place that emits to Socket.IO rooms, and the queue's health."""
from __future__ import annotations

from flask import Flask

from iop import socketio


def session_room(session_id: int) -> str:
    return f"session:{session_id}"


def staff_room(session_id: int) -> str:
    """Facilitator screens of a session only (rosters and help alerts carry names; displays never join)."""
    return f"session:{session_id}:staff"


def emit_to_session(event: str, payload: dict, session_id: int) -> None:
    """Everything in the session's room: control pages and room displays. Never names."""
    socketio.emit(event, payload, to=session_room(session_id))


def emit_to_staff(event: str, payload: dict, session_id: int) -> None:
    socketio.emit(event, payload, to=staff_room(session_id))


def queue_health(app: Flask) -> str:
    url = app.config.get("REDIS_URL")
    if not url:
        return "off"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except Exception:  # any failure means the queue is not usable right now
        return "unreachable"
    return "ok"

"""The one place that emits to Socket.IO rooms, and the queue's health."""
from __future__ import annotations

from flask import Flask

from iop.extensions import socketio


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


def client_manager(app: Flask):
    """The Socket.IO message queue for this app: a Redis manager when IOP_REDIS_URL is set, else None.

    Made here (not by Flask-SocketIO from `message_queue`) so that each app gets its own manager:
    the SocketIO object is one per process but tests make many apps, and Flask-SocketIO would keep
    the first app's manager. The channel comes from IOP_REDIS_CHANNEL: Redis pub/sub ignores the
    database number, so two deployments (or test runs) sharing a Redis need different channels.
    A connect timeout keeps an emit from hanging when Redis is unreachable; the emit still reaches
    this process's own screens first (python-socketio delivers locally before publishing)."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    import socketio as python_socketio

    return python_socketio.RedisManager(
        url, channel=app.config.get("REDIS_CHANNEL") or "iop-kiosk",
        redis_options={"socket_connect_timeout": 1, "socket_keepalive": True, "health_check_interval": 30},
    )


def refuse_reserved_events(server) -> None:
    """Drop events a client names "connect" or "disconnect". python-socketio dispatches any event name
    a client sends, so `42["connect", {...}]` would run the connect handler again on a live socket
    (switching a screen's identity, or raising ConnectionRefusedError inside an event). Only the
    server decides when a socket connects or disconnects."""
    handle = server._handle_event

    def _handle_event(eio_sid, namespace, id, data):
        if isinstance(data, list) and data and data[0] in server.reserved_events:
            return None
        return handle(eio_sid, namespace, id, data)

    server._handle_event = _handle_event


def queue_health(app: Flask) -> str:
    """"off" without a queue, "ok" when Redis answers a PING within half a second, else "unreachable"."""
    url = app.config.get("REDIS_URL")
    if not url:
        return "off"
    try:
        probe = app.extensions.get("iop.queue_probe")
        if probe is None:
            import redis

            probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            app.extensions["iop.queue_probe"] = probe
        probe.ping()
    except Exception:  # any failure means the queue is not usable right now
        return "unreachable"
    return "ok"

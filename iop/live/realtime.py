"""The one place that emits to Socket.IO rooms, closes screens, and reports the queue's health."""
from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from iop.extensions import socketio

log = logging.getLogger(__name__)
WATCH_SECONDS = 2.0  # how often each process checks its staff screens' sessions (ended: closed)


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


# ---- staff screens: closed when their sign-in ends ---------------------------------------------

class StaffScreens:
    """The staff screens (sockets) this process holds, by sid: the staff session each came with.

    A sign-in that ends here (sign-out, a password or role change, deactivation) closes its screens at
    once; one ended by another process, or that went idle, is found by this process's watch within
    WATCH_SECONDS, because the sessions are rows every process reads (a message on the queue could be
    lost while Redis restarts; the database cannot). Each event is checked again as well
    (facilitator.live), so an ended session can do nothing even before its socket is closed."""

    def __init__(self, app: Flask):
        self.app = app
        self.server = socketio.server  # this app's Socket.IO server
        self.lock = threading.Lock()
        self.screens: dict[str, tuple[str, int]] = {}  # sid -> (staff session key, user id)
        self.watching = False
        self.stopped = False

    def stop(self) -> None:
        """No more watching (an app being shut down: its database may be going away)."""
        with self.lock:
            self.stopped = True

    def add(self, sid: str, session_key: str, user_id: int) -> None:
        with self.lock:
            self.screens[sid] = (session_key, user_id)
            start, self.watching = not self.watching, True
        if start:
            socketio.start_background_task(self._watch)

    def remove(self, sid: str) -> None:
        with self.lock:
            self.screens.pop(sid, None)

    def sids(self, wanted) -> list[str]:
        with self.lock:
            return [sid for sid, held in self.screens.items() if wanted(*held)]

    def _watch(self) -> None:
        from iop import clock
        from iop.clinic import staff_sessions

        while True:
            socketio.sleep(WATCH_SECONDS)
            with self.lock:
                # Nothing to watch, stopped, or this process now serves another app (tests make many).
                if not self.screens or self.stopped or socketio.server is not self.server:
                    self.watching = False
                    return
                keys = sorted({key for key, _user in self.screens.values()})
            try:
                with self.app.app_context():
                    live = staff_sessions.live_keys(keys, clock.now(), staff_sessions.idle_time())
            except Exception as exc:  # the database is away: keep the screens, look again shortly
                log.warning("staff screens not checked: %s", type(exc).__name__)
                continue
            for sid in self.sids(lambda key, _user: key not in live):
                close_screen(sid)


def staff_screens(app: Flask | None = None) -> StaffScreens:
    app = app or current_app._get_current_object()
    screens = app.extensions.get("iop.staff_screens")
    if screens is None:
        screens = app.extensions.setdefault("iop.staff_screens", StaffScreens(app))
    return screens


def close_screen(sid: str) -> None:
    """Disconnect a socket of this process, and close its connection too (a refused or ended Socket.IO
    session would otherwise leave its Engine.IO transport, a server thread, open)."""
    server = socketio.server
    eio_sid = server.manager.eio_sid_from_sid(sid, "/")
    server.disconnect(sid, namespace="/", ignore_queue=True)
    close_connection(eio_sid)


def close_connection(eio_sid: str | None) -> None:
    """Close an Engine.IO connection without waiting for its last packets to be sent: Engine.IO's own
    disconnect waits for them, forever when the client has already gone (its writer stops at the first
    failed send), which hung the request that signed someone out."""
    connection = socketio.server.eio.sockets.pop(eio_sid, None) if eio_sid is not None else None
    if connection is not None:
        connection.close(wait=False, reason=socketio.server.eio.reason.SERVER_DISCONNECT)


def close_staff_screens(session_keys) -> None:
    """Close this process's screens of these staff sessions (the others' watches find them)."""
    keys = set(session_keys)
    for sid in staff_screens().sids(lambda key, _user: key in keys):
        close_screen(sid)


def close_staff_screens_of(user_id: int) -> None:
    """Close this process's screens of this person (the others' watches find them)."""
    for sid in staff_screens().sids(lambda _key, user: user == user_id):
        close_screen(sid)

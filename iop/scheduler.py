"""The scheduled jobs (APScheduler 3.11): sessions made, opened and closed on time; at-risk weeks marked.

Jobs are idempotent. They run inside `iop serve` by default, or in the one `iop scheduler` process.
"""
from __future__ import annotations

import threading

from flask import Flask


def health(app: Flask) -> str:
    if not app.config.get("SCHEDULER"):
        return "off"
    running = app.extensions.get("iop.scheduler")
    return "ok" if running is not None and running.running else "not running"


def start(app: Flask):
    """Start the background scheduler for this process (filled by the hours/scheduler work)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=app.config["PROGRAM_TZ"])
    scheduler.start()
    app.extensions["iop.scheduler"] = scheduler
    return scheduler


def run_forever(app: Flask) -> None:
    start(app)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass

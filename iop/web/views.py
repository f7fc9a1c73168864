"""The front door: where to go, and the health check."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, url_for
from sqlalchemy import text

from iop.store import db
from iop.web.auth import current_user, landing_url, staff_required

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    user = current_user()
    return redirect(landing_url(user) if user else url_for("auth.login"))


@bp.route("/healthz")
def healthz():
    """Database, message queue, scheduler and backup state; names no one."""
    from iop.live import realtime
    from iop.ops import backup, scheduler

    report = {"status": "ok", "database": "ok", "queue": realtime.queue_health(current_app),
              "scheduler": scheduler.health(current_app), "backup": backup.health(current_app)}
    failure = backup.last_failure(current_app)
    if failure is not None:  # the last scheduled backup failed (its reason is on the Backups page)
        report["backup_failed_at"] = failure.at.isoformat(timespec="seconds")
    try:
        with db.database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure to answer is "down", reported without detail
        report["database"] = "unreachable"
        report["status"] = "down"
        return jsonify(report), 503
    if (report["queue"] not in ("ok", "off") or report["scheduler"] not in ("ok", "off")
            or report["backup"] == "stale" or failure is not None):
        report["status"] = "degraded"
    return jsonify(report), 200


@bp.route("/api/ping")
def ping():
    """The cheapest answer the server gives (no database): a baseline for benchmarks and probes."""
    return jsonify(ok=True)


@bp.route("/api/openapi.json")
def openapi():
    """The OpenAPI 3 description of the kiosk, health and export HTTP API (iop/web/openapi.yaml)."""
    from iop.web import openapi as description

    return jsonify(description.document())


@bp.route("/api/keepalive", methods=["POST"])
@staff_required("facilitator")
def keepalive():
    """Activity on a staff page that made no request (the idle clock restarted before this view)."""
    return "", 204

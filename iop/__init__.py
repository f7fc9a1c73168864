"""IOP Kiosk: check-in kiosk, live group facilitation and attendance hours for IOPs."""
from __future__ import annotations

import logging
import re
from zoneinfo import ZoneInfo

from flask import Flask, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from iop import clock
from iop import config as config_module
from iop.config import ConfigError
from iop.extensions import csrf, socketio

__all__ = ["create_app", "ConfigError"]


def create_app(test_config: dict | None = None) -> Flask:
    """Make the application. A test passes its own settings; otherwise they come from the environment."""
    settings = dict(config_module.DEFAULTS)
    settings.update(config_module.from_environment() if test_config is None else {})
    if test_config is not None:
        settings.setdefault("INSTANCE_PATH", test_config.get("INSTANCE_PATH"))
        settings.update(test_config)
    config_module.finish(settings)

    app = Flask(
        __name__,
        instance_path=settings["INSTANCE_PATH"],
        instance_relative_config=True,
    )
    app.config.update(settings)
    app.config["PROGRAM_TZ"] = ZoneInfo(app.config["TIMEZONE"])  # read with iop.clock.program_tz()
    app.add_template_filter(clock.local_moment, "local")
    from iop.web.json_body import RequestJSONProvider

    app.json = RequestJSONProvider(app)

    from iop.live import realtime
    from iop.store import db
    from iop.web import auth, compression, headers, views

    db.init_app(app)
    csrf.init_app(app)
    compression.init_app(app)  # before headers: it runs after them (Flask runs after_request last first)
    socketio.init_app(
        app,
        async_mode="threading",
        client_manager=realtime.client_manager(app),
        cors_allowed_origins=app.config.get("CORS_ORIGINS", []) or None,
        logger=False,
        engineio_logger=False,
    )
    realtime.refuse_reserved_events(socketio.server)
    auth.init_app(app)
    headers.init_app(app)
    if app.config["PROXY_HOPS"]:
        # Behind a proxy (deploy/nginx.conf): its X-Forwarded-For/-Proto/-Host, for that many hops, give
        # the browser's address (sign-in slow-down, audit), https links and Secure cookies. Never
        # trusted by default: a browser reaching the server directly could claim any address.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from coordinator import bp as coordinator_bp
    from facilitator import bp as facilitator_bp
    from kiosk import bp as kiosk_bp

    app.register_blueprint(views.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(kiosk_bp)
    app.register_blueprint(facilitator_bp)
    app.register_blueprint(coordinator_bp)

    from iop.ops import cli

    cli.register(app)
    _register_error_pages(app)
    _quiet_request_log()
    return app


def _register_error_pages(app: Flask) -> None:
    def wants_json() -> bool:
        return request.path.startswith(("/kiosk/api/", "/api/")) or request.is_json

    def error_page(status: int, code: str, message: str):
        if wants_json():
            return jsonify(error={"code": code, "message": message}), status
        return render_template("error.html", status=status, message=message), status

    # What each refusal says to the person who made the request (JSON for the APIs, a page otherwise).
    refusals = {
        CSRFError: (400, "csrf_failed", "This form expired. Please go back, reload the page and try again."),
        400: (400, "bad_request", "That request could not be read."),
        403: (403, "forbidden", "Your role does not allow this page."),
        404: (404, "not_found", "There is nothing here."),
        405: (405, "method_not_allowed", "That action is not possible here."),
        413: (413, "too_large", "That is too large to send."),
        500: (500, "server_error", "Something went wrong on our side. Please try again."),
    }
    for raised, answer in refusals.items():
        app.register_error_handler(raised, lambda _exc, answer=answer: error_page(*answer))

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(SQLAlchemyTimeoutError)
    def _database_unavailable(_exc):
        # The database dropped the connection, is restarting, is locked or the pool is exhausted: the
        # unit of work was rolled back, so nothing is half-written and the same request may be sent
        # again (a kiosk queues the scan and retries; pool_pre_ping replaces dead connections).
        # The driver's own first line ("database is locked", "terminating connection ..."): it names the
        # condition, never a row's values (SQLAlchemy's str() would add the statement's parameters).
        cause = getattr(_exc, "orig", None) or _exc
        reason = (str(cause).strip().splitlines() or [""])[0][:160]
        app.logger.warning("database unavailable (%s): %s", type(cause).__name__, reason)
        g.staff_user = None  # the error page must not ask the database who is signed in
        response = make_response(error_page(503, "try_again", "The system is busy for a moment. Please try again."))
        response.headers["Retry-After"] = "2"
        return response


class _NoQueryStrings(logging.Filter):
    """Werkzeug's access log prints whole request lines: drop query strings, and hide the one-time
    secrets that travel in paths (kiosk enrollment links, room display links)."""

    SECRET_PATHS = re.compile(r"(/kiosk/enroll/|/facilitator/display/)[^/\s?\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple) and len(record.args) >= 1:
            first = record.args[0]
            if isinstance(first, str):
                if "?" in first:
                    first = first.split("?", 1)[0] + " [query omitted]"
                first = self.SECRET_PATHS.sub(r"\1[hidden]", first)
                record.args = (first,) + tuple(record.args[1:])
        return True


def _quiet_request_log() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NoQueryStrings) for f in logger.filters):
        logger.addFilter(_NoQueryStrings())

"""The kiosk's pages and its JSON API. Thin: the scan itself is iop/clinic/scan.py.

CSRF: the JSON endpoints are exempt from the form token because (1) they accept only
Content-Type application/json, which no cross-site form can send and a cross-site fetch cannot
send without a CORS preflight this app never grants, and (2) they act only for the enrolled
kiosk named by a SameSite=Strict cookie, which browsers do not attach to cross-site requests.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge

from iop import clock
from iop.clinic import kiosks, scan, staff_sessions
from iop.extensions import csrf
from iop.store import db
from iop.web.json_body import json_object
from kiosk import bp
from kiosk.catalogs import all_catalogs, error_message, request_lang, words

log = logging.getLogger(__name__)

API_BODY_LIMIT = 4 * 1024


def current_kiosk():
    """The enrolled, unrevoked kiosk this browser's cookie names, or None."""
    if "kiosk_device" not in g:
        g.kiosk_device = kiosks.device_from_cookie(request.cookies.get(kiosks.COOKIE_NAME))
    return g.kiosk_device


def _error(code: str, status: int | None = None):
    body = {"error": {"code": code, "message": error_message(code)}}
    return jsonify(body), status or scan.STATUS.get(code, 400)


def _json_body():
    """The request's JSON object, or an error response: JSON only, 4 KB at most."""
    if request.mimetype != "application/json":
        return None, _error("bad_request", 415)
    if request.content_length is not None and request.content_length > API_BODY_LIMIT:
        return None, _error("bad_request", 413)
    request.max_content_length = API_BODY_LIMIT  # also bounds a body sent without a length
    try:
        data = json_object()
    except RequestEntityTooLarge:
        return None, _error("bad_request", 413)
    if data is None:
        return None, _error("bad_request", 400)
    return data, None


# ---- pages -------------------------------------------------------------------------------------

@bp.route("/")
def page():
    device = current_kiosk()
    lang = request_lang()
    if device is None:
        return render_template("kiosk/not_enrolled.html", lang=lang, t=all_catalogs()[lang], page_lang=lang, staff=None)
    kiosks.seen(device)
    welcome = {"en": current_app.config["KIOSK_WELCOME"],
               "es": current_app.config.get("KIOSK_WELCOME_ES") or words("ready.welcome", "es")}
    response = make_response(render_template(
        "kiosk/kiosk.html", device=device, lang=lang, t=all_catalogs()[lang], catalogs=all_catalogs(),
        welcome=welcome, now=clock.now().isoformat(), tz=clock.program_tz().key, page_lang=lang,
        staff=None))  # no staff chrome or idle sign-out on a public screen
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/enroll/<nonce>", methods=["GET"])
def enroll_confirm(nonce: str):
    """Asks before using the link: a GET (a link preview, a prefetch) never spends it."""
    device = kiosks.enrollment_device(nonce)
    if device is None:
        return render_template("kiosk/enroll.html", device=None), 404
    return render_template("kiosk/enroll.html", device=device, nonce=nonce)


@bp.route("/enroll/<nonce>", methods=["POST"])
def enroll_complete(nonce: str):
    try:
        with db.transaction():
            device = kiosks.complete_enrollment(nonce)
    except kiosks.KioskError as exc:
        return render_template("kiosk/enroll.html", device=None, error=str(exc)), 404
    # A kiosk is a public screen: no staff sign-in may linger in its browser (the setup may have
    # been done while signed in, on the tablet itself): it ends on the server too.
    from iop.web.auth import TOKEN

    found = staff_sessions.find(session.get(TOKEN))
    if found is not None:
        with db.transaction():
            staff_sessions.end(found[0].id, clock.now(), "sign_out")
    session.clear()
    response = redirect(url_for("kiosk.page"))
    response.set_cookie(kiosks.COOKIE_NAME, kiosks.cookie_value(device), max_age=kiosks.COOKIE_MAX_AGE,
                        httponly=True, samesite="Strict", path="/kiosk",
                        secure=request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


@bp.route("/tls-ca.crt")
def tls_certificate():
    """The certificate a tablet installs to trust `iop serve --https` (public by nature)."""
    from iop.ops import serving

    path = serving.ca_certificate_path(current_app)
    if not Path(path).is_file():
        abort(404)
    return send_file(path, mimetype="application/x-x509-ca-cert", as_attachment=True,
                     download_name="iop-kiosk-ca.crt")


# ---- the JSON API --------------------------------------------------------------------------------

@bp.route("/api/scan", methods=["POST"])
@csrf.exempt
def api_scan():
    device = current_kiosk()
    if device is None:
        return _error("not_enrolled")
    data, problem = _json_body()
    if problem is not None:
        return problem
    try:
        scan_request = scan.parse_request(data)
    except scan.ScanRefused as exc:
        return _error(exc.code)
    answer = scan.record_scan(device.id, scan_request)
    body = dict(answer.body)
    if "error" in body:
        body = {"error": {"code": answer.code, "message": error_message(answer.code)}}
    return jsonify(body), answer.status


@bp.route("/api/help", methods=["POST"])
@csrf.exempt
def api_help():
    """"Forgot your card?": staff of the sessions open now are told which kiosk; nothing personal."""
    from iop.live import roster

    device = current_kiosk()
    if device is None:
        return _error("not_enrolled")
    _data, problem = _json_body()
    if problem is not None:
        return problem
    if kiosks.help_due(device.id, clock.now()):
        try:
            roster.publish_help_request(device.name)
        except Exception:  # noqa: BLE001  (the person still sees that help is coming; staff can be told again)
            log.exception("help request could not be published")
    kiosks.seen(device)
    return jsonify(result="help_requested", message=words("help.sent"))


@bp.route("/api/status")
def api_status():
    """The kiosk page's heartbeat: still enrolled? and the server's time (for offline scan times)."""
    device = current_kiosk()
    if device is None:
        return _error("not_enrolled")
    kiosks.seen(device)
    response = jsonify(enrolled=True, now=clock.now().isoformat())
    response.headers["Cache-Control"] = "no-store"
    return response

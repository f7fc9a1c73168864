"""Security headers on every response, in one place.

- Content-Security-Policy: scripts, styles, workers, images and connections from this server only;
  no inline script or style (pages carry their data in data- attributes and JSON blocks, their code
  in static files), no plugins, no <base>, forms post here only, and no site may frame a page.
- X-Frame-Options DENY and X-Content-Type-Options nosniff for browsers that predate the CSP.
- Referrer-Policy: same-origin (our own forms send it, as CSRF's HTTPS check needs; no other site
  learns a URL); the kiosk and the room display send none at all (their links are keys).
- Permissions-Policy: no page may use the camera, microphone or location, except the kiosk page's
  camera (the tablet reads cards with it).
- Cache-Control: no-store on everything but static files: staff pages and JSON answers carry names.
- Strict-Transport-Security when people reach the service over TLS (IOP_HTTPS=on, `iop serve --https`).
"""
from __future__ import annotations

from flask import Flask, current_app, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "connect-src 'self' {sockets}; worker-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
NO_FEATURES = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=()"
KIOSK_FEATURES = NO_FEATURES.replace("camera=()", "camera=(self)")
HSTS = "max-age=31536000"
NO_REFERRER_PATHS = ("/kiosk/", "/facilitator/display/")
KIOSK_ENROLL = "/kiosk/enroll/"  # its confirmation form posts back here: same-origin, like staff forms


def content_security_policy() -> str:
    # 'self' covers ws:/wss: to this host in current browsers; older Safari needs them named.
    scheme = "wss" if request.is_secure else "ws"
    return CSP.format(sockets=f"{scheme}://{request.host}")


def add_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    private = request.path.startswith(NO_REFERRER_PATHS) and not request.path.startswith(KIOSK_ENROLL)
    headers.setdefault("Referrer-Policy", "no-referrer" if private else "same-origin")
    headers.setdefault("Permissions-Policy", KIOSK_FEATURES if request.endpoint == "kiosk.page" else NO_FEATURES)
    if not (request.endpoint or "").endswith("static"):
        headers["Cache-Control"] = "no-store"
    if current_app.config.get("PREFERRED_URL_SCHEME") == "https":
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)

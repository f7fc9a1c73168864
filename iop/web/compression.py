"""Response compression without BREACH.

A compressed HTTPS response that carries a secret next to text an attacker can put on the same
page (a search box, a query string, a name typed into a form) leaks the secret through its length,
a byte at a time (BREACH). Flask-WTF's CSRF token does not hide it: the token is the session's own
random value, signed with the time, so its first part is the same on every page of the session
(it is not masked per response). And a staff page's names are themselves what must not leak.

So a response is compressed only when it carries no secret:
- static files (CSS, JS, images, fonts) are compressed always;
- a page or JSON answer is compressed only when no CSRF token was put into it and no staff member
  is signed in to the request (the kiosk page qualifies: it carries no token, and the kiosk's
  cookie is HttpOnly and SameSite=Strict, so another site cannot make the kiosk ask for it);
- a streamed page is never compressed (what it carries is known only once it is sent); exports are
  not text/html and were never compressed.
"""
from __future__ import annotations

from flask import Flask, current_app, g, request, session

from iop.extensions import compress


def carries_a_secret(response) -> bool:
    """Whether the response may carry a CSRF token or a signed-in staff member's page."""
    if (request.endpoint or "").endswith("static"):
        return False
    if response.is_streamed:
        return True
    from iop.web.auth import TOKEN

    token_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    return token_field in g or g.get("staff_user") is not None or TOKEN in session


def compress_unless_secret(response):
    if carries_a_secret(response):
        return response
    return compress.after_request(response)


def init_app(app: Flask) -> None:
    app.config["COMPRESS_REGISTER"] = False  # compress_unless_secret decides, not Flask-Compress alone
    compress.init_app(app)
    app.after_request(compress_unless_secret)

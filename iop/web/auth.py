"""Staff sign-in pages, the signed-in user, idle sign-out and the one role-check decorator.

A staff sign-in is a row on the server (iop.clinic.staff_sessions); the browser's signed cookie carries
only its random token. Each request finds the row again: an ended one (sign-out, idle time, a password
or role change, deactivation) signs no one in, so a copied cookie is worthless once it has ended."""
from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from iop import clock
from iop.clinic import audit, staff, staff_sessions
from iop.clinic.staff import ROLE_RANK, has_role
from iop.store import db
from iop.store.models import StaffSession, StaffUser
from iop.web.json_body import json_object, sends_json

bp = Blueprint("auth", __name__)

LANDING = {"facilitator": "facilitator.home", "coordinator": "coordinator.home", "admin": "coordinator.home"}
TOKEN = "staff_token"  # the session cookie's one staff entry: the token of a staff_session row
KIOSK_API = "/kiosk/api/"


# ---- the signed-in user ---------------------------------------------------------------------

def client_address() -> str:
    """The browser's address: the proxy's X-Forwarded-For only when IOP_PROXY_HOPS says to trust it
    (ProxyFix, applied in create_app, has then already put it here)."""
    return (request.remote_addr or "")[:64]


def signed_in() -> tuple[StaffSession, StaffUser] | None:
    """The live staff session of this request and its person: not ended, person active, not idle."""
    found = staff_sessions.find(session.get(TOKEN))
    if found is None:
        return None
    staff_session, user = found
    if not user.active or staff_sessions.why_over(staff_session, clock.now(), staff_sessions.idle_time()):
        return None
    return found


def current_user() -> StaffUser | None:
    if "staff_user" not in g:
        found = signed_in()
        g.staff_session, g.staff_user = found if found else (None, None)
    return g.staff_user


def current_session_key() -> str | None:
    current_user()
    return g.staff_session.id if g.get("staff_session") is not None else None


def staff_required(minimum: str = "facilitator"):
    """The one role check: anonymous users go to sign-in, lower roles get 403."""
    if minimum not in ROLE_RANK:
        raise ValueError(minimum)

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                if request.method == "GET" and not request.path.startswith("/api/"):
                    return redirect(url_for("auth.login", next=request.path))
                return jsonify(error={"code": "signed_out", "message": "Please sign in again."}), 401
            if not has_role(user, minimum):
                abort(403)
            if sends_json() and json_object() is None:
                abort(400)  # a staff script's JSON body is an object, or the call is refused
            return view(*args, **kwargs)

        wrapped.minimum_role = minimum
        return wrapped

    return decorate


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def landing_url(user: StaffUser) -> str:
    return url_for(LANDING[user.role])


# ---- pages ----------------------------------------------------------------------------------

class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = ""
    status = 401 if request.method == "POST" else 200
    if request.method == "GET" and request.args.get("idle"):
        error = "You were signed out after a while without activity. Please sign in again."
    elif request.method == "GET" and request.args.get("expired"):
        error = "You were signed in for 12 hours, so you were signed out. Please sign in again."
    if form.validate_on_submit():
        now, address = clock.now(), client_address()
        result = staff.sign_in(form.username.data, form.password.data, address, now)
        if result.user is not None:
            user = result.user
            earlier = session.get(TOKEN)
            with db.transaction():
                if earlier and (found := staff_sessions.find(earlier)) is not None:
                    staff_sessions.end(found[0].id, now, "sign_out")  # this browser's sign-in before
                token = staff_sessions.begin(user, now, address)
                audit.record("staff.sign_in", target=f"staff:{user.id}", user=user, address=address)
            session.clear()  # a new session at sign-in: nothing from before carries over, a new token
            session[TOKEN] = token
            return redirect(_safe_next(request.args.get("next")) or landing_url(user))
        error = result.message
        if result.code == "too_many_tries":
            status = 429
    elif request.method == "POST" and not error:
        error = "Please enter your username and password."
    response = current_app.make_response((render_template("login.html", form=form, error=error), status))
    if status == 429:
        response.headers["Retry-After"] = str(result.wait_seconds)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out: every session of this person ends (every browser), and their open screens close."""
    from iop.live import realtime

    user = current_user()
    if user is not None:
        with db.transaction():
            audit.record("staff.sign_out", target=f"staff:{user.id}", user=user, address=client_address())
            staff_sessions.end_all(user.id, clock.now(), "sign_out")
        realtime.close_staff_screens_of(user.id)
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    new = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    again = PasswordField("New password again", validators=[DataRequired(), Length(max=256)])


@bp.route("/password", methods=["GET", "POST"])
@staff_required("facilitator")
def change_password():
    """A person's own password. Every session of theirs ends; this browser signs in again at once."""
    user = current_user()
    form = PasswordForm()
    problem = ""
    if form.validate_on_submit():
        if form.new.data != form.again.data:
            problem = "The two new passwords are not the same."
        else:
            now = clock.now()
            try:
                with db.transaction():
                    staff.change_own_password(user, form.current.data, form.new.data, now)
                    token = staff_sessions.begin(user, now, client_address())
            except staff.StaffError as exc:
                problem = str(exc)
            else:
                from iop.live import realtime

                realtime.close_staff_screens_of(user.id)
                session.clear()
                session[TOKEN] = token
                flash("Your password is changed. Every other place you were signed in is signed out.")
                return redirect(landing_url(user))
    elif request.method == "POST":
        problem = "Please fill in all three fields."
    return render_template("password.html", form=form, problem=problem), 400 if problem else 200


# ---- each request ---------------------------------------------------------------------------

def _check_staff_session():
    """Find this browser's staff session; end it when idle too long, else note the activity."""
    if request.endpoint in (None, "static") or TOKEN not in session:
        return None
    now = clock.now()
    found = staff_sessions.find(session.get(TOKEN))
    if found is None or not found[1].active:
        session.pop(TOKEN, None)  # ended elsewhere (sign-out, a password change, deactivation)
        g.staff_session, g.staff_user = None, None
        return None
    staff_session, user = found
    over = staff_sessions.why_over(staff_session, now, staff_sessions.idle_time())
    if over:
        from iop.live import realtime

        with db.transaction():
            staff_sessions.end(staff_session.id, now, over)
            audit.record("staff.sign_out", target=f"staff:{user.id}", user=user, reason=over)
        realtime.close_staff_screens([staff_session.id])
        session.pop(TOKEN, None)
        g.staff_session, g.staff_user = None, None
        if request.method == "GET" and not request.path.startswith(("/api/", KIOSK_API)):
            return redirect(url_for("auth.login", **{over: 1}))
        return None
    staff_sessions.touch(staff_session, now)
    g.staff_session, g.staff_user = staff_session, user
    return None


class StaffSessionInterface(SecureCookieSessionInterface):
    """Flask's signed session cookie, which carries the staff session's token. The kiosk's JSON API
    acts only for the kiosk its own cookie names, so its requests neither read nor refresh a staff
    session (a tablet may once have been used to sign in) and skip checking that cookie on every scan."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(KIOSK_API):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = StaffSessionInterface()
    app.before_request(_check_staff_session)

    @app.context_processor
    def _staff_context():
        return {"staff": current_user(), "idle_seconds": app.config["IDLE_SIGNOUT_MINUTES"] * 60}

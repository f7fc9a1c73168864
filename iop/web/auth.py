"""Staff sign-in pages, the signed-in user, idle sign-out and the one role-check decorator."""
from __future__ import annotations

import functools
import secrets
from datetime import timedelta
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
from iop.clinic import audit
from iop.clinic.staff import ROLE_RANK, authenticate, has_role
from iop.store import db
from iop.store.models import StaffUser

bp = Blueprint("auth", __name__)

LANDING = {"facilitator": "facilitator.home", "coordinator": "coordinator.home", "admin": "coordinator.home"}


# ---- the signed-in user ---------------------------------------------------------------------

def current_user() -> StaffUser | None:
    if "staff_user" not in g:
        user_id = session.get("user_id")
        user = db.session().get(StaffUser, user_id) if user_id else None
        g.staff_user = user if user is not None and user.active else None
    return g.staff_user


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
    if request.method == "GET" and request.args.get("idle"):
        error = "You were signed out after a while without activity. Please sign in again."
    if form.validate_on_submit():
        user, error = authenticate(form.username.data, form.password.data)
        if user is not None:
            session.clear()  # a new session at sign-in: nothing from before carries over
            session["user_id"] = user.id
            session["nonce"] = secrets.token_hex(8)
            session["seen"] = clock.now().timestamp()
            audit.record("staff.sign_in", target=f"staff:{user.id}", user=user)
            db.session().commit()
            return redirect(_safe_next(request.args.get("next")) or landing_url(user))
    elif request.method == "POST" and not error:
        error = "Please enter your username and password."
    status = 401 if request.method == "POST" else 200
    return render_template("login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    user = current_user()
    if user is not None:
        audit.record("staff.sign_out", target=f"staff:{user.id}", user=user)
        db.session().commit()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


def _idle_sign_out():
    """Sign out a staff session idle for longer than IDLE_SIGNOUT_MINUTES."""
    if "user_id" not in session or request.endpoint in (None, "static"):
        return None
    idle = timedelta(minutes=current_app.config["IDLE_SIGNOUT_MINUTES"]).total_seconds()
    now = clock.now().timestamp()
    if now - float(session.get("seen", 0)) > idle:
        session.clear()
        if request.method == "GET" and not request.path.startswith(("/api/", KIOSK_API)):
            return redirect(url_for("auth.login", idle=1))
        return None
    session["seen"] = now
    return None


KIOSK_API = "/kiosk/api/"


class StaffSessionInterface(SecureCookieSessionInterface):
    """Staff sign-in lives in Flask's signed session cookie. The kiosk's JSON API acts only for the
    kiosk its own cookie names, so its requests neither read nor refresh a staff session (a tablet
    may once have been used to sign in) and skip checking that cookie's signature on every scan."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(KIOSK_API):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = StaffSessionInterface()
    app.before_request(_idle_sign_out)

    @app.context_processor
    def _staff_context():
        return {"staff": current_user(), "idle_seconds": app.config["IDLE_SIGNOUT_MINUTES"] * 60}

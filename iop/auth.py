"""Staff sign-in, roles, idle sign-out and the one role-check decorator."""
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
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from iop import audit, clock, db
from iop.models import ROLES, StaffUser

bp = Blueprint("auth", __name__)

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
LANDING = {"facilitator": "facilitator.home", "coordinator": "coordinator.home", "admin": "coordinator.home"}
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8


class StaffError(ValueError):
    """A staff account request a person can fix (the message says how)."""


# ---- accounts -------------------------------------------------------------------------------

def validate_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise StaffError("A username is needed.")
    if len(username) > 64 or not all(ch.isalnum() or ch in "._-" for ch in username):
        raise StaffError("A username may use letters, digits, dots, dashes and underscores (at most 64).")
    return username


def add_user(username: str, password: str, role: str, display_name: str = "", credentials: str = "") -> StaffUser:
    """Create a staff login in the current session (the caller commits)."""
    username = validate_username(username)
    if role not in ROLES:
        raise StaffError(f"The role must be one of {', '.join(ROLES)}.")
    if not password or not password.strip():
        raise StaffError("The password is empty.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    db_session = db.session()
    if db_session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise StaffError(f"The username {username!r} is taken.")
    user = StaffUser(
        username=username,
        display_name=display_name.strip() or username,
        credentials=credentials.strip(),
        role=role,
        password_hash=generate_password_hash(password),
    )
    db_session.add(user)
    return user


def authenticate(username: str, password: str) -> tuple[StaffUser | None, str]:
    """The user when the password is right and the account may sign in, else None and why."""
    db_session = db.session()
    user = db_session.scalar(select(StaffUser).where(StaffUser.username == (username or "").strip()))
    now = clock.now()
    generic = "That username and password do not match."
    if user is None or not user.active:
        # Spend the same work as a real check, so timing does not tell which usernames exist.
        check_password_hash(_DUMMY_HASH, password or "")
        return None, generic
    if user.locked_until and user.locked_until > now:
        return None, "Too many tries. This account is paused for 15 minutes; ask an admin if it is urgent."
    if not check_password_hash(user.password_hash, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record("staff.locked", target=f"staff:{user.id}", user=user)
        db_session.commit()
        return None, generic
    user.failed_logins = 0
    user.locked_until = None
    return user, ""


_DUMMY_HASH = generate_password_hash("not-a-real-password")


# ---- the signed-in user ---------------------------------------------------------------------

def current_user() -> StaffUser | None:
    if "staff_user" not in g:
        user_id = session.get("user_id")
        user = db.session().get(StaffUser, user_id) if user_id else None
        g.staff_user = user if user is not None and user.active else None
    return g.staff_user


def has_role(user: StaffUser | None, minimum: str) -> bool:
    return user is not None and ROLE_RANK.get(user.role, 0) >= ROLE_RANK[minimum]


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

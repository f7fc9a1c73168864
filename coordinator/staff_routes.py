"""The Staff page (admins): every account, and the changes a clinic makes to them. Thin views over
iop.clinic.staff, which checks, writes and audits; a change that ends someone's sessions also closes
their open screens here (other processes' screens close by themselves within seconds)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from coordinator import bp
from coordinator.forms import AddStaffForm, DetailsForm, ResetPasswordForm, RoleForm
from iop import clock
from iop.clinic import sign_in_throttle, staff, staff_sessions
from iop.live import realtime
from iop.store import db
from iop.store.models import StaffUser
from iop.web.auth import current_user, staff_required


def _member_or_404(user_id: int) -> StaffUser:
    user = staff.member(user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/staff", methods=["GET", "POST"])
@staff_required("admin")
def staff_page():
    form = AddStaffForm()
    problem = ""
    if form.validate_on_submit():
        if not form.passwords_match():
            problem = "The two passwords are not the same."
        else:
            try:
                with db.transaction():
                    user = staff.add_user(form.username.data, form.password.data, form.role.data,
                                          form.display_name.data, form.credentials.data or "", current_user())
            except staff.StaffError as exc:
                problem = str(exc)
            else:
                flash(f"{user.display_name} can now sign in as {user.username} ({user.role}).")
                return redirect(url_for("coordinator.staff_page"))
    elif form.is_submitted():
        problem = "Please fill in the username, the full name and the password (twice)."
    return render_template("coordinator/staff.html", form=form, problem=problem, people=staff.everyone(),
                           last_sign_ins=staff_sessions.last_sign_ins(),
                           slowed=sign_in_throttle.slowed_usernames(clock.now())), 400 if problem else 200


def _member_page(user: StaffUser, problem: str = "", **forms):
    forms.setdefault("details", DetailsForm(display_name=user.display_name, credentials=user.credentials,
                                            formdata=None))
    forms.setdefault("role", RoleForm(role=user.role, formdata=None))
    forms.setdefault("password", ResetPasswordForm(formdata=None))
    return render_template("coordinator/staff_member.html", member=user, problem=problem,
                           slowed=sign_in_throttle.normal_username(user.username)
                           in sign_in_throttle.slowed_usernames(clock.now()),
                           myself=user.id == current_user().id, **forms), 400 if problem else 200


@bp.route("/staff/<int:user_id>", methods=["GET"])
@staff_required("admin")
def staff_member(user_id: int):
    return _member_page(_member_or_404(user_id))


def _change(user: StaffUser, change, done: str, closes_screens: bool = False):
    """Run `change()` in one unit of work; back to the person's page with `done`, or the problem."""
    try:
        with db.transaction():
            change()
    except staff.StaffError as exc:
        return _member_page(_member_or_404(user.id), str(exc))
    if closes_screens:
        realtime.close_staff_screens_of(user.id)
    flash(done)
    return redirect(url_for("coordinator.staff_member", user_id=user.id))


@bp.route("/staff/<int:user_id>/details", methods=["POST"])
@staff_required("admin")
def staff_details(user_id: int):
    user = _member_or_404(user_id)
    form = DetailsForm()
    if not form.validate_on_submit():
        return _member_page(user, "The full name is needed (it signs group notes).", details=form)
    return _change(user, lambda: staff.edit_details(user, form.display_name.data, form.credentials.data or "",
                                                     current_user()), "The name and credentials are saved.")


@bp.route("/staff/<int:user_id>/role", methods=["POST"])
@staff_required("admin")
def staff_role(user_id: int):
    user = _member_or_404(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _member_page(user, "Please choose one of the roles.", role=form)
    return _change(user, lambda: staff.set_role(user, form.role.data, current_user(), clock.now()),
                   f"{user.display_name} is now a {form.role.data}; they sign in again to use it.",
                   closes_screens=True)


@bp.route("/staff/<int:user_id>/password", methods=["POST"])
@staff_required("admin")
def staff_password(user_id: int):
    user = _member_or_404(user_id)
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _member_page(user, "Please type the new password twice.", password=form)
    if not form.passwords_match():
        return _member_page(user, "The two passwords are not the same.", password=form)
    return _change(user, lambda: staff.reset_password(user, form.password.data, current_user(), clock.now()),
                   f"{user.display_name} has a new password; every place they were signed in is signed out.",
                   closes_screens=True)


@bp.route("/staff/<int:user_id>/deactivate", methods=["POST"])
@staff_required("admin")
def staff_deactivate(user_id: int):
    user = _member_or_404(user_id)
    return _change(user, lambda: staff.deactivate(user, current_user(), clock.now()),
                   f"{user.display_name} is deactivated: they cannot sign in, and were signed out everywhere. "
                   "Their name stays on their notes and in the audit log.", closes_screens=True)


@bp.route("/staff/<int:user_id>/reactivate", methods=["POST"])
@staff_required("admin")
def staff_reactivate(user_id: int):
    user = _member_or_404(user_id)
    return _change(user, lambda: staff.reactivate(user, current_user()), f"{user.display_name} can sign in again.")


@bp.route("/staff/<int:user_id>/unlock", methods=["POST"])
@staff_required("admin")
def staff_unlock(user_id: int):
    user = _member_or_404(user_id)
    return _change(user, lambda: staff.unlock(user, current_user()),
                   f"The sign-in slow-down for {user.username} is lifted: they can try again now.")

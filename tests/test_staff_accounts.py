"""Staff accounts for a real clinic: the admin's Staff page and `iop user list | add | deactivate |
reactivate | set-role | reset-password | unlock`, every change audited; deactivated accounts are kept
(their names stay on notes and in the audit log) and cannot sign in; passwords follow NIST SP 800-63B
(10 characters, 12 for admins, not common, not containing the username)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from iop.clinic import staff
from iop.store import db
from iop.store.models import AuditEvent, StaffUser


def actions(app) -> list[str]:
    with app.app_context():
        return list(db.session().scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def account(app, username) -> StaffUser:
    with app.app_context():
        return db.session().scalar(select(StaffUser).where(StaffUser.username == username))


# ---- passwords --------------------------------------------------------------------------------

@pytest.mark.parametrize("password, role, code", [
    ("nine char", "facilitator", "password_too_short"),
    ("eleven char", "admin", "password_too_short"),
    ("password1234", "facilitator", "password_common"),
    ("qwertyuiopasdf", "coordinator", "password_common"),
    ("aaaaaaaaaaaa", "facilitator", "password_common"),
    ("iloveyou2024", "facilitator", "password_common"),
    ("1234567890", "facilitator", "password_common"),
    ("dana-is-on-call", "facilitator", "password_has_username"),
    ("DANA maple harbor", "facilitator", "password_has_username"),
    ("          ", "facilitator", "password_empty"),
    ("x" * 257, "facilitator", "password_too_long"),
])
def test_weak_passwords_are_refused_with_the_reason(password, role, code):
    with pytest.raises(staff.StaffError) as refused:
        staff.check_password(password, "dana", role)
    assert refused.value.code == code and str(refused.value)


@pytest.mark.parametrize("password, role", [
    ("maple harbor", "facilitator"), ("correct horse 1", "admin"), ("ten chars!", "facilitator"),
    ("Blue coffee mug on Tuesday", "admin"), ("ünïcødé pâsswörd", "coordinator"),
    (" ".join(["harbor", "maple", "quiet", "river", "stone", "lantern"] * 8)[:256], "coordinator"),
])
def test_long_uncommon_passwords_are_welcome_whatever_their_characters(password, role):
    staff.check_password(password, "dana", role)


def test_the_demo_passwords_follow_the_rules():
    from iop.ops.demo import STAFF

    for username, password, role, _name, _credentials in STAFF:
        staff.check_password(password, username, role)


# ---- the command line -------------------------------------------------------------------------

def iop(runner, *args, password=None):
    return runner.invoke(args=list(args), input=None if password is None else password + "\n")


def test_every_user_command_changes_the_account_and_is_audited(app, runner):
    assert iop(runner, "user", "add", "root", "--role", "admin", "--password-stdin",
               password="correct horse battery").exit_code == 0
    added = iop(runner, "user", "add", "dana", "--role", "facilitator", "--name", "Dana Reyes", "--credentials",
                "LCSW", "--password-stdin", password="maple harbor lantern")
    assert added.exit_code == 0 and added.output == "Added facilitator dana.\n"
    listed = iop(runner, "user", "list")
    assert listed.output.splitlines() == ["dana\tfacilitator\tactive\tDana Reyes, LCSW", "root\tadmin\tactive\troot"]

    assert iop(runner, "user", "set-role", "dana", "coordinator").exit_code == 0
    assert account(app, "dana").role == "coordinator"
    reset = iop(runner, "user", "reset-password", "dana", "--password-stdin", password="river stone quiet")
    assert reset.exit_code == 0, reset.output
    assert AuthActions(app.test_client(), app).login("dana", "river stone quiet", create=False).status_code == 302
    assert iop(runner, "user", "unlock", "dana").exit_code == 0
    assert iop(runner, "user", "deactivate", "dana").exit_code == 0
    assert "dana\tcoordinator\tdeactivated\tDana Reyes, LCSW" in iop(runner, "user", "list").output
    assert AuthActions(app.test_client(), app).login("dana", "river stone quiet", create=False).status_code == 401
    assert iop(runner, "user", "reactivate", "dana").exit_code == 0
    assert AuthActions(app.test_client(), app).login("dana", "river stone quiet", create=False).status_code == 302
    assert [a for a in actions(app) if a.startswith("staff.") and not a.startswith("staff.sign_in")] == [
        "staff.created", "staff.created", "staff.role_changed", "staff.password_reset", "staff.unlocked",
        "staff.deactivated", "staff.reactivated"]
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "staff.role_changed"))
    assert event.detail == {"old": "facilitator", "new": "coordinator", "sessions_ended": 0, "via": "cli"}


def test_reset_password_asks_twice_without_the_flag(app, runner):
    iop(runner, "user", "add", "dana", "--role", "facilitator", "--password-stdin", password="maple harbor lantern")
    result = runner.invoke(args=["user", "reset-password", "dana"], input="river stone quiet\nriver stone quiet\n")
    assert result.exit_code == 0, result.output
    assert "river stone quiet" not in result.output  # never echoed


@pytest.mark.parametrize("args, password, words", [
    (["user", "deactivate", "nobody"], None, "There is no staff login 'nobody'."),
    (["user", "set-role", "root", "facilitator"], None, "only active admin"),
    (["user", "deactivate", "root"], None, "only active admin"),
    (["user", "reset-password", "root", "--password-stdin"], "short", "at least 12 characters"),
    (["user", "reset-password", "root", "--password-stdin"], "password1234", "too common"),
    (["user", "add", "casey", "--role", "coordinator", "--password-stdin"], "casey-the-coordinator", "username"),
    (["user", "reactivate", "root"], None, "already active"),
])
def test_refusals_are_one_line_with_exit_1(app, runner, args, password, words):
    iop(runner, "user", "add", "root", "--role", "admin", "--password-stdin", password="correct horse battery")
    before = actions(app)
    result = iop(runner, *args, password=password)
    assert result.exit_code == 1 and words in result.output, result.output
    assert actions(app) == before  # nothing changed, nothing audited


# ---- the Staff page -----------------------------------------------------------------------------

@pytest.fixture
def admin(app):
    http = app.test_client()
    AuthActions(http, app).login("root", role="admin")
    return http


def member_url(http, name: str) -> str:
    page = http.get("/coordinator/staff").get_data(as_text=True)
    return re.search(rf'href="(/coordinator/staff/\d+)">Change<span class="visually-hidden"> {name}<', page).group(1)


def test_an_admin_adds_a_staff_member_who_can_then_sign_in(app, admin):
    page = admin.get("/coordinator/staff")
    assert page.status_code == 200 and "Add a staff member" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    form = {"csrf_token": token, "username": "lee", "display_name": "Lee Park", "credentials": "CADC",
            "role": "facilitator", "password": "maple harbor lantern", "again": "maple harbor lantern"}
    mismatch = admin.post("/coordinator/staff", data={**form, "again": "maple harbor lanterns"})
    assert mismatch.status_code == 400 and "not the same" in mismatch.get_data(as_text=True)
    common = admin.post("/coordinator/staff", data={**form, "password": "password1234", "again": "password1234"})
    assert common.status_code == 400 and "too common" in common.get_data(as_text=True)
    assert admin.post("/coordinator/staff", data=form).status_code == 302
    listing = admin.get("/coordinator/staff").get_data(as_text=True)
    assert "Lee Park, CADC" in listing and "Never" in listing
    assert AuthActions(app.test_client(), app).login("lee", "maple harbor lantern", create=False).status_code == 302
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "staff.created",
                                                             AuditEvent.username == "root"))
    assert event is not None and event.detail == {"role": "facilitator"}


def test_name_and_credentials_are_edited_and_sign_later_notes(app, admin, auth):
    auth.make_user("dana", name="Dana Reyes")
    url = member_url(admin, "Dana Reyes")
    token = csrf_from(admin.get(url).get_data(as_text=True))
    saved = admin.post(url + "/details", data={"csrf_token": token, "display_name": "Dana Reyes-Ortiz",
                                               "credentials": "LCSW, CADC"})
    assert saved.status_code == 302
    assert account(app, "dana").signature == "Dana Reyes-Ortiz, LCSW, CADC"
    refused = admin.post(url + "/details", data={"csrf_token": token, "display_name": "Dana\u202eReyes",
                                                 "credentials": ""})
    assert refused.status_code == 400 and "cannot be printed" in refused.get_data(as_text=True)
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "staff.details_changed"))
    assert event.detail["fields"] == ["display_name", "credentials"]
    assert event.detail["old"] == {"display_name": "Dana Reyes", "credentials": "LCSW"}


def test_a_deactivated_account_is_kept_with_its_name_on_its_notes(app, admin, live_group, runner):
    from datetime import timedelta

    from iop import clock

    group = live_group(facilitator="dana")
    dana = app.test_client()
    AuthActions(dana, app).login("dana", create=False)
    summary = f"/facilitator/sessions/{group.session_id}"
    token = csrf_from(dana.get(summary).get_data(as_text=True))
    dana.post(summary + "/close", data={"csrf_token": token})
    clock.advance(timedelta(minutes=1))
    dana.post(summary + "/note", data={"csrf_token": token, "note_text": "Group met.", "action": "sign"})
    url = member_url(admin, "Dana")
    page = admin.get(url).get_data(as_text=True)
    assert admin.post(url + "/deactivate", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert "Deactivated" in admin.get("/coordinator/staff").get_data(as_text=True)
    assert account(app, "dana") is not None and not account(app, "dana").active
    note = admin.get(summary + "/summary").get_data(as_text=True)
    assert "Dana, LCSW" in note  # the signed note keeps its signer's name
    audit_page = admin.get("/coordinator/audit").get_data(as_text=True)
    assert "Dana" in audit_page  # by name, though deactivated
    reactivate = admin.post(url + "/reactivate", data={"csrf_token": csrf_from(page)})
    assert reactivate.status_code == 302 and account(app, "dana").active


def test_an_admin_cannot_lock_the_program_out(app, admin):
    root_url = member_url(admin, "Root")
    page = admin.get(root_url).get_data(as_text=True)
    assert "Deactivate Root" not in page and "Change role" not in page  # not offered for yourself
    token = csrf_from(page)
    for path, data in (("/deactivate", {}), ("/role", {"role": "coordinator"})):
        refused = admin.post(root_url + path, data={"csrf_token": token, **data})
        assert refused.status_code == 400 and "your own account" in refused.get_data(as_text=True)
    assert account(app, "root").active and account(app, "root").role == "admin"

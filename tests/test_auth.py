"""Staff sign-in: right and wrong passwords, roles, CSRF, idle sign-out."""
from datetime import datetime, timedelta, timezone

from iop import clock


def test_sign_in_lands_on_the_role_page(client, auth):
    response = auth.login(role="facilitator")
    assert response.status_code == 302
    assert response.headers["Location"] == "/facilitator/"
    assert b"Today" in client.get("/facilitator/").data


def test_coordinator_lands_on_the_board(client, auth):
    response = auth.login("pat", role="coordinator")
    assert response.headers["Location"] == "/coordinator/"


def test_wrong_password_is_refused_without_saying_which_part(client, auth):
    auth.make_user()
    response = auth.login(password="wrong password", create=False)
    assert response.status_code == 401
    assert b"do not match" in response.data
    assert client.get("/facilitator/").status_code == 302


def test_unknown_user_gets_the_same_words(client, auth):
    response = auth.login("nobody", "whatever1", create=False)
    assert response.status_code == 401 and b"do not match" in response.data


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/coordinator/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_facilitator_cannot_open_coordinator_pages(client, auth):
    auth.login()
    assert client.get("/coordinator/").status_code == 403


def test_post_without_csrf_token_is_rejected(client, auth):
    auth.make_user()
    response = client.post("/login", data={"username": "dana", "password": "correct horse 1"})
    assert response.status_code == 400
    assert b"expired" in response.data
    assert client.get("/facilitator/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, auth):
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_idle_staff_are_signed_out_after_15_minutes(client, auth, freeze):
    start = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    freeze(start)
    auth.login()
    assert client.get("/facilitator/").status_code == 200
    clock.advance(timedelta(minutes=14))
    assert client.get("/facilitator/").status_code == 200  # activity restarts the idle clock
    clock.advance(timedelta(minutes=16))
    response = client.get("/facilitator/")
    assert response.status_code == 302 and "idle=1" in response.headers["Location"]
    assert b"signed out after a while" in client.get(response.headers["Location"]).data


def test_sign_out(client, auth):
    auth.login()
    auth.logout()
    assert client.get("/facilitator/").status_code == 302


def test_next_parameter_cannot_leave_the_site(client, auth):
    auth.make_user()
    token = auth.csrf()
    response = client.post("/login?next=https://evil.example/", data={
        "username": "dana", "password": "correct horse 1", "csrf_token": token})
    assert response.headers["Location"] == "/facilitator/"


def test_sign_in_is_audited(client, auth, app):
    auth.login()
    from sqlalchemy import select

    from iop.store import db
    from iop.store.models import AuditEvent

    with app.app_context():
        actions = list(db.session().scalars(select(AuditEvent.action)))
    assert "staff.sign_in" in actions

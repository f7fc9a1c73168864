"""A real browser signs in and reaches the role's landing page."""
import pytest

pytestmark = pytest.mark.browser


def test_coordinator_signs_in_with_a_real_browser(live_server, auth, page):
    auth.make_user("pat", role="coordinator", password="a long password")
    page.goto(live_server.url + "/")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/coordinator/")
    assert page.get_by_role("heading", level=1).inner_text() == "This week"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_server.url + "/login")


def test_wrong_password_shows_a_clear_message(live_server, auth, page):
    auth.make_user("pat", role="coordinator", password="a long password")
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("not it at all")
    page.get_by_role("button", name="Sign in").click()
    assert "do not match" in page.get_by_role("alert").inner_text()

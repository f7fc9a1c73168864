"""What a refused request says to the person who made it: a page in the staff's words, or JSON with a
code on the APIs (a kiosk shows the message); never a traceback, never Werkzeug's own page."""
from __future__ import annotations

import pytest

from iop import create_app
from iop.store import db


def test_an_unknown_page_says_so_in_the_projects_page(client):
    response = client.get("/coordinator/no-such-page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "There is nothing here." in page
    assert "Werkzeug" not in page and "<title>404 Not Found</title>" not in page


def test_an_api_refusal_is_json_with_a_code_and_words(client):
    missing = client.get("/kiosk/api/no-such-call")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == {"code": "not_found", "message": "There is nothing here."}
    wrong_method = client.get("/kiosk/api/scan")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"


def test_a_role_without_the_page_is_told_so(auth, client):
    auth.login(role="facilitator")
    response = client.get("/coordinator/clients")
    assert response.status_code == 403 and "Your role does not allow this page." in response.get_data(as_text=True)


def test_a_body_too_large_is_refused_with_words(client, app):
    too_big = {"username": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1), "password": "x"}
    response = client.post("/login", data=too_big)
    assert response.status_code == 413 and "That is too large to send." in response.get_data(as_text=True)


@pytest.fixture
def failing_app(app_config):
    from helpers.world import reset_schema

    application = create_app({**app_config, "PROPAGATE_EXCEPTIONS": False})
    reset_schema(application)

    @application.get("/api/fails")
    def _fails():
        raise RuntimeError("a bug that names nobody")

    yield application
    db.database(application).engine.dispose()


def test_a_fault_on_our_side_answers_500_in_words_without_the_traceback(failing_app):
    response = failing_app.test_client().get("/api/fails")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "server_error"
    assert "RuntimeError" not in response.get_data(as_text=True)

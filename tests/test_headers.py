"""Security headers on every response: a Content-Security-Policy without inline script, no framing,
nosniff, a Referrer-Policy, the camera for the kiosk page only, no-store on everything that is not a
static file, HSTS over HTTPS, and a Server header that names no version (iop serve and gunicorn)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from helpers.web import AuthActions, csrf_from
from helpers.world import reset_schema

ROOT = Path(__file__).resolve().parent.parent


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


@pytest.fixture
def pages(app, client, auth, live_group, kiosk_scene):
    """A response of each kind: staff pages, a JSON answer, the kiosk page and API, the display, errors."""
    group = live_group(code="HD-AM", members=(("C8", "Ona", "Lind"),))
    staff = app.test_client()
    AuthActions(staff, app).login("root", role="admin")
    control = staff.get(f"/facilitator/sessions/{group.session_id}")
    display = re.search(r'href="(/facilitator/display/[^"]+)"', control.get_data(as_text=True)).group(1)
    return {
        "sign-in page": app.test_client().get("/login"),
        "week board": staff.get("/coordinator/"),
        "client list": staff.get("/coordinator/clients"),
        "staff page": staff.get("/coordinator/staff"),
        "control page": control,
        "keepalive": staff.post("/api/keepalive", headers={"X-CSRFToken": csrf_from(control.get_data(as_text=True))}),
        "health": client.get("/healthz"),
        "kiosk page": client.get("/kiosk/"),
        "kiosk scan": kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria)),
        "kiosk status": client.get("/kiosk/api/status"),
        "room display": app.test_client().get(display),
        "not found": staff.get("/coordinator/nothing-here"),
        "forbidden": app.test_client().post("/kiosk/api/scan", json={}),
    }


def test_every_response_carries_the_headers(pages):
    for name, response in pages.items():
        policy = directives(response)
        assert policy["script-src"] == "'self'" and "unsafe" not in response.headers["Content-Security-Policy"], name
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'", name
        assert policy["style-src"] == "'self'" and policy["worker-src"] == "'self'", name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer"), name
        assert response.headers["Cache-Control"] == "no-store", name
        assert "Strict-Transport-Security" not in response.headers, name  # plain HTTP on a laptop


def test_only_the_kiosk_page_may_use_the_camera(pages):
    for name, response in pages.items():
        features = response.headers["Permissions-Policy"]
        assert ("camera=(self)" if name == "kiosk page" else "camera=()") in features, name
        assert "microphone=()" in features and "geolocation=()" in features, name


def test_the_kiosk_and_the_display_send_no_referrer(pages):
    assert {name for name, r in pages.items() if r.headers["Referrer-Policy"] == "no-referrer"} == {
        "kiosk page", "kiosk scan", "kiosk status", "room display", "forbidden"}


def test_static_files_may_be_cached(app, client):
    for path in ("/static/js/idle.js", "/kiosk/static/kiosk.js", "/facilitator/static/control.js"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers.get("Cache-Control") != "no-store", path
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_inline_script_or_style():
    """What the CSP refuses is not written in the first place: no <script> with code, no on* handler,
    no style attribute or <style> element in any template of any face."""
    found = []
    for template in ROOT.glob("*/templates/**/*.html"):
        text = template.read_text()
        for match in re.finditer(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", text):
            found.append((template.name, match.group(0)))
        found += [(template.name, m.group(0)) for m in re.finditer(r"\s(on[a-z]+|style)=\"", text)]
        found += [(template.name, "<style>") for _ in re.finditer(r"<style[\s>]", text)]
    assert not found


def test_hsts_when_people_come_over_https(app_config):
    from iop import create_app
    from iop.store import db

    secure = create_app({**app_config, "PREFERRED_URL_SCHEME": "https"})
    reset_schema(secure)
    try:
        response = secure.test_client().get("/login", base_url="https://localhost")
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "wss://localhost" in response.headers["Content-Security-Policy"]
    finally:
        db.database(secure).engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["serve", "gunicorn"])
def test_the_server_header_names_no_version(tmp_path, kind):
    from helpers import servers

    env = servers.environment(tmp_path / "instance", f"sqlite:///{tmp_path / 'instance' / 'iop.sqlite3'}")
    servers.iop(env, "init")
    server = servers.WebProcess(kind, env, tmp_path, kind=kind).start()
    try:
        server.wait_healthy(60)
        for path in ("/login", "/healthz", "/static/js/idle.js", "/nothing-here"):
            value = requests.get(server.url + path, timeout=10).headers.get("Server", "")
            assert not re.search(r"\d", value) and "Werkzeug" not in value and "Python" not in value, (path, value)
    finally:
        server.stop()


def test_the_sample_nginx_site_hides_its_version():
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"^\s*server_tokens off;", site, re.M)

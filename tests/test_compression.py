"""Pages without a secret go out compressed when the browser asks; pages that carry a CSRF token
or a signed-in staff member's names never do (BREACH: iop/web/compression.py); exports still stream
untouched."""
from __future__ import annotations

import gzip
from datetime import date, time

import pytest
from playwright.sync_api import expect

from helpers.world import local
from iop.clinic import kiosks


def test_a_page_asked_for_with_gzip_comes_gzipped_and_reads_the_same(kiosk_scene, client):
    plain = client.get("/kiosk/", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/kiosk/", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]  # a cache keeps the two apart
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 2
    assert gzip.decompress(zipped.data) == plain.data


def test_the_kiosk_page_carries_no_csrf_token_and_sets_no_session(kiosk_scene, client):
    page = client.get("/kiosk/", headers={"Accept-Encoding": "gzip"})
    text = gzip.decompress(page.data).decode()
    assert "csrf" not in text.lower() and 'id="scan-input"' in text
    assert "session=" not in page.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("path, role", [
    ("/login", None),  # nobody signed in, but the form's CSRF token is on it
    ("/coordinator/clients", "coordinator"),
    ("/coordinator/", "coordinator"),
    ("/facilitator/", "facilitator"),
    ("/coordinator/audit?user=%3Dreflected", "admin"),  # what a visitor types comes back on the page
    ("/password", "facilitator"),
])
def test_pages_with_a_csrf_token_or_names_are_never_compressed(app, world, client, auth, path, role):
    for number in range(30):  # a page long enough to be worth compressing
        world.client(f"C{number:03}", "Maria", f"Gonzalez{number}")
    if role:
        auth.login(username=role, role=role)
    for encoding in ("gzip", "br", "gzip, deflate, br", "*"):
        response = client.get(path, headers={"Accept-Encoding": encoding})
        assert response.status_code == 200, path
        assert "Content-Encoding" not in response.headers, (path, encoding)
        text = response.get_data(as_text=True)
        assert len(text) > 1000 and 'name="csrf-token"' in text  # the secret is there, in the clear


def test_a_signed_in_json_answer_is_never_compressed(app, client, auth):
    from flask import jsonify

    @app.route("/test-json-names")
    def names():  # a staff JSON answer long enough to be compressed
        return jsonify(names=[f"Maria Gonzalez {n}" for n in range(200)])

    anonymous = client.get("/test-json-names", headers={"Accept-Encoding": "gzip"})
    assert anonymous.headers["Content-Encoding"] == "gzip"  # the rule, not the size, decides below
    auth.login(username="dana", role="facilitator")
    signed_in = client.get("/test-json-names", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in signed_in.headers and b"Maria Gonzalez 199" in signed_in.data


def test_static_files_are_compressed_and_still_revalidate(client):
    first = client.get("/static/css/iop.css", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert b"--focus" in gzip.decompress(first.get_data())
    again = client.get("/static/css/iop.css", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304  # the browser's cached copy is still good: nothing is sent again


def test_exports_still_stream_uncompressed(client, auth, world, freeze):
    freeze(local(date(2026, 4, 1), 12))
    group = world.group(code="RP-AM", start=time(9), end=time(12))
    maria = world.client("C1", "Maria", "Gonzalez", groups=[group], plan_start=date(2026, 2, 2))
    world.attendance(maria, world.session(group, date(2026, 3, 2)), local(date(2026, 3, 2), 9),
                     local(date(2026, 3, 2), 12))
    auth.login(username="coordinator", role="coordinator")
    token = auth.csrf("/coordinator/exports")
    response = client.post("/coordinator/exports/attendance", headers={"Accept-Encoding": "gzip"},
                           data={"first": "2026-03-01", "last": "2026-03-08", "format": "csv", "csrf_token": token})
    assert response.status_code == 200 and response.is_streamed
    assert "Content-Encoding" not in response.headers
    assert response.get_data(as_text=True).startswith("date,client_id,")


@pytest.mark.browser
def test_the_kiosk_page_reaches_the_browser_compressed(kiosk_scene, live_server, page):
    page.context.add_cookies([{"name": kiosks.COOKIE_NAME, "value": kiosk_scene.cookie, "domain": "127.0.0.1",
                               "path": "/kiosk", "httpOnly": True, "sameSite": "Strict"}])
    received = {}

    def keep(response):
        if response.status == 200:
            received[response.url.replace(live_server.url, "")] = (
                response.headers.get("content-encoding"), response.request.sizes()["responseBodySize"],
                len(response.body()))

    page.on("response", keep)
    page.goto(live_server.url + "/kiosk/")
    expect(page.locator("#state-ready")).to_be_visible()
    page.wait_for_load_state("networkidle")
    for path in ("/kiosk/", "/static/css/iop.css", "/kiosk/static/kiosk.css", "/kiosk/static/kiosk.js"):
        encoding, on_the_wire, read = received[path]
        assert encoding in ("gzip", "br"), path  # what Chromium asked for (br on 127.0.0.1)
        assert on_the_wire < read / 2, (path, on_the_wire, read)

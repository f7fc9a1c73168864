"""The kiosk's pages over HTTP: enrollment, the page itself, help, words in two languages, TLS."""
from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from helpers.web import csrf_from
from iop import clock
from iop.clinic import kiosks
from iop.store import db
from iop.store.models import AuditEvent, KioskDevice

KIOSK = Path(__file__).resolve().parent.parent / "kiosk"


def issue_link(app, name="Front desk") -> str:
    with app.app_context():
        with db.transaction():
            device = kiosks.issue_enrollment(name)
            return kiosks.enrollment_path(device)


def enroll(http, path):
    page = http.get(path)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return http.post(path, data={"csrf_token": token})


# ---- enrollment --------------------------------------------------------------------------------

def test_a_browser_that_is_not_a_kiosk_sees_how_to_enroll_and_no_scan_field(client):
    page = client.get("/kiosk/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "not set up as a kiosk" in html and "iop kiosk enroll" in html
    assert "<input" not in html and "scan-input" not in html and "kiosk.js" not in html


def test_the_link_asks_first_and_a_get_never_spends_it(app, client):
    path = issue_link(app)
    for _ in range(3):  # a link previewer, a prefetch, the person
        page = client.get(path)
        assert page.status_code == 200
        assert "Set up this tablet as kiosk “Front desk”" in page.get_data(as_text=True)
        # Its own confirmation form sends the referrer back here (CSRF's check over HTTPS needs it);
        # no other site ever learns the link.
        assert page.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/kiosk/").get_data(as_text=True).count("scan-input") == 0


def test_enrolling_sets_a_long_lived_strict_cookie_and_the_link_works_once(app, client):
    path = issue_link(app)
    done = enroll(client, path)
    assert done.status_code == 302 and done.headers["Location"].endswith("/kiosk/")
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith(kiosks.COOKIE_NAME + "=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kiosk" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert max_age >= 300 * 24 * 3600
    assert "Secure" not in cookie  # plain http in tests; over https it is Secure (below)
    page = client.get("/kiosk/").get_data(as_text=True)
    assert 'id="scan-input"' in page
    # the link is spent: another browser gets a clear page, not a kiosk
    other = app.test_client()
    again = other.get(path)
    assert again.status_code == 404 and "already used" in again.get_data(as_text=True)
    token = csrf_from(other.get("/login").get_data(as_text=True))
    assert other.post(path, data={"csrf_token": token}).status_code == 404
    assert "scan-input" not in other.get("/kiosk/").get_data(as_text=True)


def test_over_https_the_cookie_is_secure(app):
    http = app.test_client()
    path = issue_link(app)
    page = http.get(path, base_url="https://localhost")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = http.post(path, data={"csrf_token": token}, base_url="https://localhost",
                     headers={"Referer": "https://localhost" + path})
    assert done.status_code == 302, done.get_data(as_text=True)
    assert "Secure" in done.headers["Set-Cookie"]


def test_an_expired_link_is_refused(app, client, freeze):
    freeze(clock.now())
    path = issue_link(app)
    clock.advance(timedelta(hours=25))
    assert client.get(path).status_code == 404
    assert client.get("/kiosk/enroll/" + "x" * 500).status_code == 404


def test_enrollment_post_needs_the_form_token(app, client):
    path = issue_link(app)
    client.get(path)
    assert client.post(path, data={}).status_code == 400
    assert "scan-input" not in client.get("/kiosk/").get_data(as_text=True)


def test_cli_enroll_prints_a_link_that_works(app, runner, client):
    result = runner.invoke(args=["kiosk", "enroll", "Side door", "--base-url", "http://tablet.example:8000"])
    link = result.output.strip()
    assert link.startswith("http://tablet.example:8000/kiosk/enroll/")
    done = enroll(client, link.removeprefix("http://tablet.example:8000"))
    assert done.status_code == 302
    bad = runner.invoke(args=["kiosk", "enroll", " "])
    assert bad.exit_code == 1 and "name" in bad.output


def test_a_revoked_kiosk_sees_the_enroll_page(kiosk_scene, app):
    with app.app_context():
        with db.transaction() as s:
            kiosks.revoke(s.get(KioskDevice, kiosk_scene.device.id))
    html = kiosk_scene.http.get("/kiosk/").get_data(as_text=True)
    assert "not set up as a kiosk" in html and "scan-input" not in html


# ---- the kiosk page ---------------------------------------------------------------------------

def test_the_kiosk_page_has_a_labelled_scanner_field_and_no_names(kiosk_scene, app, world):
    world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group])
    page = kiosk_scene.http.get("/kiosk/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    label = re.search(r'<label for="scan-input"[^>]*>([^<]+)</label>', html).group(1)
    assert "card" in label.lower()
    field = re.search(r'<input id="scan-input"[^>]*>', html).group(0)
    assert 'inputmode="none"' in field and 'autocomplete="off"' in field and "disabled" not in field
    assert "Welcome. Please scan your card." in html
    assert "Forgot your card?" in html and "Español" in html
    for name in ("Maria", "Gonzalez", "James", "Whitfield"):
        assert name not in html
    lowered = html.lower()
    for word in ("treatment", "relapse", "recovery", "substance", "roster"):
        assert word not in lowered, word


def test_the_welcome_line_is_the_programs(kiosk_scene, app):
    app.config["KIOSK_WELCOME"] = "Hello! Scan your card to check in."
    assert "Hello! Scan your card to check in." in kiosk_scene.http.get("/kiosk/").get_data(as_text=True)


def test_the_kiosk_page_renders_in_the_chosen_language(kiosk_scene):
    kiosk_scene.http.set_cookie("iop_kiosk_lang", "es", path="/kiosk")
    html = kiosk_scene.http.get("/kiosk/").get_data(as_text=True)
    assert "¿Olvidó su tarjeta?" in html and 'lang="es"' in html


def test_page_weight_without_the_camera_decoder(kiosk_scene, app):
    """What a kiosk loads to be ready, gzipped, stays under 150 KB; the decoder loads only for the camera."""
    html = kiosk_scene.http.get("/kiosk/").get_data()
    assets = re.findall(rb'\s(?:href|src)="(/[^"]+\.(?:css|js))"', html)
    assert any(a.endswith(b"kiosk.js") for a in assets)
    assert not any(b"jsQR" in a or b"camera.js" in a for a in assets)
    total = len(gzip.compress(html))
    for asset in assets:
        response = kiosk_scene.http.get(asset.decode())
        assert response.status_code == 200, asset
        total += len(gzip.compress(response.get_data()))
    assert total <= 150 * 1024, total


def test_the_camera_decoder_is_vendored_with_its_licence():
    vendor = KIOSK / "static" / "vendor"
    assert (vendor / "jsQR.js").stat().st_size > 10_000
    assert "Apache License" in (vendor / "jsQR.LICENSE").read_text()
    worker = (KIOSK / "static" / "qr-worker.js").read_text()
    assert 'importScripts("vendor/jsQR.js")' in worker
    for source in ("kiosk.js", "camera.js", "qr-worker.js", "kiosk.css"):
        assert not re.search(r"https?://", (KIOSK / "static" / source).read_text()), source  # nothing from elsewhere
    for template in (KIOSK / "templates" / "kiosk").glob("*.html"):
        assert "cdn" not in template.read_text().lower()


def test_catalogues_have_the_same_keys_and_placeholders():
    english = json.loads((KIOSK / "i18n" / "en.json").read_text(encoding="utf-8"))
    spanish = json.loads((KIOSK / "i18n" / "es.json").read_text(encoding="utf-8"))
    assert set(english) == set(spanish)
    for key in english:
        assert spanish[key].strip(), key
        assert sorted(re.findall(r"\{\w+\}", english[key])) == sorted(re.findall(r"\{\w+\}", spanish[key])), key
    used = set(re.findall(r'data-i18n(?:-aria)?="([\w.]+)"', (KIOSK / "templates" / "kiosk" / "kiosk.html").read_text()))
    used |= set(re.findall(r'\bt\("([\w.]+)"', (KIOSK / "static" / "kiosk.js").read_text()))
    prefixes = {key for key in used if key.endswith(".")}  # t("cheer." + n), t("error." + code)
    assert (used - prefixes) <= set(english), (used - prefixes) - set(english)
    assert all(any(key.startswith(prefix) for key in english) for prefix in prefixes)
    from iop.clinic import scan

    for code in scan.STATUS:
        if scan.STATUS[code] >= 400:
            assert f"error.{code}" in english, code


def test_static_assets_are_served(client):
    for asset in ("kiosk.js", "kiosk.css", "camera.js", "qr-worker.js", "vendor/jsQR.js"):
        assert client.get(f"/kiosk/static/{asset}").status_code == 200, asset


# ---- help and heartbeat -------------------------------------------------------------------------

def test_forgot_your_card_alerts_staff_once_a_minute(kiosk_scene, app, monkeypatch):
    from iop.live import roster

    calls = []
    monkeypatch.setattr(roster, "publish_help_request", lambda name: calls.append(name) or 1)
    answer = kiosk_scene.http.post("/kiosk/api/help", json={})
    assert answer.status_code == 200 and answer.get_json()["result"] == "help_requested"
    assert "on their way" in answer.get_json()["message"]
    kiosk_scene.http.post("/kiosk/api/help", json={})
    assert calls == ["Front desk"]
    clock.advance(timedelta(seconds=61))
    kiosk_scene.http.post("/kiosk/api/help", json={})
    assert calls == ["Front desk", "Front desk"]


def test_help_needs_an_enrolled_kiosk_and_json(app, client, kiosk_scene, monkeypatch):
    from iop.live import roster

    calls = []
    monkeypatch.setattr(roster, "publish_help_request", lambda name: calls.append(name))
    stranger = app.test_client()
    assert stranger.post("/kiosk/api/help", json={}).get_json()["error"]["code"] == "not_enrolled"
    assert kiosk_scene.http.post("/kiosk/api/help", data={"x": "1"}).status_code == 415
    assert calls == []


def test_status_answers_the_server_time_and_notes_activity(kiosk_scene, app):
    clock.advance(timedelta(minutes=5))
    answer = kiosk_scene.http.get("/kiosk/api/status")
    assert answer.get_json() == {"enrolled": True, "now": clock.now().isoformat()}
    with app.app_context():
        assert db.session().get(KioskDevice, kiosk_scene.device.id).last_seen_at == clock.now()
    assert app.test_client().get("/kiosk/api/status").status_code == 403


def test_the_kiosk_api_never_answers_500_to_junk(kiosk_scene):
    junk = [("/kiosk/api/scan", b"\xff\xfe\x00"), ("/kiosk/api/scan", b'{"code": "\\ud800", "scan_id": "abcdefgh"}'),
            ("/kiosk/api/help", b"{]"), ("/kiosk/api/scan", b"1" * 5000)]
    for path, body in junk:
        response = kiosk_scene.http.post(path, data=body, content_type="application/json")
        assert 400 <= response.status_code < 500, (path, body, response.status_code)
        assert response.get_json()["error"]["code"]
    assert kiosk_scene.http.get("/kiosk/api/scan").status_code == 405


# ---- HTTPS for cameras -----------------------------------------------------------------------------

def test_serve_https_makes_a_certificate_tablets_can_trust(app, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from iop.ops import serving

    crt, key = serving.ssl_context(app, None, None)
    chain = Path(crt).read_bytes()
    server = x509.load_pem_x509_certificate(chain)
    authority = x509.load_pem_x509_certificate(serving.ca_certificate_path(app).read_bytes())
    assert server.issuer == authority.subject
    authority.public_key().verify(server.signature, server.tbs_certificate_bytes,
                                  ec.ECDSA(server.signature_hash_algorithm))  # raises if not signed by it
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = sans.get_values_for_type(x509.DNSName)
    addresses = [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
    assert "localhost" in names and "127.0.0.1" in addresses
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert oct(Path(key).stat().st_mode & 0o777) == "0o600"
    # a second start keeps the same authority (tablets trust it once) and certificate
    assert serving.ssl_context(app, None, None) == (crt, key)
    assert Path(crt).read_bytes() == chain


def test_a_new_lan_address_renews_the_server_certificate_under_the_same_authority(tmp_path):
    from cryptography import x509

    from iop.ops import serving

    folder = tmp_path / "tls"
    crt, _key = serving.ensure_local_certificate(folder, ["localhost"], ["127.0.0.1"])
    first_ca = (folder / "ca.crt").read_bytes()
    crt, _key = serving.ensure_local_certificate(folder, ["localhost"], ["127.0.0.1", "10.1.2.3"])
    server = x509.load_pem_x509_certificate(Path(crt).read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.1.2.3" in [str(a) for a in sans.get_values_for_type(x509.IPAddress)]
    assert (folder / "ca.crt").read_bytes() == first_ca


def test_the_certificate_can_be_downloaded_for_a_tablet(app, client):
    assert client.get("/kiosk/tls-ca.crt").status_code == 404  # nothing made yet
    from iop.ops import serving

    serving.ssl_context(app, None, None)
    response = client.get("/kiosk/tls-ca.crt")
    assert response.status_code == 200 and b"BEGIN CERTIFICATE" in response.data
    assert b"PRIVATE" not in response.data


def test_an_https_server_answers_with_that_certificate(app, tmp_path):
    """A real TLS handshake against the generated chain, verified by the authority alone."""
    import ssl
    import threading
    import urllib.request

    from werkzeug.serving import make_server

    from iop.ops import serving

    crt, key = serving.ensure_local_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(crt, key))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        trust = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
        with urllib.request.urlopen(f"https://localhost:{server.server_port}/kiosk/", context=trust, timeout=10) as r:
            assert r.status == 200
    finally:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize("cert,key", [("x.crt", None), ("/nope.crt", "/nope.key")])
def test_serve_https_with_bad_certificate_options_is_a_user_error(app, cert, key):
    from iop.ops import cli, serving

    with pytest.raises(cli.UserError):
        serving.ssl_context(app, cert, key)


def test_enrollment_and_revocation_are_audited(kiosk_scene, app):
    with app.app_context():
        with db.transaction() as s:
            kiosks.revoke(s.get(KioskDevice, kiosk_scene.device.id))
        actions = [e.action for e in db.session().scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-3:] == ["kiosk.enrollment_link", "kiosk.enrolled", "kiosk.revoke"]


def test_behind_a_tls_proxy_the_cookie_is_secure_too(app, client):
    """IOP_HTTPS (a proxy ends TLS): the kiosk cookie is Secure like the staff one."""
    app.config["SESSION_COOKIE_SECURE"] = True
    path = issue_link(app)
    assert "Secure" in enroll(client, path).headers["Set-Cookie"]

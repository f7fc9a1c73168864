"""docs/security.md, checked so that a new route or form cannot forget it:
- every route outside a short public list carries the one role check and refuses anonymous users and
  lower roles (the test walks app.url_map);
- every POST needs the CSRF token (only the kiosk's JSON API is exempt, by design), and every form on
  every staff page carries it (the test crawls the pages);
- the staff session cookie is HttpOnly, SameSite=Lax, and Secure over HTTPS;
- no client name and no card code reaches a log line through a whole day's scenario.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from iop.store.models import ROLES

# Reachable without a staff login, each for a reason: static files; the front door and sign-in;
# health, ping and the API description (monitors, integrations); the kiosk (its own enrolled-device
# cookie, checked in its views); the room display (a signed link bound to one session).
PUBLIC = {
    "static", "main.index", "main.healthz", "main.ping", "main.openapi", "auth.login", "auth.logout",
    "kiosk.page", "kiosk.enroll_confirm", "kiosk.enroll_complete", "kiosk.tls_certificate",
    "kiosk.api_scan", "kiosk.api_help", "kiosk.api_status", "facilitator.display",
}
# JSON-only endpoints of an enrolled kiosk (SameSite=Strict cookie, application/json only).
CSRF_EXEMPT = {"kiosk.routes.api_scan", "kiosk.routes.api_help"}


def is_public(endpoint: str) -> bool:
    return endpoint in PUBLIC or endpoint.endswith(".static")


def staff_rules(app):
    for rule in app.url_map.iter_rules():
        if not is_public(rule.endpoint):
            yield rule


def sample_url(app, rule) -> str:
    """The rule with harmless sample arguments (the role check runs before any lookup)."""
    values = {name: 1 if type(conv).__name__ == "IntegerConverter" else "x"
              for name, conv in rule._converters.items()}
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def refused_anonymous(response) -> bool:
    if response.status_code in (302, 303):
        return urlsplit(response.headers["Location"]).path == "/login"
    return response.status_code in (401, 403)


# ---- roles -----------------------------------------------------------------------------------

def test_every_staff_route_carries_the_one_role_check(app):
    missing = [rule.endpoint for rule in staff_rules(app)
               if getattr(app.view_functions[rule.endpoint], "minimum_role", None) not in ROLES]
    assert not missing, f"routes without @staff_required (or add them to PUBLIC with a reason): {missing}"
    assert len(list(staff_rules(app))) >= 10


def test_anonymous_users_are_refused_everywhere_but_the_public_list(app, client):
    app.config["WTF_CSRF_ENABLED"] = False  # reach the role check itself, not the CSRF check before it
    let_in = []
    for rule in staff_rules(app):
        url = sample_url(app, rule)
        for method in methods(rule):
            response = client.open(url, method=method)
            if not refused_anonymous(response):
                let_in.append((method, url, response.status_code))
    assert not let_in


def test_anonymous_json_calls_get_401_not_a_page(app, client):
    app.config["WTF_CSRF_ENABLED"] = False
    response = client.post("/api/keepalive")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "signed_out"


@pytest.mark.parametrize("role, refused_from", [("facilitator", ("coordinator", "admin")), ("coordinator", ("admin",))])
def test_a_lower_role_is_refused_on_every_higher_route(app, client, auth, role, refused_from):
    app.config["WTF_CSRF_ENABLED"] = False
    auth.login("someone", role=role)
    let_in = []
    checked = 0
    for rule in staff_rules(app):
        if app.view_functions[rule.endpoint].minimum_role not in refused_from:
            continue
        url = sample_url(app, rule)
        for method in methods(rule):
            checked += 1
            response = client.open(url, method=method)
            if response.status_code != 403:
                let_in.append((method, url, response.status_code))
    assert checked and not let_in


def test_the_right_role_gets_in(app, client, auth):
    auth.login("dana", role="facilitator")
    assert client.get("/facilitator/").status_code == 200
    auth.logout()
    auth.login("casey", role="coordinator")
    assert client.get("/coordinator/").status_code == 200
    assert client.get("/coordinator/audit").status_code == 403


def test_socket_connections_need_a_staff_login_or_a_display_link(app, client):
    from iop.extensions import socketio

    anonymous = socketio.test_client(app, flask_test_client=client)
    assert not anonymous.is_connected()
    forged = socketio.test_client(app, flask_test_client=client, auth={"display_token": "forged.token"})
    assert not forged.is_connected()


# ---- CSRF ------------------------------------------------------------------------------------

def test_only_the_kiosk_json_api_is_exempt_from_csrf(app):
    csrf = app.extensions["csrf"]
    assert set(csrf._exempt_views) == CSRF_EXEMPT
    assert not csrf._exempt_blueprints


def test_every_post_without_the_token_is_refused(app, client, auth):
    auth.login("root", role="admin")
    accepted = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        view = app.view_functions[rule.endpoint]
        if f"{view.__module__}.{view.__name__}" in CSRF_EXEMPT:
            continue
        response = client.post(sample_url(app, rule), data={"anything": "1"})
        if response.status_code != 400 or b"expired" not in response.data:
            accepted.append((rule.rule, response.status_code))
    assert not accepted


class Forms(HTMLParser):
    """Every <form> on a page: its method, action, and whether it has a csrf_token field; every link."""

    def __init__(self):
        super().__init__()
        self.forms, self.links, self._open = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open = {"method": (attrs.get("method") or "get").lower(), "action": attrs.get("action"),
                          "csrf": False}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attrs.get("name") == "csrf_token" and attrs.get("value"):
            self._open["csrf"] = True
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def crawl(client, starts, limit=150):
    """(url, forms) of every same-site page reachable by links from `starts` (GET only)."""
    seen, queue, pages = set(), list(starts), []
    while queue and len(seen) < limit:
        url = queue.pop(0)
        path = urlsplit(url).path
        if path in seen or not path.startswith("/") or path.endswith((".csv", ".crt", ".pdf", ".xlsx", ".js", ".css")):
            continue
        seen.add(path)
        response = client.get(url)
        if response.status_code != 200 or not response.mimetype.startswith("text/html"):
            continue
        parser = Forms()
        parser.feed(response.get_data(as_text=True))
        pages.append((path, parser.forms))
        for link in parser.links:
            target = urljoin(url, link)
            if urlsplit(target).netloc in ("", "localhost") and "/display/" not in target:
                queue.append(urlsplit(target).path)
    return pages


def test_every_form_on_every_staff_page_carries_the_csrf_token(app, client, auth, live_group, world):
    scene = live_group(facilitator="dana")
    world.client("C9", "Ona", "Lindqvist", groups=["RP-AM"], plan_start=scene.session.date - timedelta(days=7))
    world.kiosk("Lobby")
    missing, forms_seen = [], 0
    for username, role, starts in (("root", "admin", ["/coordinator/", "/facilitator/"]),
                                   ("dana", "facilitator", ["/facilitator/", f"/facilitator/sessions/{scene.session_id}"])):
        auth.login(username, role=role)
        pages = crawl(client, starts)
        assert len(pages) >= (8 if role == "admin" else 2), [p for p, _ in pages]
        for path, forms in pages:
            for form in forms:
                if form["method"] == "post":
                    forms_seen += 1
                    if not form["csrf"]:
                        missing.append((path, form["action"]))
        auth.logout()
    assert forms_seen >= 5
    assert not missing, f"POST forms without csrf_token: {missing}"


# ---- the session cookie --------------------------------------------------------------------

def session_cookie(response) -> str:
    cookies = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert cookies, "no session cookie was set"
    return cookies[-1]


def test_the_staff_session_cookie_is_httponly_and_samesite_lax(app, client, auth):
    cookie = session_cookie(auth.login())
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on a laptop: a Secure cookie would never come back


def test_over_https_the_cookie_is_secure_too(app_config, tmp_path):
    from helpers.web import AuthActions
    from iop import config, create_app

    assert config.from_environment({"IOP_HTTPS": "on", "IOP_INSTANCE_PATH": str(tmp_path)})[
        "PREFERRED_URL_SCHEME"] == "https"
    secure_app = create_app({**app_config, "PREFERRED_URL_SCHEME": "https"})
    from helpers.world import reset_schema

    reset_schema(secure_app)
    http = secure_app.test_client()
    http.environ_base["wsgi.url_scheme"] = "https"  # the browser reached us over TLS (directly or via the proxy)
    http.environ_base["HTTP_REFERER"] = "https://localhost/login"  # over HTTPS, CSRF also checks the referrer
    cookie = session_cookie(AuthActions(http, secure_app).login())
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ---- nothing personal in the logs -----------------------------------------------------------

class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture
def all_logs():
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    touched = []
    for name in ("werkzeug", "iop", "kiosk", "facilitator", "coordinator", "apscheduler"):
        logger = logging.getLogger(name)
        touched.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    for logger, level in touched:
        logger.setLevel(level)


def test_no_name_or_card_code_in_any_log_line_through_a_whole_day(app, client, runner, live_server, all_logs, tmp_path):
    from sqlalchemy import select

    from iop.clinic import cards
    from iop.extensions import socketio
    from iop.store import db
    from iop.store.models import Client, GroupSession

    demo = runner.invoke(args=["demo"])
    assert demo.exit_code == 0, demo.output
    with app.app_context():
        people = db.session().scalars(select(Client)).all()
        secrets_ = {p.client_id: (p.first_name, p.last_name, cards.card_code(p.id, p.card_version)) for p in people}
    codes = runner.invoke(args=["card-code", *secrets_]).stdout.split()
    base = live_server.url

    # A kiosk is enrolled and everyone scans (twice for some), with bad cards among them.
    link = runner.invoke(args=["kiosk", "enroll", "Lobby"]).stdout.strip().splitlines()[-1]
    kiosk = requests.Session()
    path = link[link.index("/kiosk/enroll/"):]
    token = re.search(r'name="csrf_token" value="([^"]+)"', kiosk.get(base + path).text).group(1)
    assert kiosk.post(base + path, data={"csrf_token": token}).status_code == 200
    session_ids = set()
    for code in codes + codes[:3] + ["garbage-card", codes[0][:-3] + "xyz"]:
        answer = kiosk.post(base + "/kiosk/api/scan", json={"code": code, "scan_id": f"scan-{len(code)}-{code[-12:]}"})
        assert answer.status_code < 500
        if answer.status_code == 200:
            session_ids.add(answer.json()["session"]["id"])
    kiosk.post(base + "/kiosk/api/help", json={})
    runner.invoke(args=["card-code", "--reissue", list(secrets_)[0]])
    kiosk.post(base + "/kiosk/api/scan", json={"code": codes[0], "scan_id": "scan-revoked-card-1"})
    assert session_ids

    # The coordinator runs the demo group: steps, a hand check-in, the close, the summary, the note.
    staff = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', staff.get(base + "/login").text).group(1)
    staff.post(base + "/login", data={"username": "coordinator", "password": "demo-plans-and-hours", "csrf_token": token})
    assert staff.get(base + "/coordinator/").status_code == 200
    http = app.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/login").get_data(as_text=True)).group(1)
    http.post("/login", data={"username": "coordinator", "password": "demo-plans-and-hours", "csrf_token": token})
    screen = socketio.test_client(app, flask_test_client=http)
    assert screen.is_connected()
    for session_id in session_ids:
        screen.emit("join", {"session_id": session_id})
        for index in (0, 1, 2):
            screen.emit("step", {"session_id": session_id, "index": index})
        screen.emit("step", {"session_id": session_id, "index": 999})  # refused, logged or not: no names
        csrf = re.search(r'name="csrf-token" content="([^"]+)"',
                         staff.get(f"{base}/facilitator/sessions/{session_id}").text).group(1)
        staff.post(f"{base}/facilitator/sessions/{session_id}/close", data={"csrf_token": csrf})
        staff.get(f"{base}/facilitator/sessions/{session_id}/summary")
    screen.disconnect()
    with app.app_context():
        day = db.session().get(GroupSession, next(iter(session_ids))).date

    # Exports, on the web and on the command line; an import with a bad row.
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', staff.get(base + "/coordinator/exports").text).group(1)
    first, last = (day - timedelta(days=28)).isoformat(), day.isoformat()
    for kind in ("hours", "attendance", "days"):
        for fmt in ("csv", "xlsx"):
            response = staff.post(f"{base}/coordinator/exports/{kind}",
                                  data={"csrf_token": csrf, "first": first, "last": last, "format": fmt})
            assert response.status_code == 200
        runner.invoke(args=["export", kind, "--from", first, "--to", last, "-o", str(tmp_path / f"{kind}.csv")])
    fhir_zip = staff.post(f"{base}/coordinator/exports/fhir", data={"csrf_token": csrf, "first": first, "last": last})
    assert fhir_zip.status_code == 200 and fhir_zip.content.startswith(b"PK")
    runner.invoke(args=["export", "fhir", "--from", first, "--to", last, "-o", str(tmp_path / "fhir")])
    bad = tmp_path / "clients.csv"
    name = next(iter(secrets_.values()))
    bad.write_text("client_id,first_name,last_name,level_of_care,plan_start,plan_end,weekly_hours,days_per_week,groups\n"
                   f"C1001,{name[0]},{name[1]},2.1,not-a-date,,9,3,RP-AM\n")
    runner.invoke(args=["import", "clients", str(bad)])
    staff.get(base + "/coordinator/clients")
    for person in people[:3]:
        staff.get(f"{base}/coordinator/clients/{person.public_id}")

    lines = all_logs.lines
    assert len(lines) > 20, "the scenario produced log lines to search"
    leaks = []
    for client_id, (first_name, last_name, code) in secrets_.items():
        for word in (first_name, last_name):
            pattern = re.compile(rf"\b{re.escape(word)}\b")
            leaks += [(word, line[:200]) for line in lines if pattern.search(line)]
        leaks += [("card code", line[:200]) for line in lines if code in line or code[:20] in line]
    for code in codes:
        leaks += [("card code", line[:200]) for line in lines if code[:20] in line]
    assert not leaks, leaks[:5]

"""Staff sign-in through the real forms, a server on a free port, and Debian's Chromium."""
from __future__ import annotations

import re
import shutil
import threading

from iop.store import db

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_META.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class AuthActions:
    def __init__(self, client, app):
        self._client = client
        self._app = app

    def make_user(self, username="dana", role="facilitator", password="correct horse 1", name=""):
        with self._app.app_context():
            from iop.clinic import staff

            with db.transaction():
                user = staff.add_user(username, password, role, name or username.title(), "LCSW")
            return user.id

    def login(self, username="dana", password="correct horse 1", role="facilitator", create=True):
        if create:
            with self._app.app_context():
                from sqlalchemy import select

                from iop.store.models import StaffUser

                exists = db.session().scalar(select(StaffUser.id).where(StaffUser.username == username))
            if not exists:
                self.make_user(username, role, password)
        page = self._client.get("/login")
        token = csrf_from(page.get_data(as_text=True))
        return self._client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def csrf(self, path="/login") -> str:
        return csrf_from(self._client.get(path).get_data(as_text=True))

    def logout(self):
        token = self.csrf()
        return self._client.post("/logout", data={"csrf_token": token})


class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def browser_sign_in(page, base: str, username: str, password: str, lands: str = "/coordinator/") -> None:
    """Sign in through the real form and wait for the role's landing page."""
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + lands)


# Every page of every browser test reports Content-Security-Policy violations: the browser's own console
# line ("Refused to ... because it violates the following Content Security Policy directive") and the
# page's securitypolicyviolation event. A test that met one fails, naming the page and the directive.
CSP_VIOLATIONS: list[str] = []
CSP_EVENT = "[securitypolicyviolation]"
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("%s " + event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
                " on " + event.documentURI.split("?")[0] + " line " + event.lineNumber);
});
""" % CSP_EVENT


def watch_for_csp_violations(context):
    """Add the watch to a browser context (the `page` fixture's, and any a test makes itself)."""
    context.add_init_script(_CSP_LISTENER)

    def on_console(message):
        text = message.text
        if CSP_EVENT in text or "Content Security Policy" in text:
            CSP_VIOLATIONS.append(f"{message.page.url if message.page else '?'}: {text[:300]}")

    context.on("console", on_console)
    return context


class WatchedBrowser:
    """The browser, whose every new context watches for CSP violations."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **options):
        return watch_for_csp_violations(self._browser.new_context(**options))

    def __getattr__(self, name):
        return getattr(self._browser, name)

"""Fixtures in the flaskr style: a fresh app and database per test, a client, a runner, world builders.

Set IOP_TEST_DATABASE_URL to a PostgreSQL URL to run the same suite there: each run gets its own
schema, so parallel runs never see each other's rows.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from iop import clock, create_app
from iop.store import db
from iop.store.models import Base

NY = ZoneInfo("America/New_York")
TEST_SECRET = "test-secret-key-" + "x" * 32


# ---- database ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_url():
    """A schema of its own on the test PostgreSQL, or None when the suite runs on SQLite."""
    base = os.environ.get("IOP_TEST_DATABASE_URL", "").strip()
    if not base:
        yield None
        return
    schema = f"iop_test_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in base else "?"
    yield f"{base}{joiner}options={quote('-csearch_path=' + schema)}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_schema(app) -> None:
    engine = db.database(app).engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            Base.metadata.create_all(connection)
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        Base.metadata.create_all(engine)
    from alembic import command

    from iop.store import migrate

    command.stamp(migrate.alembic_config(app), "head")  # the schema is the newest; `iop init` adds nothing
    with app.app_context():
        migrate.seed_defaults()


@pytest.fixture
def app_config(tmp_path, postgres_url):
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": TEST_SECRET,
        "TIMEZONE": "America/New_York",
        "SCHEDULER": False,
        "TESTING": True,
    }
    if postgres_url:
        config["DATABASE_URL"] = postgres_url
    return config


@pytest.fixture
def app(app_config):
    application = create_app(app_config)
    _reset_schema(application)
    yield application
    db.database(application).engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An app context for tests that call domain code directly."""
    with app.app_context():
        yield app


# ---- time ----------------------------------------------------------------------------------

def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


@pytest.fixture
def freeze():
    """freeze(datetime) stops the program clock there for the rest of the test."""
    stack = []

    def _freeze(at: datetime):
        manager = clock.frozen(at)
        manager.__enter__()
        stack.append(manager)

    yield _freeze
    while stack:
        stack.pop().__exit__(None, None, None)


# ---- staff ---------------------------------------------------------------------------------

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


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app)


# ---- world building ------------------------------------------------------------------------

class World:
    """Builds the rows a test needs in a line each (CTFd's gen_* helpers, for this domain)."""

    def __init__(self, app):
        self.app = app

    def _add(self, obj):
        with self.app.app_context():
            with db.transaction() as s:
                s.add(obj)
            s.refresh(obj)
            s.expunge(obj)
            return obj

    def group(self, code="RP-AM", name="Morning Relapse Prevention", track="relapse-prevention", room="Room B",
              weekdays="Mon Wed Fri", start=time(9), end=time(12), facilitator_id=None):
        from iop.store.models import Group

        return self._add(Group(code=code, name=name, track=track, room=room, weekdays=weekdays, start=start,
                               end=end, facilitator_id=facilitator_id))

    def client(self, client_id="C1", first="Maria", last="Gonzalez", groups=(), plan_start=None, plan_end=None,
               weekly_hours=9, days=3, level="2.1", phases=(), status="active"):
        from sqlalchemy import select

        from iop.store.models import Client, Group, Plan, PlanPhase

        with self.app.app_context():
            with db.transaction() as s:
                person = Client(client_id=client_id, first_name=first, last_name=last, status=status)
                person.groups = list(s.scalars(select(Group).where(Group.code.in_([g if isinstance(g, str) else g.code for g in groups]))))
                if plan_start is not None:
                    plan = Plan(level_of_care=level, start_date=plan_start, end_date=plan_end,
                                weekly_minutes=int(weekly_hours * 60), days_per_week=days)
                    for first_week, last_week, hours, phase_days in phases:
                        plan.phases.append(PlanPhase(first_week=first_week, last_week=last_week,
                                                     weekly_minutes=int(hours * 60), days_per_week=phase_days))
                    person.plans.append(plan)
                s.add(person)
            s.refresh(person)
            s.expunge(person)
            return person

    def session(self, group, day: date, status="scheduled", module_id=None):
        """The group's session on `day` (made through the same code the scheduler uses)."""
        from sqlalchemy import select

        from iop.clinic.sessions import ensure_session
        from iop.store.models import Group

        with self.app.app_context():
            with db.transaction() as s:
                g = s.scalar(select(Group).where(Group.code == (group if isinstance(group, str) else group.code)))
                group_session = ensure_session(g, day)
                group_session.status = status
                if module_id is not None:
                    group_session.module_id = module_id
            s.refresh(group_session)
            s.expunge(group_session)
            return group_session

    def attendance(self, client, group_session, check_in: datetime | None, check_out: datetime | None,
                   status="present", source="import"):
        from iop.store.models import Attendance

        return self._add(Attendance(
            session_id=group_session.id, client_key=client.id, status=status, source=source,
            check_in_at=check_in.astimezone(timezone.utc) if check_in else None,
            check_out_at=check_out.astimezone(timezone.utc) if check_out else None,
            check_out_source=source if check_out else None,
        ))

    def kiosk(self, name="Front desk"):
        """An enrolled kiosk and the cookie value that identifies it."""
        from iop.clinic import kiosks

        with self.app.app_context():
            with db.transaction():
                device = kiosks.issue_enrollment(name)
                kiosks.complete_enrollment(device.enrollment_nonce)
            return device, kiosks.cookie_value(device)


@pytest.fixture
def world(app):
    return World(app)


# ---- a live server and a real browser ------------------------------------------------------

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


@pytest.fixture
def live_server(app):
    server = LiveServer(app).start()
    yield server
    server.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/test (it installs it as root).")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser tab. Whatever page a test leaves it on is checked with axe-core (tests/a11y.py)
    when the test passed, so every browser test also proves its last page has no WCAG A/AA violation."""
    from a11y import assert_accessible

    context = browser.new_context(viewport={"width": 1024, "height": 768})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    try:
        passed = not getattr(request.node, "failed_call", False)
        if passed and not page.is_closed() and page.url.startswith("http"):
            assert_accessible(page, f"the last page of {request.node.name} ({page.url})")
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose body failed, so fixtures skip checks that would only repeat the failure."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.failed_call = True

def browser_sign_in(page, base: str, username: str, password: str, lands: str = "/coordinator/") -> None:
    """Sign in through the real form and wait for the role's landing page."""
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + lands)


# ---- a group running now (live facilitation tests) ------------------------------------------

LIVE_DAY = date(2026, 3, 4)  # a Wednesday


class LiveGroup:
    """What live_group made: group, session (detached rows), session_id, facilitator_id, clients."""

    def __init__(self, **parts):
        self.__dict__.update(parts)


@pytest.fixture
def live_group(app, world, auth, freeze):
    """make(code, facilitator, members, module_id) -> LiveGroup: a 9:00-12:00 group on LIVE_DAY with its
    module, its facilitator (a staff login, password "correct horse 1") and members; the clock stands at
    9:20 that day, inside the session."""
    freeze(local(LIVE_DAY, 9, 20))

    def make(code="RP-AM", facilitator="dana", members=(("C1", "Maria", "Gonzalez"), ("C2", "James", "Whitfield")),
             module_id="rp-01-triggers"):
        from sqlalchemy import select

        from iop.store.models import StaffUser

        with app.app_context():
            staff_id = db.session().scalar(select(StaffUser.id).where(StaffUser.username == facilitator))
        if staff_id is None:
            staff_id = auth.make_user(facilitator, "facilitator")
        group = world.group(code=code, name=f"Group {code}", weekdays="Mon Tue Wed Thu Fri", facilitator_id=staff_id)
        clients = [world.client(client_id, first, last, groups=[code]) for client_id, first, last in members]
        group_session = world.session(code, LIVE_DAY, module_id=module_id)
        return LiveGroup(group=group, session=group_session, session_id=group_session.id, facilitator_id=staff_id, clients=clients)

    return make


# ---- the kiosk: a group session now, a client with a plan, an enrolled kiosk ---------------

KIOSK_DAY = date(2026, 3, 2)  # a Monday


class KioskScene:
    def __init__(self, app, world, http):
        from iop.clinic import kiosks

        self.app, self.world, self.http = app, world, http
        self.day = KIOSK_DAY
        self.group = world.group()  # RP-AM: Mon Wed Fri 9:00-12:00, Room B
        self.maria = world.client("C1", "Maria", "Gonzalez", groups=[self.group],
                                  plan_start=KIOSK_DAY - timedelta(days=14), weekly_hours=9)
        self.device, self.cookie = world.kiosk()
        http.set_cookie(kiosks.COOKIE_NAME, self.cookie, path="/kiosk")

    def card(self, client) -> str:
        from iop.clinic import cards

        with self.app.app_context():
            return cards.card_code(client.id, client.card_version)

    def scan(self, code, scan_id=None, **extra):
        body = {"code": code, "scan_id": scan_id or secrets.token_hex(16), **extra}
        return self.http.post("/kiosk/api/scan", json=body)


@pytest.fixture
def kiosk_scene(app, world, client, freeze):
    """Maria G. in the Monday 9:00 group, the test client enrolled as a kiosk, the clock at 9:05."""
    scene = KioskScene(app, world, client)
    freeze(local(KIOSK_DAY, 9, 5))
    return scene

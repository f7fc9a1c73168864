"""Fixtures in the flaskr style: a fresh app and database per test, a client, a runner, world builders.
The helpers they hand out live in tests/helpers/ (tests import those, never conftest).

The suite runs on SQLite unless IOP_TEST_DATABASE=postgres: then on the PostgreSQL test database
at IOP_TEST_POSTGRES_URL, each run in a schema of its own, so parallel runs never see each other's
rows. (IOP_TEST_POSTGRES_URL alone only lets the real-process tests run; see the README, "Test it".)
"""
from __future__ import annotations

import os
from datetime import date, datetime

import pytest

from helpers import exports_program
from helpers.servers import fresh_schema
from helpers.web import CHROMIUM, CHROMIUM_ARGS, CSP_VIOLATIONS, AuthActions, LiveServer, WatchedBrowser
from helpers.world import KIOSK_DAY, LIVE_DAY, TEST_SECRET, KioskScene, LiveGroup, World, local, reset_schema
from iop import clock, create_app
from iop.store import db

DATABASES = ("sqlite", "postgres")


# ---- database ------------------------------------------------------------------------------

def suite_database() -> str:
    """Which database the suite runs on: IOP_TEST_DATABASE, sqlite by default (a wrong setting stops the run)."""
    if os.environ.get("IOP_TEST_DATABASE_URL", "").strip():
        raise pytest.UsageError("IOP_TEST_DATABASE_URL is gone: set IOP_TEST_POSTGRES_URL to the PostgreSQL test "
                                "database and IOP_TEST_DATABASE=postgres to run the suite there.")
    chosen = os.environ.get("IOP_TEST_DATABASE", "").strip().lower() or "sqlite"
    if chosen not in DATABASES:
        raise pytest.UsageError(f"IOP_TEST_DATABASE must be sqlite or postgres, not {chosen!r}.")
    if chosen == "postgres" and not os.environ.get("IOP_TEST_POSTGRES_URL", "").strip():
        raise pytest.UsageError("IOP_TEST_DATABASE=postgres needs IOP_TEST_POSTGRES_URL, the PostgreSQL test "
                                "database (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test).")
    return chosen


def pytest_configure(config):
    suite_database()  # before any test runs


@pytest.fixture(scope="session")
def postgres_url():
    """A schema of its own on the test PostgreSQL, or None when the suite runs on SQLite."""
    if suite_database() != "postgres":
        yield None
        return
    with fresh_schema(os.environ["IOP_TEST_POSTGRES_URL"].strip(), prefix="iop_test") as url:
        yield url


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
    from iop.live import realtime

    application = create_app(app_config)
    reset_schema(application)
    yield application
    realtime.staff_screens(application).stop()  # its watch reads this app's database, which goes now
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

@pytest.fixture
def auth(client, app):
    return AuthActions(client, app)


# ---- world building ------------------------------------------------------------------------

@pytest.fixture
def world(app):
    return World(app)


@pytest.fixture
def program(runner, tmp_path, freeze):
    """tests/helpers/exports_program.py's program, loaded through `iop import`, the clock on 1 April 2026
    (every week of it over); returns export(kind, first, last, *options), `iop export`'s result."""
    freeze(local(date(2026, 4, 1), 12))
    exports_program.load(runner, tmp_path)

    def export(kind, first, last, *options):
        return runner.invoke(args=["export", kind, "--from", first, "--to", last, *options])

    return export


# ---- a live server and a real browser ------------------------------------------------------

@pytest.fixture
def live_server(app):
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/test (it installs it as root).")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(autouse=True)
def no_csp_violations():
    """Any browser test that met a Content-Security-Policy violation fails (helpers.web watches)."""
    CSP_VIOLATIONS.clear()
    yield
    found, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    if found:
        pytest.fail("Content-Security-Policy violations in the browser:\n  " + "\n  ".join(found[:10]))


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield WatchedBrowser(browser)
    browser.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser tab. Whatever page a test leaves it on is checked with axe-core (tests/a11y.py)
    when the test passed, so every browser test also proves its last page has no WCAG A/AA violation."""
    from helpers.a11y import assert_accessible

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


# ---- a group running now (live facilitation tests) ------------------------------------------

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

@pytest.fixture
def kiosk_scene(app, world, client, freeze):
    """Maria G. in the Monday 9:00 group, the test client enrolled as a kiosk, the clock at 9:05."""
    scene = KioskScene(app, world, client)
    freeze(local(KIOSK_DAY, 9, 5))
    return scene

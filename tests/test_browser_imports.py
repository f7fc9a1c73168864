"""A coordinator imports a file in a real browser: the job's progress bar while it runs (followed by
import_job.js, or by the page refreshing itself without JavaScript), then the result at the top of the
view with the focus on it, every problem of every line listed up to 50 with the total (issue 12)."""
from __future__ import annotations

from datetime import date, time

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from helpers.a11y import assert_accessible
from helpers.web import browser_sign_in
from iop.store import db
from iop.store.models import ImportJob

pytestmark = pytest.mark.browser

PASSWORD = "a long password"


@pytest.fixture
def coordinator(live_server, auth, world, page):
    world.group("RP-AM", weekdays="Mon Wed Fri", start=time(9), end=time(12))
    world.client("C1", "Maria", "Gonzalez", groups=["RP-AM"], plan_start=date(2026, 2, 2))
    auth.make_user("pat", role="coordinator", password=PASSWORD)
    browser_sign_in(page, live_server.url, "pat", PASSWORD)
    return page


def upload(page, base: str, label: str, button: str, content: bytes) -> None:
    page.goto(base + "/coordinator/exports")
    page.get_by_label(label).set_input_files(files=[{"name": "file.csv", "mimeType": "text/csv", "buffer": content}])
    page.get_by_role("button", name=button).click()


def in_view_and_focused(page) -> dict:
    return page.evaluate("""() => {
        const result = document.getElementById("import-result");
        const box = result.getBoundingClientRect();
        return {focused: document.activeElement === result, top: box.top, height: window.innerHeight,
                scrollY: window.scrollY};
    }""")


def test_a_refused_import_is_at_the_top_with_the_focus_and_every_problem(coordinator, live_server):
    page = coordinator
    four = b"C404,XX,2026-02-30,09:00,12:00,late\n"  # four problems: client, group, date, status
    upload(page, live_server.url, "Attendance file (.csv)", "Import attendance",
           b"client_id,group,date,check_in,check_out,status\n" + four * 30)
    result = page.locator("#import-result")
    expect(result).to_be_visible(timeout=30_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Import: attendance")
    expect(result).to_contain_text("Nothing was imported: 30 rows with problems (of 30).")
    problems = result.locator("li")
    expect(problems).to_have_count(50)
    assert problems.all_inner_texts()[:4] == [
        "line 2: unknown client_id 'C404'", "line 2: unknown group 'XX'",
        "line 2: date '2026-02-30' is not a date like 2026-03-02",
        "line 2: status 'late' must be present, excused or empty"]
    expect(result).to_contain_text("and 70 more problems in 18 lines")
    where = in_view_and_focused(page)
    assert where["focused"], "the focus is on the result"
    assert 0 <= where["top"] < where["height"] / 2, where  # in the top half of the view, not 1,700 px below
    assert_accessible(page, "an import's refused result")


def test_a_good_import_runs_to_its_result(coordinator, live_server, app):
    page = coordinator
    upload(page, live_server.url, "Groups file (.csv)", "Import groups",
           b"code,name,track,room,weekdays,start,end\nTS-PM,Twelve-Step,twelve-step,Room A,Mon Tue,13:00,14:30\n")
    result = page.locator("#import-result")
    expect(result).to_have_text("Imported 1 group: 1 added, 0 updated, 0 already there.", timeout=30_000)
    assert in_view_and_focused(page)["focused"]
    page.get_by_role("link", name="Back to exports and imports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Exports and imports")


def running_job(app, job_id: str) -> None:
    with app.app_context():
        with db.transaction() as s:
            s.add(ImportJob(id=job_id, kind="attendance", total=1000, done=200, status="checking", problems={}))


def finish_job(app, job_id: str) -> None:
    with app.app_context():
        with db.transaction() as s:
            s.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                status="done", done=1000, summary="Imported 3 attendances: 3 added, 0 updated, 0 already there."))


def test_the_progress_bar_follows_the_job_then_the_result_takes_the_focus(coordinator, live_server, app):
    page = coordinator
    running_job(app, "d" * 32)
    page.goto(live_server.url + "/coordinator/imports/jobs/" + "d" * 32)
    bar = page.get_by_role("progressbar", name="Import progress")
    expect(bar).to_be_visible()
    assert bar.get_attribute("value") == "14"
    assert_accessible(page, "an import's page while it runs")
    with app.app_context():
        with db.transaction() as s:
            s.execute(update(ImportJob).where(ImportJob.id == "d" * 32).values(done=1000))
    expect(bar).to_have_attribute("value", "70")  # the page follows the job by itself (import_job.js)
    expect(page.locator("#import-percent")).to_have_text("70% done")
    finish_job(app, "d" * 32)
    result = page.locator("#import-result")
    expect(result).to_have_text("Imported 3 attendances: 3 added, 0 updated, 0 already there.")
    assert in_view_and_focused(page)["focused"]


def test_without_javascript_the_job_page_refreshes_itself(live_server, auth, world, browser, app):
    auth.make_user("pat", role="coordinator", password=PASSWORD)
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        browser_sign_in(page, live_server.url, "pat", PASSWORD)
        running_job(app, "e" * 32)
        page.goto(live_server.url + "/coordinator/imports/jobs/" + "e" * 32)
        expect(page.get_by_role("progressbar", name="Import progress")).to_be_visible()
        finish_job(app, "e" * 32)
        expect(page.locator("#import-result")).to_contain_text("Imported 3 attendances")
    finally:
        context.close()

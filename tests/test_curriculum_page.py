"""The coordinator's curriculum page: what is served, the problems, and a reload without a restart."""
from __future__ import annotations

import shutil

from sqlalchemy import select

from helpers.curriculum_trees import FIXTURES, make_tree
from iop.store import db
from iop.store.models import AuditEvent


def test_coordinator_sees_the_tracks_and_modules(client, auth):
    auth.login("casey", role="coordinator")
    page = client.get("/coordinator/curriculum")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Relapse Prevention" in html and "Twelve-Step" in html
    assert "Knowing Your Triggers" in html and "(16 modules)" in html and "(12 modules)" in html
    assert "No problems" in html


def test_reload_picks_up_edits_and_reports_broken_files_while_serving_the_rest(app, client, auth, tmp_path):
    root = make_tree(tmp_path)
    app.config["CURRICULUM_DIR"] = str(root)
    auth.login("casey", role="coordinator")
    assert "A Fixture Module" not in client.get("/coordinator/curriculum").get_data(as_text=True)

    shutil.copy(FIXTURES / "good.yaml", root / "relapse-prevention" / "17-fixture.yaml")
    shutil.copy(FIXTURES / "unknown-kind.yaml", root / "twelve-step" / "13-broken.yaml")
    html = client.get("/coordinator/curriculum").get_data(as_text=True)
    assert "A Fixture Module" not in html, "the content is loaded once, until a reload"

    token = auth.csrf("/coordinator/curriculum")
    done = client.post("/coordinator/curriculum/reload", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/coordinator/curriculum")
    html = client.get("/coordinator/curriculum").get_data(as_text=True)
    assert "Reloaded. 29 modules are in use" in html
    assert "A Fixture Module" in html and "(17 modules)" in html and "Knowing Your Triggers" in html
    assert "13-broken.yaml:19: step 2 has the unknown kind" in html
    assert "13-broken.yaml:4: the track is &#39;relapse-prevention&#39; but the file is in the folder" in html
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "curriculum.reload"))
    assert event.username == "casey" and event.detail == {"modules": 29, "problems": 2}


def test_the_page_names_modules_too_long_for_a_group(client, auth, world):
    from datetime import time

    world.group(code="TS-SHORT", track="twelve-step", start=time(18), end=time(20, 50))  # 170 minutes
    auth.login("casey", role="coordinator")
    html = client.get("/coordinator/curriculum").get_data(as_text=True)
    assert "the steps add up to 175 minutes, longer than group TS-SHORT (170 minutes)." in html
    assert "01-acceptance.yaml" in html and "07-emotions.yaml" not in html  # 175 vs 170 minutes


def test_reload_needs_the_form_token(client, auth):
    auth.login("casey", role="coordinator")
    assert client.post("/coordinator/curriculum/reload").status_code == 400


def test_a_facilitator_may_not_see_or_reload(app, client, auth):
    auth.login("dana", role="facilitator")
    assert client.get("/coordinator/curriculum").status_code == 403
    token = auth.csrf()
    assert client.post("/coordinator/curriculum/reload", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert db.session().scalar(select(AuditEvent).where(AuditEvent.action == "curriculum.reload")) is None


def test_signed_out_people_are_sent_to_sign_in(client):
    page = client.get("/coordinator/curriculum")
    assert page.status_code == 302 and "/login" in page.headers["Location"]

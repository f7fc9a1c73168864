"""Many scans at once against a real threaded server: one card, fifty scan_ids, one attendance."""
from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from iop.clinic import kiosks
from iop.store import db
from iop.store.models import Attendance, Scan


def post_scan(base_url: str, cookie: str, code: str, scan_id: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/kiosk/api/scan", method="POST",
        data=json.dumps({"code": code, "scan_id": scan_id}).encode(),
        headers={"Content-Type": "application/json", "Cookie": f"{kiosks.COOKIE_NAME}={cookie}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_fifty_parallel_scans_of_one_card_make_one_attendance(kiosk_scene, live_server, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: post_scan(live_server.url, kiosk_scene.cookie, code, secrets.token_hex(8)),
                                range(50)))
    assert all(status == 200 for status, _ in answers), answers
    results = sorted(body["result"] for _, body in answers)
    assert results.count("checked_in") == 1
    assert results.count("already_checked_in") == 49
    with app.app_context():
        records = db.session().scalars(select(Attendance)).all()
        scans = db.session().scalars(select(Scan)).all()
    assert len(records) == 1 and len(scans) == 50


def test_the_same_scan_id_raced_in_parallel_is_counted_once(kiosk_scene, live_server, app):
    code = kiosk_scene.card(kiosk_scene.maria)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: post_scan(live_server.url, kiosk_scene.cookie, code, "same-scan-id-1"),
                                range(20)))
    assert {status for status, _ in answers} == {200}
    assert {json.dumps(body, sort_keys=True) for _, body in answers} == {json.dumps(answers[0][1], sort_keys=True)}
    assert answers[0][1]["result"] == "checked_in"
    with app.app_context():
        assert len(db.session().scalars(select(Attendance)).all()) == 1
        assert len(db.session().scalars(select(Scan)).all()) == 1

"""Modality (rule 12): a facilitator checks a client in as joining by video; the roster, the session
summary, the group note, the exports and the FHIR export say so; it changes no minutes."""
from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from helpers.web import AuthActions, csrf_from
from helpers.world import LIVE_DAY, local
from iop import clock
from iop.live import facilitation, roster
from iop.store import db
from iop.store.models import Attendance, AuditEvent, Client, GroupSession


def _signed_in(app):
    client = app.test_client()
    AuthActions(client, app).login("dana", role="facilitator")
    return client


def _public_id(app, client_id):
    with app.app_context():
        return db.session().scalar(select(Client.public_id).where(Client.client_id == client_id))


def _hand(http, session_id, csrf, **body):
    return http.post(f"/facilitator/sessions/{session_id}/attendance", json=body,
                       headers={"X-CSRFToken": csrf, "Accept": "application/json"})


def test_a_client_joins_by_video_beside_one_in_the_room(app, live_group):
    group = live_group()
    client = _signed_in(app)
    csrf = csrf_from(client.get(f"/facilitator/sessions/{group.session_id}").get_data(as_text=True))
    answer = _hand(client, group.session_id, csrf, action="check_in_video", client=_public_id(app, "C1"), at="9:02")
    assert answer.status_code == 200
    assert answer.get_json()["message"] == "Maria G. is checked in by video at 9:02 AM."
    assert _hand(client, group.session_id, csrf, action="check_in", client=_public_id(app, "C2")).status_code == 200
    clock.advance(timedelta(minutes=10))
    assert _hand(client, group.session_id, csrf, action="check_out", client=_public_id(app, "C1")).status_code == 200
    with app.app_context():
        records = {r.client.client_id: r for r in db.session().scalars(select(Attendance))}
        assert (records["C1"].modality, records["C2"].modality) == ("telehealth", "in_person")
        assert records["C1"].check_out_at == local(LIVE_DAY, 9, 30)
        actions = [e.action for e in db.session().scalars(select(AuditEvent).order_by(AuditEvent.id))
                   if e.action.startswith("attendance")]
        assert actions == ["attendance.check_in_video", "attendance.check_in", "attendance.check_out"]
        payload = roster.roster_payload(db.session().get(GroupSession, group.session_id))
        video = {e["name"]: e["video"] for e in payload["entries"]}
        assert video == {"Maria G.": True, "James W.": False}
        report = facilitation.summary(db.session().get(GroupSession, group.session_id))
        assert [row.name for row in report.joined_by_video] == ["Maria Gonzalez"]
        # Minutes are the hours rules' whatever the modality: 9:02-9:30 inside 9:00-12:00.
        assert {row.name: row.credited_minutes for row in report.rows}["Maria Gonzalez"] == 28
        note = facilitation.draft_note(report)
        assert "Participants: 2." in note
        assert "Joined by video (telehealth): 1 (Maria Gonzalez); in person: 1." in note
    page = client.get(f"/facilitator/sessions/{group.session_id}/summary").get_data(as_text=True)
    assert "Joined by video" in page and "By video" in page


def test_the_fhir_encounter_of_a_video_visit_is_virtual(program, runner, tmp_path):
    path = tmp_path / "video.csv"
    path.write_text("client_id,group,date,check_in,check_out,status,modality\n"
                    "C01,RP-AM,2026-03-11,09:00,12:00,,telehealth\n"
                    "C02,RP-AM,2026-03-11,09:00,12:00,,in_person\n")
    assert runner.invoke(args=["import", "attendance", str(path)]).exit_code == 0
    folder = tmp_path / "fhir"
    result = runner.invoke(args=["export", "fhir", "--from", "2026-03-11", "--to", "2026-03-11", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    encounters = [json.loads(line) for line in (folder / "Encounter.ndjson").read_text().splitlines()]
    by_client = {}
    for encounter in encounters:
        if encounter.get("partOf"):
            by_client[encounter["subject"]["reference"]] = encounter["class"]["code"]
    assert sorted(by_client.values()) == ["AMB", "VR"]
    assert date(2026, 3, 11)

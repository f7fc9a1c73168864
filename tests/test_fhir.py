"""`iop export fhir` and the Exports page's zip: FHIR R4 Bulk Data NDJSON of the program's attendance.

Every resource is validated against FHIR R4 (4.0.1) with the `fhir.resources` 6.4 models (the last
line of that package whose default models are R4, not R4B or R5), and the client Encounters are
checked against the attendance export of the same range, row for row. The program is
tests/helpers/exports_program.py's (the fixture `program`), with a facilitator on the morning group
and Cara no longer on its roster.
"""
from __future__ import annotations

import csv
import io
import json
import re
import stat
import zipfile
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from helpers.web import browser_sign_in
from helpers.world import TEST_SECRET, local
from iop import create_app
from iop.config import ConfigError, finish, from_environment
from iop.files import fhir
from iop.store import db
from iop.store.models import Attendance, AuditEvent, Client, ClientGroup, Group, GroupSession

RANGE = ("2026-03-01", "2026-03-15")
# FHIR R4's own definitions, for what the models leave to the reader: the dateTime pattern, the
# required value sets of the elements written here, and the id pattern.
R4_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?")
R4_ENCOUNTER_STATUS = {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
                       "entered-in-error", "unknown"}
R4_GROUP_TYPE = {"person", "animal", "practitioner", "device", "medication", "substance"}
R4_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
STATUS = {"present": "finished", "excused": "cancelled"}


@pytest.fixture
def clinic(program, app, auth):
    """The program with Dana Reyes (LCSW, CADC) facilitating the morning group, and Cara (C03) moved off it."""
    with app.app_context():
        from iop.clinic import staff

        with db.transaction() as s:
            dana = staff.add_user("dana", "correct horse 1", "facilitator", "Dana Reyes", "LCSW, CADC")
            s.flush()
            morning = s.scalar(select(Group).where(Group.code == "RP-AM"))
            morning.facilitator_id = dana.id
            s.execute(update(GroupSession).where(GroupSession.group_id == morning.id).values(facilitator_id=dana.id))
            cara = s.scalar(select(Client).where(Client.client_id == "C03"))
            s.execute(delete(ClientGroup).where(ClientGroup.client_key == cara.id))
    return program


def export(runner, folder: Path, first=RANGE[0], last=RANGE[1]):
    result = runner.invoke(args=["export", "fhir", "--from", first, "--to", last, "-o", str(folder)])
    assert result.exit_code == 0, result.output
    return read(folder)


def read(folder: Path) -> dict[str, list[dict]]:
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{kind}.ndjson" for kind in fhir.RESOURCE_TYPES)
    return {kind: [json.loads(line) for line in (folder / f"{kind}.ndjson").read_text("utf-8").splitlines()]
            for kind in fhir.RESOURCE_TYPES}


def client_encounters(files) -> list[dict]:
    return [e for e in files["Encounter"] if "partOf" in e]


def by_reference(files) -> dict[str, dict]:
    return {f"{r['resourceType']}/{r['id']}": r for resources in files.values() for r in resources}


def references(value) -> list[str]:
    """Every `reference` anywhere inside a resource."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for item in value.values() for ref in references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in references(item)]
    return []


def datetimes(value, key=""):
    if isinstance(value, dict):
        return [found for k, item in value.items() for found in datetimes(item, k)]
    if isinstance(value, list):
        return [found for item in value for found in datetimes(item, key)]
    return [value] if key in ("start", "end") else []


# ---- valid FHIR R4 -------------------------------------------------------------------------------

def test_every_resource_is_valid_fhir_r4(clinic, runner, tmp_path):
    from fhir.resources import __fhir_version__, get_fhir_model_class

    assert __fhir_version__ == "4.0.1"
    files = export(runner, tmp_path / "out")
    assert [len(files[kind]) for kind in fhir.RESOURCE_TYPES] == [12 + 8, 4, 1, 3]  # 12 attendances in 8 sessions
    for kind, resources in files.items():
        for resource in resources:
            assert resource["resourceType"] == kind  # one type a file
            model = get_fhir_model_class(kind).parse_obj(resource)
            assert json.loads(model.json()) == resource  # nothing unknown, dropped or reshaped
            assert R4_ID.fullmatch(resource["id"])
            for moment in datetimes(resource):
                assert R4_DATETIME.fullmatch(moment) and "T" in moment, moment
            if kind == "Encounter":
                assert resource["status"] in R4_ENCOUNTER_STATUS
                assert resource["class"]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
                assert resource["length" if "partOf" in resource else "subject"]
            if kind == "Group":
                assert resource["type"] in R4_GROUP_TYPE and resource["actual"] is True


def test_an_empty_range_gives_four_empty_files(runner, tmp_path):
    files = export(runner, tmp_path / "out", "2020-01-06", "2020-01-12")
    assert files == {kind: [] for kind in fhir.RESOURCE_TYPES}


# ---- the same figures as the attendance export ------------------------------------------------------

def test_client_encounters_equal_the_attendance_export_row_for_row(clinic, runner, tmp_path, app):
    rows = list(csv.DictReader(io.StringIO(clinic("attendance", *RANGE).stdout)))
    files = export(runner, tmp_path / "out")
    resources = by_reference(files)
    encounters = client_encounters(files)
    assert len(encounters) == len(rows) == 12
    tz = app.config["PROGRAM_TZ"]
    for encounter, row in zip(encounters, rows, strict=True):
        patient = resources[encounter["subject"]["reference"]]
        session = resources[encounter["partOf"]["reference"]]
        assert patient["identifier"][0]["value"] == row["client_id"]
        assert encounter["length"] == {"value": int(row["credited_minutes"]), "unit": "min",
                                       "system": "http://unitsofmeasure.org", "code": "min"}
        assert encounter["status"] == STATUS[row["status"]]
        assert datetime.fromisoformat(session["period"]["start"]).date().isoformat() == row["date"]
        times = encounter.get("period", {})
        if row["status"] == "present":
            for key, column in (("start", "check_in"), ("end", "check_out")):
                local_time = datetime.fromisoformat(times[key]).astimezone(tz).strftime("%H:%M") if key in times else ""
                assert local_time == row[column]
        else:  # an excused absence: the session's times
            assert times == session["period"]


def test_the_mapping_of_a_client_encounter(clinic, runner, tmp_path):
    files = export(runner, tmp_path / "out")
    resources = by_reference(files)
    # Ana on Monday 9 March (after the switch to daylight time): in at 09:00, no check-out, credited to the end.
    ana = next(p for p in files["Patient"] if p["identifier"][0]["value"] == "C01")
    monday = [e for e in client_encounters(files) if e["subject"]["reference"] == f"Patient/{ana['id']}"
              and e["period"]["start"].startswith("2026-03-09")]
    morning, afternoon = monday
    assert morning["period"] == {"start": "2026-03-09T09:00:00-04:00"}
    assert morning["length"]["value"] == 180 and morning["status"] == "finished"
    assert morning["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                                "display": "ambulatory"}
    assert morning["type"] == [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "90853"}]}]
    assert morning["location"] == [{"location": {"display": "Room B"}}]
    [participant] = morning["participant"]
    dana = resources[participant["individual"]["reference"]]
    assert dana["name"] == [{"text": "Dana Reyes"}]
    assert dana["qualification"] == [{"code": {"text": "LCSW, CADC"}}]
    assert participant["type"][0]["coding"][0]["code"] == "PPRF"
    assert morning["identifier"] == [{"system": morning["identifier"][0]["system"], "value": morning["id"]}]
    assert morning["identifier"][0]["system"].startswith("urn:oid:2.25.")
    session = resources[morning["partOf"]["reference"]]
    assert session["subject"]["reference"].startswith("Group/") and "partOf" not in session
    assert session["period"] == {"start": "2026-03-09T09:00:00-04:00", "end": "2026-03-09T12:00:00-04:00"}
    assert session["participant"] == morning["participant"] and session["status"] == "finished"
    assert "participant" not in afternoon  # the afternoon group has no facilitator
    # Before the switch, the same wall-clock time is five hours behind UTC.
    first = next(e for e in client_encounters(files) if e["period"]["start"].startswith("2026-03-02"))
    assert first["period"] == {"start": "2026-03-02T08:40:00-05:00", "end": "2026-03-02T12:00:00-05:00"}


def test_nothing_beyond_what_the_record_needs(clinic, runner, tmp_path, app):
    with app.app_context():
        with db.transaction():
            db.session().execute(update(GroupSession).values(note_text="Maria talked about her relapse",
                                                             module_id="rp-01-triggers"))
    files = export(runner, tmp_path / "out")
    for patient in files["Patient"]:
        assert set(patient) == {"resourceType", "id", "identifier", "name"}
    ben = next(p for p in files["Patient"] if p["identifier"][0]["value"] == "C02")
    assert ben["name"] == [{"family": "Okoro", "given": ["Ben"]}]
    allowed = {"resourceType", "id", "identifier", "status", "class", "type", "subject", "participant", "period",
               "length", "location", "partOf"}
    for encounter in files["Encounter"]:
        assert set(encounter) <= allowed  # no reason, diagnosis, hospitalization or notes
    everything = "".join((tmp_path / "out" / f"{kind}.ndjson").read_text() for kind in fhir.RESOURCE_TYPES)
    assert "talked about" not in everything and "rp-01" not in everything  # no notes, no modules


def test_groups_list_their_clients_and_who_left_the_roster(clinic, runner, tmp_path):
    files = export(runner, tmp_path / "out")
    patients = {f"Patient/{p['id']}": p["identifier"][0]["value"] for p in files["Patient"]}
    groups = {g["identifier"][0]["value"]: g for g in files["Group"]}
    assert sorted(groups) == ["RP-AM", "TS-PM", "WKND"]
    morning = groups["RP-AM"]
    assert morning["name"] == "Morning Relapse Prevention" and morning["active"] is True
    assert morning["type"] == "person" and morning["actual"] is True
    members = {patients[m["entity"]["reference"]]: m.get("inactive", False) for m in morning["member"]}
    assert members == {"C01": False, "C02": False, "C03": True}  # Cara came, then left the group
    assert {patients[m["entity"]["reference"]] for m in groups["WKND"]["member"]} == {"C04"}
    assert all("period" not in m for g in files["Group"] for m in g["member"])  # no membership dates held


def test_every_reference_resolves_inside_the_export(clinic, runner, tmp_path):
    files = export(runner, tmp_path / "out")
    resources = by_reference(files)
    assert len(resources) == sum(len(r) for r in files.values())  # ids unique within each type
    named = [ref for kind in files.values() for resource in kind for ref in references(resource)]
    assert named and {ref.split("/")[0] for ref in named} == {"Patient", "Group", "Practitioner", "Encounter"}
    assert [ref for ref in named if ref not in resources] == []
    # And nothing is there that nothing names, but the clients' Encounters themselves.
    assert set(resources) - set(named) == {f"Encounter/{e['id']}" for e in client_encounters(files)}


# ---- stable, opaque ids ----------------------------------------------------------------------------------

def test_a_second_export_gives_identical_ids_and_a_correction_keeps_its_encounter(clinic, runner, tmp_path, app):
    first = export(runner, tmp_path / "one")
    assert export(runner, tmp_path / "two") == first
    # Ana's 4 March record is corrected (voided, replaced): the EHR should update the same Encounter.
    with app.app_context():
        with db.transaction() as s:
            ana = s.scalar(select(Client).where(Client.client_id == "C01"))
            group_session = s.scalar(select(GroupSession).where(GroupSession.date == date(2026, 3, 4)))
            old = s.scalar(select(Attendance).where(Attendance.client_key == ana.id, Attendance.session_id == group_session.id))
            old.voided_at, old.void_reason = local(date(2026, 3, 5), 9), "wrong time"
            s.flush()
            s.add(Attendance(session_id=group_session.id, client_key=ana.id, status="present", source="manual",
                             check_in_at=local(date(2026, 3, 4), 9), check_out_at=local(date(2026, 3, 4), 12),
                             replaces_id=old.id))
    after = export(runner, tmp_path / "three")
    assert [e["id"] for e in after["Encounter"]] == [e["id"] for e in first["Encounter"]]
    changed = [(a["length"]["value"], b["length"]["value"])
               for a, b in zip(client_encounters(first), client_encounters(after)) if a != b]
    assert changed == [(155, 180)]


def test_ids_are_opaque_and_keyed_by_the_program_secret(clinic, runner, tmp_path, app, app_config):
    files = export(runner, tmp_path / "out")
    everything = [r for resources in files.values() for r in resources]
    for resource in everything:
        assert re.fullmatch(r"[0-9a-f]{32}", resource["id"])
    ids = {r["id"] for r in everything}
    with app.app_context():
        ana = db.session().scalar(select(Client.id).where(Client.client_id == "C01"))
        ana_id = fhir.program_ids().of("Client", ana)
    assert ana_id == fhir.Ids(TEST_SECRET).of("Client", ana) and ana_id in ids
    assert next(p for p in files["Patient"] if p["id"] == ana_id)["identifier"][0]["value"] == "C01"
    other = fhir.Ids("another program's secret")
    assert other.of("Client", ana) not in ids and other.oid != fhir.Ids(TEST_SECRET).oid
    # A rotated key (the old one kept as a fallback, as for printed cards) keeps every id.
    rotated = create_app({**app_config, "SECRET_KEY": "a new key " + "y" * 40, "SECRET_KEY_FALLBACKS": [TEST_SECRET]})
    try:
        assert export(rotated.test_cli_runner(), tmp_path / "rotated") == files
    finally:
        db.database(rotated).engine.dispose()


# ---- the mapping rules -----------------------------------------------------------------------------

def test_the_encounter_class_follows_the_modality():
    assert fhir.encounter_class("in_person") == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                  "code": "AMB", "display": "ambulatory"}
    assert fhir.encounter_class("telehealth") == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                   "code": "VR", "display": "virtual"}
    with pytest.raises(ValueError):
        fhir.encounter_class("by_carrier_pigeon")


@pytest.mark.parametrize("status, check_out, now_hour, expected", [
    ("present", 12, 13, "finished"),
    ("present", None, 13, "finished"),      # no check-out after the end: credited to the end, over
    ("present", None, 10, "in-progress"),   # still in the room
    ("present", 11, 10, "finished"),        # left already
    ("excused", None, 10, "cancelled"),
])
def test_a_client_encounter_status(status, check_out, now_hour, expected):
    day = date(2026, 3, 4)
    assert fhir.client_encounter_status(status, local(day, check_out) if check_out else None, local(day, 12),
                                        local(day, now_hour)) == expected


@pytest.mark.parametrize("status, now_hour, expected", [
    ("closed", 10, "finished"), ("scheduled", 13, "finished"), ("open", 10, "in-progress"),
    ("scheduled", 10, "in-progress"), ("open", 8, "in-progress"), ("scheduled", 8, "planned"),
    ("cancelled", 13, "cancelled"),
])
def test_a_session_encounter_status(status, now_hour, expected):
    day = date(2026, 3, 4)
    assert fhir.session_encounter_status(status, local(day, 9), local(day, 12), local(day, now_hour)) == expected


def test_a_session_running_now_is_in_progress_with_the_minutes_so_far(world, runner, tmp_path, freeze):
    day = date(2026, 3, 4)
    freeze(local(day, 10, 30))
    group = world.group(room="")
    maria = world.client("C1", "Maria", "Gonzalez", groups=[group])
    world.attendance(maria, world.session(group, day, status="open"), local(day, 9, 5), None)
    files = export(runner, tmp_path / "out", "2026-03-04", "2026-03-04")
    attendance_csv = runner.invoke(args=["export", "attendance", "--from", "2026-03-04", "--to", "2026-03-04"])
    session, visit = files["Encounter"]
    assert session["status"] == visit["status"] == "in-progress"
    assert visit["length"]["value"] == 85 == int(attendance_csv.stdout.splitlines()[1].split(",")[8])
    assert "location" not in visit and "participant" not in visit


@pytest.mark.parametrize("code, system", [
    ("90853", "http://www.ama-assn.org/go/cpt"), ("h0015", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
    ("S9480", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"), ("0591T", "http://www.ama-assn.org/go/cpt"),
])
def test_the_service_code_setting(code, system, tmp_path):
    settings = {"INSTANCE_PATH": str(tmp_path), "TIMEZONE": "America/New_York", "SCAN_RETENTION_DAYS": 90,
                "OFFLINE_SCAN_MAX_AGE_HOURS": 12, **from_environment({"IOP_FHIR_SERVICE_CODE": f" {code} ",
                                                                      "IOP_INSTANCE_PATH": str(tmp_path)})}
    finish(settings)
    assert settings["FHIR_SERVICE_CODE"] == code.upper()
    assert fhir.service_code_system(settings["FHIR_SERVICE_CODE"]) == system


@pytest.mark.parametrize("code", ["9085", "908531", "W1234", "H00 15", "group therapy"])
def test_a_service_code_that_is_neither_cpt_nor_hcpcs_is_refused(code, tmp_path):
    settings = {"INSTANCE_PATH": str(tmp_path), "TIMEZONE": "America/New_York", "SCAN_RETENTION_DAYS": 90,
                "OFFLINE_SCAN_MAX_AGE_HOURS": 12, "FHIR_SERVICE_CODE": code}
    with pytest.raises(ConfigError, match="IOP_FHIR_SERVICE_CODE must be a CPT code"):
        finish(settings)


def test_the_service_code_is_the_encounter_type(clinic, runner, tmp_path, app):
    app.config["FHIR_SERVICE_CODE"] = "H0015"
    files = export(runner, tmp_path / "out")
    assert {json.dumps(e["type"]) for e in files["Encounter"]} == {json.dumps(
        [{"coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "H0015"}]}])}


# ---- the command line: refusals, files, audit --------------------------------------------------------

@pytest.mark.parametrize("first, last, with_folder, message", [
    ("2026-03-10", "2026-03-04", True, "The range is reversed: 2026-03-10 is after 2026-03-04."),
    ("2020-01-01", "2023-01-01", True, "A range may cover at most 3 years"),
    ("2026-02-30", "2026-03-01", True, "--from must be a date like 2026-03-02, not '2026-02-30'."),
    ("2026-03-01", "soon", True, "--to must be a date"),
    ("2026-03-01", "2026-03-02", False, "The FHIR export writes a folder of files: add -o FOLDER."),
])
def test_bad_requests_are_exit_1_with_one_line(runner, tmp_path, first, last, with_folder, message):
    folder = ["-o", str(tmp_path / "out")] if with_folder else []
    result = runner.invoke(args=["export", "fhir", "--from", first, "--to", last, *folder])
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_target_that_is_a_file_or_a_full_folder_is_refused_and_left_alone(clinic, runner, tmp_path, app):
    work = tmp_path / "exports"
    work.mkdir()
    a_file = work / "notes.txt"
    a_file.write_text("keep me")
    full = work / "full"
    full.mkdir()
    (full / "Patient.ndjson").write_text("older export\n")
    for target, message in ((a_file, "is a file"), (full, "already exists and is not empty"),
                            (work / "missing" / "out", "does not exist")):
        result = runner.invoke(args=["export", "fhir", "--from", RANGE[0], "--to", RANGE[1], "-o", str(target)])
        assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
    assert a_file.read_text() == "keep me"
    assert [p.name for p in full.iterdir()] == ["Patient.ndjson"]
    assert (full / "Patient.ndjson").read_text() == "older export\n"
    assert sorted(p.name for p in work.iterdir()) == ["full", "notes.txt"]  # no partial folder left
    assert _events(app) == []  # a refused request exported nothing


def test_files_are_private_and_an_empty_folder_is_used(clinic, runner, tmp_path, app):
    target = tmp_path / "exports" / "empty"
    target.mkdir(parents=True)
    result = runner.invoke(args=["export", "fhir", "--from", RANGE[0], "--to", RANGE[1], "-o", str(target)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "Wrote 20 Encounter, 4 Patient, 1 Practitioner, 3 Group resource(s)" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for kind in fhir.RESOURCE_TYPES:
        assert stat.S_IMODE((target / f"{kind}.ndjson").stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["empty"]
    [event] = _events(app)
    assert event.user_id is None and event.target == "export:fhir"
    assert event.detail == {"via": "cli", "first": RANGE[0], "last": RANGE[1], "format": "ndjson", "rows": 28,
                            "resources": {"Encounter": 20, "Patient": 4, "Practitioner": 1, "Group": 3}}


def test_a_failure_midway_leaves_nothing_and_is_audited_as_incomplete(clinic, runner, tmp_path, app, monkeypatch):
    def broken(self, record, participant, location):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fhir._Writer, "session_encounter", broken)
    work = tmp_path / "exports"
    work.mkdir()
    result = runner.invoke(args=["export", "fhir", "--from", RANGE[0], "--to", RANGE[1], "-o", str(work / "out")])
    assert result.exit_code == 1 and "cannot be written (No space left on device)" in result.stderr
    assert list(work.iterdir()) == []
    [event] = _events(app)
    assert event.detail["complete"] is False


def _events(app):
    with app.app_context():
        return db.session().scalars(select(AuditEvent).where(AuditEvent.action == "export.fhir")).all()


# ---- the web: the Exports page's zip -----------------------------------------------------------------

class ExportForm(HTMLParser):
    """The exports form: its hidden and date fields, and the FHIR button's formaction."""

    def __init__(self):
        super().__init__()
        self.fields, self.fhir_action, self.fhir_label, self._in_form, self._in_button = {}, None, "", False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "export-form" in (attrs.get("class") or ""):
            self._in_form = True
        elif self._in_form and tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value", "")
        elif self._in_form and tag == "button" and "fhir" in (attrs.get("formaction") or ""):
            self.fhir_action, self._in_button = attrs["formaction"], True

    def handle_data(self, data):
        if self._in_button:
            self.fhir_label += data

    def handle_endtag(self, tag):
        self._in_form = self._in_form and tag != "form"
        self._in_button = self._in_button and tag != "button"


def test_a_coordinator_downloads_the_zip_through_the_form_and_it_is_audited(clinic, client, auth, app, runner, tmp_path):
    auth.login("casey", role="coordinator")
    form = ExportForm()
    form.feed(client.get("/coordinator/exports").get_data(as_text=True))
    assert form.fhir_action == "/coordinator/exports/fhir" and "FHIR" in form.fhir_label
    assert form.fields["csrf_token"]
    response = client.post(form.fhir_action, data={**form.fields, "first": RANGE[0], "last": RANGE[1]})
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "application/zip" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == f'attachment; filename="fhir-{RANGE[0]}-to-{RANGE[1]}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert sorted(archive.namelist()) == sorted(f"{kind}.ndjson" for kind in fhir.RESOURCE_TYPES)
    from_web = {kind: [json.loads(line) for line in archive.read(f"{kind}.ndjson").decode().splitlines()]
                for kind in fhir.RESOURCE_TYPES}
    assert from_web == export(runner, tmp_path / "cli")  # the same export as the command line's
    web_event = next(e for e in _events(app) if e.detail["via"] == "web")
    assert web_event.username == "casey"
    assert web_event.detail == {"via": "web", "first": RANGE[0], "last": RANGE[1], "format": "zip", "rows": 28,
                                "resources": {"Encounter": 20, "Patient": 4, "Practitioner": 1, "Group": 3}}


def test_the_web_refuses_a_bad_range_or_a_missing_token_and_facilitators(clinic, client, auth, app):
    auth.login("casey", role="coordinator")
    token = auth.csrf("/coordinator/exports")
    reversed_range = client.post("/coordinator/exports/fhir", data={"first": "2026-03-08", "last": "2026-03-01",
                                                                    "csrf_token": token})
    assert reversed_range.status_code == 400 and "The range is reversed" in reversed_range.get_data(as_text=True)
    assert client.post("/coordinator/exports/fhir", data={"first": RANGE[0], "last": RANGE[1]}).status_code == 400
    auth.logout()
    auth.login("dana", password="correct horse 1")
    token = auth.csrf()
    refused = client.post("/coordinator/exports/fhir", data={"first": RANGE[0], "last": RANGE[1], "csrf_token": token})
    assert refused.status_code == 403
    assert _events(app) == []


@pytest.mark.browser
def test_the_zip_downloads_in_a_real_browser(clinic, live_server, auth, page, app):
    auth.make_user("pat", role="coordinator", password="a long password")
    browser_sign_in(page, live_server.url, "pat", "a long password")
    page.goto(live_server.url + "/coordinator/exports")
    page.get_by_label("From", exact=True).fill(RANGE[0])
    page.get_by_label("To", exact=True).fill(RANGE[1])
    with page.expect_download() as waiting:
        page.get_by_role("button", name="FHIR R4 (zip)").click()
    download = waiting.value
    assert download.suggested_filename == f"fhir-{RANGE[0]}-to-{RANGE[1]}.zip"
    archive = zipfile.ZipFile(download.path())
    assert len(archive.read("Encounter.ndjson").decode().splitlines()) == 20
    [event] = _events(app)
    assert event.username == "pat" and event.detail["format"] == "zip"

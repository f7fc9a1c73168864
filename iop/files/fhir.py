"""The FHIR R4 (4.0.1) export: the program's attendance as FHIR Bulk Data NDJSON for its own EHR.

One file a resource type (Encounter, Patient, Practitioner, Group), one resource a line, the form
EHRs load in bulk, so staff stop retyping attendance. A client's Encounter is one row of the
attendance export: the same statement (iop.exports.attendance_query), the same credited minutes;
its session's Encounter is its parent. Rows stream from the database; what stays in memory grows
with the clients, groups and facilitators of the range, never with its attendance.

Ids are a keyed hash (BLAKE2b under a key derived from the program's oldest secret) of what each
resource is in the database: the same on every export, so the EHR updates what it loaded before, yet
they carry no name, client id or row number, and no one without the key can make one or trace one
back to a record.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Iterator

from flask import current_app
from sqlalchemy import select

from iop import clock
from iop.config import signing_keys
from iop.files import exports
from iop.files.exports import ExportError
from iop.rules.service_codes import service_code_system
from iop.store import db
from iop.store.models import Attendance, ClientGroup, Group, GroupSession, StaffUser

RESOURCE_TYPES = ("Encounter", "Patient", "Practitioner", "Group")
# What each file holds, in a coordinator's words (the Exports page lists it).
RESOURCE_GUIDE = (
    ("Encounter.ndjson", "a client at a session, one a line: exactly the rows of the attendance export. Status "
                         "finished (in-progress while still in a running group; cancelled when excused); class "
                         "AMB in person or VR telehealth; type the service code; subject the Patient; participant "
                         "the facilitator; period the check-in to check-out (local time with its UTC offset); "
                         "length the credited minutes; location the room; partOf the session's Encounter. And "
                         "one Encounter per group session: its scheduled times, status and group."),
    ("Patient.ndjson", "each client with an Encounter: the program's client_id as identifier, and the name."),
    ("Practitioner.ndjson", "each facilitator of an exported session: an id, the full name as on group notes, "
                            "and the credentials."),
    ("Group.ndjson", "each group with an exported session: its code, name, whether it still meets, and its "
                     "members (the clients with an Encounter in it; inactive when no longer on its roster)."),
)
FORMAT = "ndjson"
ZIP_MIMETYPE = "application/zip"

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UCUM = "http://unitsofmeasure.org"
ENCOUNTER_CLASSES = {"in_person": ("AMB", "ambulatory"), "telehealth": ("VR", "virtual")}
PRIMARY_PERFORMER = [{"coding": [{"system": PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}]}]

# The program's identifier systems: arcs under its own OID (Ids.oid).
CLIENT_IDS, ENCOUNTER_IDS, GROUP_CODES, PRACTITIONER_IDS = 1, 2, 3, 4

_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))  # not allowed in a FHIR string


# ---- the mapping rules (pure) --------------------------------------------------------------------

def encounter_class(modality: str) -> dict:
    """Encounter.class for an attendance's modality: in person is ambulatory (AMB), telehealth virtual (VR)."""
    try:
        code, display = ENCOUNTER_CLASSES[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}") from None
    return {"system": ACT_CODE, "code": code, "display": display}


def client_encounter_status(status: str, check_out: datetime | None, ends: datetime, now: datetime) -> str:
    """Excused is cancelled; present is finished, or in progress while the client is still in the room."""
    if status == "excused":
        return "cancelled"
    return "in-progress" if check_out is None and now < ends else "finished"


def session_encounter_status(status: str, starts: datetime, ends: datetime, now: datetime) -> str:
    if status == "cancelled":
        return "cancelled"
    if status == "closed" or now >= ends:
        return "finished"
    return "in-progress" if status == "open" or now >= starts else "planned"


def local_instant(moment: datetime, tz) -> str:
    """A FHIR dateTime in the program's zone with its UTC offset that day (DST-correct), to the second."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


def period(start: datetime | None, end: datetime | None, tz) -> dict | None:
    times = {}
    if start is not None:
        times["start"] = local_instant(start, tz)
    if end is not None:
        times["end"] = local_instant(end, tz)
    return times or None


def fhir_string(value: str | None) -> str | None:
    """Stored text as a FHIR string (no control characters, no outer blanks), None when nothing is left."""
    cleaned = (value or "").translate(_CONTROL).strip()
    return cleaned or None


class Ids:
    """Opaque, stable resource ids and the program's identifier systems, keyed by its secret."""

    def __init__(self, secret: str):
        # A key of its own for ids (the secret also signs cards and sessions); BLAKE2b keyed is a MAC.
        self._key = hmac.new(secret.encode("utf-8"), b"iop-kiosk fhir ids", hashlib.sha256).digest()
        # A UUID-based OID (ITU-T X.667 arc 2.25) of the program's own: its systems are arcs beneath it.
        self.oid = f"urn:oid:2.25.{uuid.UUID(bytes=self._digest('program'), version=4).int}"

    def _digest(self, identity: str) -> bytes:
        return hashlib.blake2b(identity.encode("ascii"), key=self._key, digest_size=16).digest()

    def of(self, kind: str, *identity: int) -> str:
        """The id of one resource: 32 hex digits (128 bits) of the keyed hash of its kind and database keys."""
        return self._digest("/".join((kind, *map(str, identity)))).hex()

    def system(self, arc: int) -> str:
        return f"{self.oid}.{arc}"


def program_ids() -> Ids:
    """The program's Ids: under its oldest secret still configured, so a key rotation keeps them."""
    return Ids(signing_keys(current_app.config)[0])


# ---- the files -----------------------------------------------------------------------------------

def _attendance(first: date, last: date, now: datetime) -> Iterator:
    """The attendance export's rows with what the resources need beside them."""
    query = (  # the attendance export's statement carries each record's modality (its last column)
        exports.attendance_query(first, last, now)
        .add_columns(Attendance.session_id, Attendance.client_key.label("client_key"), GroupSession.group_id,
                     GroupSession.status.label("session_status"), GroupSession.starts_at, GroupSession.ends_at,
                     GroupSession.facilitator_id, Group.name.label("group_name"), Group.room,
                     Group.active.label("group_active"), StaffUser.display_name, StaffUser.credentials)
        .outerjoin(StaffUser, StaffUser.id == GroupSession.facilitator_id)
    )
    return exports.streamed(query)


class _Writer:
    """Writes the resources of one export into its open files, each resource once."""

    def __init__(self, files: dict, counts: dict, now: datetime):
        config = current_app.config
        self.files, self.counts, self.now = files, counts, now
        self.tz = clock.program_tz()
        self.ids = program_ids()
        code = config["FHIR_SERVICE_CODE"]
        self.service_type = [{"coding": [{"system": service_code_system(code), "code": code}]}]
        self.encounter_system = self.ids.system(ENCOUNTER_IDS)
        self.encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.patients: dict[int, dict] = {}  # client pk: the reference to its Patient
        self.practitioners: set[int] = set()
        self.groups: dict[int, tuple[str, str, bool]] = {}
        self.members: dict[int, dict[int, str]] = {}  # group key: {client_key: client_id}

    def write(self, resource: dict) -> None:
        kind = resource["resourceType"]
        self.files[kind].write(self.encode(resource) + "\n")
        self.counts[kind] += 1

    def run(self, records) -> None:
        session_pk = None
        session_reference = participant = location = None
        for record in records:
            if record.session_id != session_pk:
                # Rows come in session order (the attendance export's), so each session starts once.
                session_pk = record.session_id
                participant = self.practitioner(record)
                room = fhir_string(record.room)
                location = [{"location": {"display": room}}] if room else None
                session_reference = {"reference": "Encounter/" + self.session_encounter(record, participant, location)}
                self.groups.setdefault(record.group_id, (record.code, record.group_name, record.group_active))
            subject = self.patients.get(record.client_key) or self.patient(record)
            self.members.setdefault(record.group_id, {})[record.client_key] = record.client_id
            self.client_encounter(record, subject, participant, location, session_reference)
        self.write_groups()

    def practitioner(self, record) -> list | None:
        """The session's facilitator as an Encounter participant (written to Practitioner on first sight)."""
        staff_pk = record.facilitator_id
        if staff_pk is None:
            return None
        resource_id = self.ids.of("Practitioner", staff_pk)
        if staff_pk not in self.practitioners:
            self.practitioners.add(staff_pk)
            resource = {"resourceType": "Practitioner", "id": resource_id,
                        "identifier": [{"system": self.ids.system(PRACTITIONER_IDS), "value": resource_id}]}
            name, credentials = fhir_string(record.display_name), fhir_string(record.credentials)
            if name:
                resource["name"] = [{"text": name}]
            if credentials:
                resource["qualification"] = [{"code": {"text": credentials}}]
            self.write(resource)
        return [{"type": PRIMARY_PERFORMER, "individual": {"reference": "Practitioner/" + resource_id}}]

    def session_encounter(self, record, participant, location) -> str:
        resource_id = self.ids.of("GroupSession", record.session_id)
        resource = {
            "resourceType": "Encounter", "id": resource_id,
            "identifier": [{"system": self.encounter_system, "value": resource_id}],
            "status": session_encounter_status(record.session_status, record.starts_at, record.ends_at, self.now),
            "class": encounter_class("in_person"), "type": self.service_type,
            "subject": {"reference": "Group/" + self.ids.of("Group", record.group_id)},
        }
        if participant:
            resource["participant"] = participant
        resource["period"] = period(record.starts_at, record.ends_at, self.tz)
        if location:
            resource["location"] = location
        self.write(resource)
        return resource_id

    def client_encounter(self, record, subject, participant, location, session_reference) -> None:
        # Keyed by session and client, not by the attendance row: a correction (a new row replacing a
        # voided one) updates the same Encounter in the EHR instead of adding a second.
        resource_id = self.ids.of("Attendance", record.session_id, record.client_key)
        excused = record.status == "excused"
        resource = {
            "resourceType": "Encounter", "id": resource_id,
            "identifier": [{"system": self.encounter_system, "value": resource_id}],
            "status": client_encounter_status(record.status, record.check_out_at, record.ends_at, self.now),
            "class": encounter_class(record.modality), "type": self.service_type,
            "subject": subject,
        }
        if participant:
            resource["participant"] = participant
        # An excused absence has no times of its own: its period is the session's it excuses.
        times = (period(record.starts_at, record.ends_at, self.tz) if excused
                 else period(record.check_in_at, record.check_out_at, self.tz))
        if times:
            resource["period"] = times
        resource["length"] = {"value": exports.credited(record), "unit": "min", "system": UCUM, "code": "min"}
        if location:
            resource["location"] = location
        resource["partOf"] = session_reference
        self.write(resource)

    def patient(self, record) -> dict:
        """Write the client's Patient (on first sight); the reference to it."""
        resource_id = self.ids.of("Client", record.client_key)
        self.patients[record.client_key] = reference = {"reference": "Patient/" + resource_id}
        resource = {"resourceType": "Patient", "id": resource_id,
                    "identifier": [{"system": self.ids.system(CLIENT_IDS), "value": record.client_id}]}
        name = {}
        if family := fhir_string(record.last_name):
            name["family"] = family
        if given := fhir_string(record.first_name):
            name["given"] = [given]
        if name:
            resource["name"] = [name]
        self.write(resource)
        return reference

    def write_groups(self) -> None:
        """Each group of the export, its members the clients it holds Encounters of (a client no longer on
        the group's roster is an inactive member). Membership dates are not recorded, so no period."""
        if not self.groups:
            return
        on_roster = set(db.session().execute(
            select(ClientGroup.group_id, ClientGroup.client_key).where(ClientGroup.group_id.in_(list(self.groups)))
        ).tuples())
        for group_pk, (code, name, active) in sorted(self.groups.items(), key=lambda item: item[1][0]):
            members = []
            for client_key, _client_id in sorted(self.members[group_pk].items(), key=lambda item: item[1]):
                member = {"entity": self.patients[client_key]}
                if (group_pk, client_key) not in on_roster:
                    member["inactive"] = True
                members.append(member)
            resource = {"resourceType": "Group", "id": self.ids.of("Group", group_pk),
                        "identifier": [{"system": self.ids.system(GROUP_CODES), "value": code}],
                        "active": bool(active), "type": "person", "actual": True}
            if name := fhir_string(name):
                resource["name"] = name
            resource["member"] = members
            self.write(resource)


def write_files(first: date, last: date, folder: Path, counts: dict | None = None,
                now: datetime | None = None) -> dict[str, int]:
    """The four NDJSON files (0600) in `folder`, which exists; the resources written by type.
    `counts` is filled as they are written, so a caller knows how far a failed export got."""
    counts = counts if counts is not None else {}
    counts.update(dict.fromkeys(RESOURCE_TYPES, 0))
    with contextlib.ExitStack() as stack:
        files = {}
        for kind in RESOURCE_TYPES:
            descriptor = os.open(folder / f"{kind}.{FORMAT}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            files[kind] = stack.enter_context(os.fdopen(descriptor, "w", encoding="utf-8", newline="\n"))
        now = now or clock.now()
        records = stack.enter_context(contextlib.closing(_attendance(first, last, now)))
        _Writer(files, counts, now).run(records)
    return counts


# ---- the command line -----------------------------------------------------------------------------

def _check_target(folder: Path) -> None:
    try:
        if folder.exists() and not folder.is_dir():
            raise ExportError(f"{folder} is a file; the FHIR export writes a folder: name a new one.")
        if folder.is_dir() and any(folder.iterdir()):
            raise ExportError(f"{folder} already exists and is not empty; name a new or empty folder.")
    except OSError as exc:
        raise ExportError(f"{folder} cannot be written ({exc.strerror}).") from None
    if not folder.parent.is_dir():
        raise ExportError(f"{folder} cannot be written: the folder {folder.parent} does not exist.")


def export_folder(first: date, last: date, folder: Path, actor=None) -> dict[str, int]:
    """Write the export into `folder` (new, or empty); audited; the resources written by type.

    The files are written in a hidden folder beside it, renamed into place at the end: an error
    leaves nothing behind, and never half an export."""
    exports.check_range(first, last)
    folder = Path(folder)
    _check_target(folder)
    try:
        partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    except OSError as exc:
        raise ExportError(f"{folder} cannot be written ({exc.strerror}).") from None
    counts: dict[str, int] = {}
    complete = False
    try:
        try:
            write_files(first, last, partial, counts)
            os.rename(partial, folder)  # replaces an empty folder; refuses one that filled meanwhile
        except OSError as exc:  # a full disk, or the folder filled meanwhile
            raise ExportError(f"{folder} cannot be written ({exc.strerror}).") from None
        complete = True
    finally:
        if not complete:
            shutil.rmtree(partial, ignore_errors=True)
        exports.record("fhir", first, last, FORMAT, sum(counts.values()), actor,
                       via="cli" if actor is None else "app", complete=complete, resources=counts)
    return counts


# ---- the web --------------------------------------------------------------------------------------

def filename(first: date, last: date) -> str:
    return f"fhir-{first.isoformat()}-to-{last.isoformat()}.zip"


def web_stream(first: date, last: date, actor) -> Iterator[bytes]:
    """The export as a zip of the four files, in byte chunks for a streamed response; audited when it
    ends (or is cut off). The files are written to a private temporary folder first (a zip holds one
    file at a time, and the four are written together), then zipped into a temporary file and sent."""
    exports.check_range(first, last)

    def generate():
        counts: dict[str, int] = {}
        complete = False
        try:
            with tempfile.TemporaryDirectory(prefix="iop-fhir-") as work, tempfile.TemporaryFile() as spool:
                write_files(first, last, Path(work), counts)
                with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
                    for kind in RESOURCE_TYPES:
                        archive.write(Path(work) / f"{kind}.{FORMAT}", f"{kind}.{FORMAT}")
                spool.seek(0)
                while chunk := spool.read(exports.CHUNK_BYTES):
                    yield chunk
            complete = True
        finally:
            exports.record("fhir", first, last, "zip", sum(counts.values()), actor, via="web", complete=complete,
                           resources=counts)

    return generate()

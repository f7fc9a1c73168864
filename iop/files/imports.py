"""Bulk loads from CSV (docs/interface.md): groups, clients with plans, attendance.

Every row is checked first, against the file and against the database; one bad row means
nothing is loaded, and each bad row is reported as "line N: reason". The load is one unit of
work. Natural keys make a second load of the same file a no-op: a group by its code, a client
by client_id (a changed row updates that client, audited), an attendance by client and session.
"""
from __future__ import annotations

import csv
import io
import sys
import time as wall
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from iop import clock
from iop.clinic import audit, program
from iop.rules import entry, hours
from iop.store import db
from iop.store.models import Attendance, Client, Group, GroupSession, LevelOfCare, Plan, PlanPhase

# The web form refuses bigger uploads (use `iop import`); the command refuses absurd files.
UPLOAD_MAX_BYTES = 5 * 1024 * 1024
FILE_MAX_BYTES = 100 * 1024 * 1024  # about 2.5 million attendance rows
PROGRESS_MIN_ROWS = 2000  # smaller files finish before a bar would help
INSERT_CHUNK = 5000


@dataclass(frozen=True)
class Layout:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


LAYOUTS = {
    "groups": Layout(("code", "name", "track", "room", "weekdays", "start", "end")),
    "clients": Layout(("client_id", "first_name", "last_name", "level_of_care", "plan_start", "plan_end",
                       "weekly_hours", "days_per_week", "groups"), ("phases",)),
    "attendance": Layout(("client_id", "group", "date", "check_in", "check_out"), ("status", "modality")),
    "authorizations": Layout(("client_id", "payer", "number", "service", "unit", "units", "start", "end")),
}
KINDS = tuple(LAYOUTS)
NOUNS = {"groups": ("group", "groups"), "clients": ("client", "clients"),
         "attendance": ("attendance", "attendances"), "authorizations": ("authorization", "authorizations")}


class ImportFailed(Exception):
    """Nothing was loaded. `problems` lists "line N: reason"; `summary` is one line for the person."""

    def __init__(self, summary: str, problems: list[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems or []


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def summary(self) -> str:
        one, many = NOUNS[self.kind]
        noun = one if self.rows == 1 else many
        return (f"Imported {self.rows} {noun}: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} already there.")


WIDTH = "__width__"  # marks a row whose number of values does not match the header


class RowProblem(ValueError):
    """One row's reason; the caller adds its line number."""


@dataclass(slots=True)
class Row:
    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


# ---- entry points --------------------------------------------------------------------------

def import_file(kind: str, path: Path, progress: bool = False, actor=None) -> ImportResult:
    """Load a CSV file from disk (the `iop import` command)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > FILE_MAX_BYTES:
            raise ImportFailed(f"Nothing was imported: {path.name} is larger than "
                               f"{FILE_MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportFailed(f"Nothing was imported: there is no file {path}.") from None
    except IsADirectoryError:
        raise ImportFailed(f"Nothing was imported: {path} is a folder, not a CSV file.") from None
    except OSError as exc:
        raise ImportFailed(f"Nothing was imported: {path} cannot be read ({exc.strerror}).") from None
    return import_csv(kind, raw, progress=progress, actor=actor, via="cli")


class UploadTooLarge(ImportFailed):
    """An upload over UPLOAD_MAX_BYTES (nothing past the limit was read)."""


def import_upload(kind: str, stream, actor=None) -> ImportResult:
    """Load a CSV uploaded on the Exports page, reading at most UPLOAD_MAX_BYTES of it."""
    raw = stream.read(UPLOAD_MAX_BYTES + 1)
    if len(raw) > UPLOAD_MAX_BYTES:
        raise UploadTooLarge(f"Nothing was imported: the file is larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB. "
                             "Split it, or load it with the `iop import` command.")
    return import_csv(kind, raw, actor=actor, via="web")


def import_csv(kind: str, raw: bytes, progress: bool = False, actor=None, via: str = "web") -> ImportResult:
    """Check every row of `raw`, then load them all in one unit of work, or raise ImportFailed."""
    if kind not in LAYOUTS:
        raise ImportFailed(f"Nothing was imported: the kind must be one of {', '.join(KINDS)}.")
    rows = read_rows(kind, raw)
    bar = Progress(len(rows), enabled=progress)
    loader = {"groups": _GroupImport, "clients": _ClientImport, "attendance": _AttendanceImport,
              "authorizations": _AuthorizationImport}[kind]
    with db.transaction():  # the checks read the same snapshot the load writes to
        job = loader(rows, bar, actor)
        problems = job.check()
        if problems:
            bar.done()
            raise ImportFailed(f"Nothing was imported: {_count(len(problems), 'row')} with problems "
                               f"(of {len(rows)}).", problems)
        result = job.load()
        result.rows = len(rows)
        audit.record(f"import.{kind}", target=f"import:{kind}", user=actor, via=via, rows=result.rows,
                     added=result.added, updated=result.updated, unchanged=result.unchanged)
    bar.done()
    if result.added or result.updated:
        db.refresh_statistics()
    return result


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---- reading the file ----------------------------------------------------------------------

def read_rows(kind: str, raw: bytes) -> list[Row]:
    """The data rows of a CSV with the kind's header; ImportFailed for a file that cannot be read."""
    layout = LAYOUTS[kind]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportFailed("Nothing was imported: the file is not UTF-8 text. Save it as \"CSV UTF-8\" "
                           "and try again.", [f"line {line}: this line holds bytes that are not UTF-8 text"]) \
            from None
    text = unicodedata.normalize("NFC", text)  # a name typed two ways is one name (the cells' rules say so too)
    if not text.strip():
        raise ImportFailed("Nothing was imported: the file is empty.",
                           [f"line 1: the file is empty; the first line must be the header "
                            f"{','.join(layout.required)}"])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        columns = _check_header(header, layout)
        rows = []
        start = reader.line_num + 1
        for values in reader:
            if values and any(value.strip() for value in values):
                while len(values) > len(columns) and not values[-1].strip():
                    values.pop()  # spreadsheets add empty trailing cells
                if len(values) != len(columns):
                    rows.append(Row(start, {WIDTH: f"{len(values)} values, but the header has {len(columns)} columns"}))
                else:
                    rows.append(Row(start, {c: v.strip() for c, v in zip(columns, values)}))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFailed("Nothing was imported: the file is not a readable CSV.",
                           [f"line {reader.line_num}: {exc}"]) from None
    if not rows:
        raise ImportFailed("Nothing was imported: the file has a header but no rows.",
                           ["line 2: no rows after the header"])
    return rows


def _check_header(header: list[str], layout: Layout) -> list[str]:
    columns = [name.strip().lower() for name in header]
    expected = ",".join(layout.required) + "".join(f"[,{name}]" for name in layout.optional)
    unknown = [name for name in columns if name not in layout.columns]
    missing = [name for name in layout.required if name not in columns]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    reasons = []
    if missing:
        reasons.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        reasons.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}")
    if repeated:
        reasons.append(f"repeated column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}")
    if reasons:
        raise ImportFailed("Nothing was imported: the header row is not the expected one.",
                           [f"line 1: {'; '.join(reasons)} (the header must be {expected})"])
    return columns


# ---- values --------------------------------------------------------------------------------
# Each cell is read by iop.rules.entry, the rules the coordinator's forms use.

GROUP_CELL = entry.Field("group", "The group", entry.GROUP_CODE.most)
DATE_CELL = entry.Field("date", "The date")
CHECK_IN_CELL = entry.Field("check_in", "The check-in time")
CHECK_OUT_CELL = entry.Field("check_out", "The check-out time", needed=False)

# ---- the three kinds -----------------------------------------------------------------------

class _Import:
    kind = ""

    def __init__(self, rows: list[Row], bar: Progress, actor):
        self.rows = rows
        self.bar = bar
        self.actor = actor
        self.session = db.session()
        self.problems: dict[int, list[str]] = {}
        self.result = ImportResult(self.kind)

    def problem(self, row: Row, reason: str) -> None:
        self.problems.setdefault(row.line, []).append(reason)

    def check(self) -> list[str]:
        self.bar.phase("Checking")
        for index, row in enumerate(self.rows, 1):
            try:
                if WIDTH in row.values:
                    raise RowProblem(row.values[WIDTH])
                self.check_row(row)
            except RowProblem as exc:
                self.problem(row, str(exc))
            except entry.EntryError as exc:
                self.problem(row, exc.in_file)
            row.values = {}  # checked: what is needed was parsed, and big files need the room
            self.bar.update(index)
        self.check_together()
        return [f"line {line}: {'; '.join(reasons)}" for line, reasons in sorted(self.problems.items())]

    def check_row(self, row: Row) -> None:
        raise NotImplementedError

    def check_together(self) -> None:
        """Problems between rows, and between rows and the records already there."""

    def load(self) -> ImportResult:
        raise NotImplementedError


class _GroupImport(_Import):
    kind = "groups"

    def __init__(self, rows, bar, actor):
        super().__init__(rows, bar, actor)
        from curriculum.catalog import catalog

        self.tracks = catalog().tracks
        self.existing = {g.code: g for g in self.session.scalars(select(Group))}
        self.parsed: list[tuple[Row, dict]] = []
        self.seen: dict[str, int] = {}

    def check_row(self, row):
        code = entry.group_code(row["code"])
        if code in self.seen:
            raise RowProblem(f"group {code} is already on line {self.seen[code]}")
        self.seen[code] = row.line
        track = entry.text(row["track"], entry.TRACK)
        if track not in self.tracks:
            raise RowProblem(f"track {track!r} is not a curriculum track (known: {', '.join(sorted(self.tracks))})")
        start, end = entry.clock_time(row["start"], entry.START), entry.clock_time(row["end"], entry.END)
        entry.time_range(start, end)
        self.parsed.append((row, dict(
            code=code, name=entry.text(row["name"], entry.GROUP_NAME), track=track,
            room=entry.text(row["room"], entry.ROOM), weekdays=entry.weekdays(row["weekdays"]), start=start, end=end)))

    def load(self):
        for row, values in self.parsed:
            group = self.existing.get(values["code"])
            if group is None:
                self.session.add(Group(**values))
                self.result.added += 1
                continue
            changed = sorted(name for name, value in values.items() if getattr(group, name) != value)
            if not changed:
                self.result.unchanged += 1
                continue
            for name in changed:
                setattr(group, name, values[name])
            self.session.flush()
            rescheduled = program.follow_schedule(group, clock.local_date(clock.now(), clock.program_tz()))
            audit.record("group.updated", target=f"group:{group.code}", user=self.actor, via="import",
                         fields=changed, sessions_changed=rescheduled)
            self.result.updated += 1
        return self.result


@dataclass
class _ClientRow:
    row: Row
    client_id: str
    first_name: str
    last_name: str
    group_codes: list[str]
    plan: hours.PlanTerms | None


class _ClientImport(_Import):
    kind = "clients"

    def __init__(self, rows, bar, actor):
        super().__init__(rows, bar, actor)
        self.levels = set(self.session.scalars(select(LevelOfCare.code)))
        self.groups = {g.code: g for g in self.session.scalars(select(Group))}
        self.existing = {c.client_id: c for c in self.session.scalars(
            select(Client).options(selectinload(Client.plans).selectinload(Plan.phases),
                                   selectinload(Client.groups)))}
        self.parsed: list[_ClientRow] = []
        self.seen: dict[str, int] = {}

    def check_row(self, row):
        client_id = entry.client_id(row["client_id"])
        if client_id in self.seen:
            raise RowProblem(f"client {client_id} is already on line {self.seen[client_id]}")
        self.seen[client_id] = row.line
        first = entry.text(row["first_name"], entry.FIRST_NAME)
        last = entry.text(row["last_name"], entry.LAST_NAME)
        codes = entry.group_codes(row["groups"])
        unknown = [code for code in codes if code not in self.groups]
        if unknown:
            raise RowProblem(f"unknown group{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             "(import groups first)")
        self.parsed.append(_ClientRow(row, client_id, first, last, codes, self._plan(row)))

    def _plan(self, row: Row) -> hours.PlanTerms | None:
        plan_columns = ("plan_end", "weekly_hours", "days_per_week", "phases")
        if not row["plan_start"]:
            if any(row[column] for column in plan_columns):
                raise RowProblem("plan_start is empty but other plan columns are filled; "
                                 "a plan needs its start date")
            if row["level_of_care"] and row["level_of_care"] not in self.levels:
                raise RowProblem(self._unknown_level(row["level_of_care"]))
            return None  # a client without a plan (yet)
        if row["level_of_care"] not in self.levels:
            raise RowProblem(self._unknown_level(row["level_of_care"]))
        start = entry.day(row["plan_start"], entry.PLAN_START)
        end = entry.day(row["plan_end"], entry.PLAN_END)
        if end is not None and end < start:
            raise RowProblem(f"plan_end {end} is before plan_start {start}")
        phases = entry.phases(row["phases"])
        problem = hours.phases_problem(phases)
        if problem:
            raise RowProblem(problem[0].lower() + problem[1:].rstrip("."))
        return hours.PlanTerms(
            start_date=start, end_date=end, weekly_minutes=entry.hours(row["weekly_hours"], entry.WEEKLY_HOURS),
            days_per_week=entry.days_per_week(row["days_per_week"], entry.DAYS_PER_WEEK),
            level_of_care=row["level_of_care"], phases=phases)

    def _unknown_level(self, code: str) -> str:
        return f"level_of_care {code!r} is not a known level (known: {', '.join(sorted(self.levels))})"

    def check_together(self):
        for item in self.parsed:
            client = self.existing.get(item.client_id)
            if client is None or item.plan is None:
                continue
            for plan in client.plans:
                if plan.start_date == item.plan.start_date:
                    continue  # the same plan: the row updates it
                other = hours.plan_terms(plan)
                if hours.dates_overlap(other, item.plan):
                    self.problem(item.row, (
                        f"this plan overlaps {item.client_id}'s plan that starts {plan.start_date} "
                        f"(ends {plan.end_date or 'open'}); end that plan first, or give its plan_start "
                        "to change it"))

    def load(self):
        for item in self.parsed:
            client = self.existing.get(item.client_id)
            groups = [self.groups[code] for code in item.group_codes]
            if client is None:
                client = Client(client_id=item.client_id, first_name=item.first_name, last_name=item.last_name)
                client.groups = groups
                if item.plan is not None:
                    client.plans.append(_new_plan(item.plan))
                self.session.add(client)
                self.result.added += 1
                continue
            changed = []
            if (client.first_name, client.last_name) != (item.first_name, item.last_name):
                client.first_name, client.last_name = item.first_name, item.last_name
                changed.append("name")
            if sorted(g.code for g in client.groups) != sorted(item.group_codes):
                client.groups = groups
                changed.append("groups")
            if item.plan is not None:
                changed += _apply_plan(client, item.plan)
            if changed:
                self.session.flush()
                audit.record("client.updated", target=f"client:{client.public_id}", user=self.actor,
                             via="import", fields=changed)
                self.result.updated += 1
            else:
                self.result.unchanged += 1
        return self.result


def _new_plan(terms: hours.PlanTerms) -> Plan:
    plan = Plan(level_of_care=terms.level_of_care, start_date=terms.start_date, end_date=terms.end_date,
                weekly_minutes=terms.weekly_minutes, days_per_week=terms.days_per_week)
    plan.phases = _new_phases(terms)
    return plan


def _new_phases(terms: hours.PlanTerms) -> list[PlanPhase]:
    return [PlanPhase(first_week=p.first_week, last_week=p.last_week, weekly_minutes=p.weekly_minutes,
                      days_per_week=p.days_per_week) for p in terms.phases]


def _apply_plan(client: Client, terms: hours.PlanTerms) -> list[str]:
    """Add the plan, or update the client's plan with the same start; the fields that changed."""
    plan = next((p for p in client.plans if p.start_date == terms.start_date), None)
    if plan is None:
        client.plans.append(_new_plan(terms))
        return ["plan added"]
    if hours.plan_terms(plan) == terms:
        return []
    changed = [name for name in ("level_of_care", "end_date", "weekly_minutes", "days_per_week")
               if getattr(plan, name) != getattr(terms, name)]
    for name in changed:
        setattr(plan, name, getattr(terms, name))
    if hours.plan_terms(plan).phases != terms.phases:
        plan.phases = _new_phases(terms)
        changed.append("phases")
    return [f"plan {name}" for name in changed]


@dataclass(slots=True)
class _Visit:
    """One attendance in time, from the file (line) or from the database (line None)."""

    client_key: int
    starts: datetime
    ends: datetime
    group_code: str
    day: date
    line: int | None = None


@dataclass(slots=True)
class _AttendanceRow:
    row: Row
    client: Client
    group: Group
    day: date
    status: str
    check_in: datetime | None
    check_out: datetime | None
    window: tuple[datetime, datetime]
    skip: bool = False
    modality: str = "in_person"


class _AttendanceImport(_Import):
    kind = "attendance"
    STATUSES = ("present", "excused")

    def __init__(self, rows, bar, actor):
        super().__init__(rows, bar, actor)
        from iop.clock import program_tz

        self.tz = program_tz()
        self.now = clock.now()
        self.clients: dict[str, Client] = {}
        wanted = {row["client_id"] for row in rows}
        for chunk in _chunks(sorted(wanted), 500):
            self.clients.update((c.client_id, c) for c in self.session.scalars(
                select(Client).where(Client.client_id.in_(chunk))))
        self.groups = {g.code: g for g in self.session.scalars(select(Group))}
        self.parsed: list[_AttendanceRow] = []
        self.seen: dict[tuple[int, int, date], int] = {}

    def check_row(self, row):
        client_id = entry.client_id(row["client_id"])
        client = self.clients.get(client_id)
        if client is None:
            raise RowProblem(f"unknown client_id {client_id!r}")
        code = entry.group_code(row["group"], GROUP_CELL)
        group = self.groups.get(code)
        if group is None:
            raise RowProblem(f"unknown group {code!r}")
        day = entry.day(row["date"], DATE_CELL)
        if day.weekday() not in group.weekday_numbers:
            raise RowProblem(f"group {group.code} does not meet on {day:%A}s ({day}; it meets {group.weekdays})")
        status = row["status"].lower() or "present"
        if status not in self.STATUSES:
            raise RowProblem(f"status {row['status']!r} must be present, excused or empty")
        check_in = check_out = None
        if status == "excused":
            if row["check_in"] or row["check_out"]:
                raise RowProblem("an excused row has empty check_in and check_out")
        else:
            if not row["check_in"]:
                raise RowProblem("check_in is empty (leave both times empty only with status excused)")
            check_in = self._moment(day, entry.clock_time(row["check_in"], CHECK_IN_CELL))
            if row["check_out"]:
                check_out = self._moment(day, entry.clock_time(row["check_out"], CHECK_OUT_CELL))
                if check_out < check_in:
                    raise RowProblem(f"check_out {row['check_out']} is before check_in {row['check_in']}")
            if check_in > self.now:
                raise RowProblem(f"check_in {day} {row['check_in']} is in the future")
        modality = entry.modality(row["modality"])
        key = (client.id, group.id, day)
        if key in self.seen:
            raise RowProblem(f"{client.client_id} at {group.code} on {day} is already on line {self.seen[key]}")
        self.seen[key] = row.line
        window = (self._moment(day, group.start), self._moment(day, group.end))
        self.parsed.append(_AttendanceRow(row, client, group, day, status, check_in, check_out, window,
                                          modality=modality))

    def _moment(self, day: date, at: time) -> datetime:
        from iop.clock import local_to_utc

        return local_to_utc(day, at, self.tz)

    def check_together(self):
        if not self.parsed:
            return
        first = min(item.day for item in self.parsed) - timedelta(days=1)
        last = max(item.day for item in self.parsed) + timedelta(days=1)
        client_keys = {item.client.id for item in self.parsed}
        # (status, check-in, check-out) of each unvoided record, by client, group and date: plain
        # columns, not ORM objects, since a year-long file meets a year of records.
        recorded: dict[tuple[int, int, date], tuple] = {}
        visits: dict[int, list[_Visit]] = {}
        query = (select(Attendance.client_key, GroupSession.group_id, GroupSession.date, Attendance.status,
                        Attendance.check_in_at, Attendance.check_out_at, GroupSession.ends_at)
                 .join(GroupSession, GroupSession.id == Attendance.session_id)
                 .where(GroupSession.date.between(first, last), Attendance.voided_at.is_(None)))
        group_codes = {g.id: g.code for g in self.groups.values()}
        for client_key, group_id, day, status, check_in, check_out, ends in self.session.execute(query):
            if client_key not in client_keys:
                continue
            recorded[(client_key, group_id, day)] = (status, check_in, check_out)
            if status == "present" and check_in is not None:
                visits.setdefault(client_key, []).append(_Visit(
                    client_key, check_in, check_out or max(ends, check_in), group_codes.get(group_id, "?"), day))
        for item in self.parsed:
            if item.row.line in self.problems:
                continue
            before = recorded.get((item.client.id, item.group.id, item.day))
            if before is not None:
                if before == (item.status, item.check_in, item.check_out):
                    item.skip = True
                    continue
                self.problem(item.row, (
                    f"{item.client.client_id} at {item.group.code} on {item.day} is already recorded "
                    f"as {self._describe(*before)}; "
                    "correct it in the app, not by import"))
                continue
            if item.status == "present":
                visits.setdefault(item.client.id, []).append(_Visit(
                    item.client.id, item.check_in, item.check_out or max(item.window[1], item.check_in),
                    item.group.code, item.day, item.row.line))
        rows_by_line = {item.row.line: item for item in self.parsed}
        for client_visits in visits.values():
            client_visits.sort(key=lambda v: (v.starts, v.ends))
            furthest: _Visit | None = None
            for visit in client_visits:
                if furthest is not None and hours.overlaps(furthest.starts, furthest.ends, visit.starts, visit.ends):
                    self._report_overlap(visit, furthest, rows_by_line)
                if furthest is None or visit.ends > furthest.ends:
                    furthest = visit

    def _report_overlap(self, later: _Visit, earlier: _Visit, rows_by_line) -> None:
        mine, other = (later, earlier) if later.line is not None else (earlier, later)
        if mine.line is None:
            return  # two records already in the database: not this file's doing
        where = (f"line {other.line}" if other.line is not None
                 else f"the recorded check-in at {other.group_code} on {other.day} "
                      f"({self._hhmm(other.starts)}-{self._hhmm(other.ends)})")
        item = rows_by_line[mine.line]
        self.problem(item.row, f"{item.client.client_id} cannot be in two places at once: this overlaps {where}")

    def _hhmm(self, moment: datetime | None) -> str:
        return moment.astimezone(self.tz).strftime("%H:%M") if moment else "no check-out"

    def _describe(self, status, check_in, check_out) -> str:
        if status == "excused":
            return "excused"
        return f"{self._hhmm(check_in)}-{self._hhmm(check_out)}"

    def load(self):
        from iop.clinic.sessions import ensure_session

        self.bar.phase("Loading")
        sessions: dict[tuple[int, date], int] = {}
        pending: list[dict] = []
        recorder = self.actor.id if self.actor is not None else None
        for index, item in enumerate(self.parsed, 1):
            self.bar.update(index)
            if item.skip:
                self.result.unchanged += 1
                continue
            key = (item.group.id, item.day)
            if key not in sessions:
                sessions[key] = ensure_session(item.group, item.day).id
            pending.append(dict(
                session_id=sessions[key], client_key=item.client.id, status=item.status,
                check_in_at=item.check_in, check_out_at=item.check_out, source="import",
                check_out_source="import" if item.check_out else None, recorded_by_id=recorder,
                created_at=self.now, modality=item.modality))
            self.result.added += 1
            if len(pending) >= INSERT_CHUNK:
                self.session.execute(insert(Attendance), pending)
                pending = []
        if pending:
            self.session.execute(insert(Attendance), pending)
        return self.result


class _AuthorizationImport(_Import):
    """Payer authorizations: a row with the client, service and number of one already kept updates it."""

    kind = "authorizations"

    def __init__(self, rows, bar, actor):
        super().__init__(rows, bar, actor)
        from iop.store import authorization_queries

        self.clients = authorization_queries.clients_by_id([row["client_id"] for row in rows])
        self.parsed: list[tuple[Row, int, object]] = []
        self.seen: dict[tuple[str, str, str], int] = {}

    def check_row(self, row):
        from iop.clinic import authorizations

        client_id = entry.client_id(row["client_id"])
        if client_id not in self.clients:
            raise RowProblem(f"unknown client_id {client_id!r}")
        try:
            fields = authorizations.import_fields(row.values)
        except entry.EntryError as exc:
            if exc.code == "end_before_start":
                raise RowProblem(f"end {row['end']} is before start {row['start']}") from None
            raise
        key = (client_id, fields.service, fields.number)
        if key in self.seen:
            raise RowProblem(f"{client_id}'s authorization {fields.number} for {fields.service} is already "
                             f"on line {self.seen[key]}")
        self.seen[key] = row.line
        self.parsed.append((row, self.clients[client_id], fields))

    def check_together(self):
        from iop.clinic import authorizations
        from iop.rules import authorizations as rules
        from iop.store import authorization_queries

        kept: dict[int, list] = {}
        for client_key in {client_key for _row, client_key, _fields in self.parsed}:
            kept[client_key] = authorization_queries.client_authorizations(client_key)
        for index, (row, client_key, fields) in enumerate(self.parsed):
            replaced = {(a.service, a.number) for _r, k, a in self.parsed if k == client_key}
            others = [a for a in kept[client_key] if (a.service, a.number) not in replaced]
            problem = authorizations.overlap_problem(fields, others)
            if problem is None:
                for other_row, other_key, other in self.parsed[:index]:
                    if other_key == client_key and rules.overlaps(fields.terms, other.terms):
                        problem = (f"these dates overlap line {other_row.line} (authorization {other.number} "
                                   f"for {other.service}); two authorizations of one service may not overlap")
                        break
            if problem is not None:
                self.problem(row, problem[0].lower() + problem[1:].rstrip("."))

    def load(self):
        import dataclasses

        from iop.clinic import authorizations
        from iop.store.models import Client

        updates, additions = [], []
        for row, client_key, fields in self.parsed:
            client = self.session.get(Client, client_key)
            record = next((a for a in authorizations.of_client(client)
                           if a.service == fields.service and a.number == fields.number), None)
            if record is None:
                additions.append((row, client, fields, None))
                continue
            before = (record.payer, record.unit, record.units, record.start_date, record.end_date)
            if before == (fields.payer, fields.unit, fields.units, fields.start, fields.end):
                self.result.unchanged += 1
            else:
                updates.append((row, client, dataclasses.replace(fields, note=record.note), record))
        # Changed dates first, so a new row may take dates an updated one gave up (all checked above).
        for row, client, fields, record in updates + additions:
            try:
                authorizations.save(client, fields, self.actor, record, via="import")
            except authorizations.AuthorizationError as exc:
                raise ImportFailed("Nothing was imported: 1 row with problems.",
                                   [f"line {row.line}: {' '.join(exc.problems)}"]) from None
        self.result.updated += len(updates)
        self.result.added += len(additions)
        return self.result


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---- progress ------------------------------------------------------------------------------

class Progress:
    """A plain-text bar on stderr for big files, redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool, stream=None, clock_: Callable[[], float] = wall.monotonic):
        self.total = total
        self.enabled = enabled and total >= PROGRESS_MIN_ROWS
        self.stream = stream or sys.stderr
        self.clock = clock_
        self.label = ""
        self.last_drawn = 0.0
        self.drawn = False

    def phase(self, label: str) -> None:
        if self.drawn:
            self.stream.write("\n")
        self.label = label
        self.last_drawn = 0.0
        self.update(0)

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if done < self.total and now - self.last_drawn < 0.1:
            return
        self.last_drawn = now
        filled = int(self.WIDTH * done / self.total) if self.total else self.WIDTH
        self.stream.write(f"\r{self.label:<9} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{done:>{len(str(self.total))}}/{self.total} rows")
        self.stream.flush()
        self.drawn = True

    def done(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

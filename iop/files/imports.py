"""Bulk loads from CSV (docs/interface.md): groups, clients with plans, attendance.

The file is read as a stream, a line at a time (a line is at most MAX_LINE_BYTES): memory grows
with the rows' parsed values, never with the file's text. Every row is checked first, against the
file and against the database, and every problem of a row is reported ("line N: reason", one per
problem); one bad row means nothing is loaded. The checks read one snapshot and write nothing.
Groups and clients then load in one unit of work; attendance loads in short transactions of
LOAD_BATCH rows so kiosks scan in between, and a load that stops part-way takes its rows back.
Natural keys make a second load of the same file a no-op: a group by its code, a client by
client_id (a changed row updates that client, audited), an attendance by client and session.

A file that is not CSV text (binary data, a line longer than any CSV row) is refused without
showing any of its content. A refused import is audited as "import.failed": the kind, how many
rows and problems, the first problems' line numbers and codes, never the file's content.
"""
from __future__ import annotations

import codecs
import csv
import heapq
import os
import re
import stat
import sys
import time as wall
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from iop import clock
from iop.clinic import audit, program
from iop.rules import entry, hours
from iop.store import db
from iop.store.models import Attendance, Client, Group, GroupSession, LevelOfCare, Plan, PlanPhase

# The web form refuses bigger uploads (use `iop import`); the command refuses absurd files.
UPLOAD_MAX_BYTES = 5 * 1024 * 1024
FILE_MAX_BYTES = 100 * 1024 * 1024  # about 2.5 million attendance rows
MAX_LINE_BYTES = 64 * 1024  # no row of these layouts comes near; a longer "line" is not CSV text
PROGRESS_MIN_BYTES = 64 * 1024  # smaller files finish before a bar would help
PROGRESS_MIN_ROWS = 2000
LOAD_BATCH = 500  # attendance rows a transaction: SQLite's write lock is held for one batch only
SESSION_BATCH = 5  # group sessions made a transaction, before the rows that go to them
PROBLEMS_SHOWN = 50  # the problems a person is shown (page, command, job); the rest are counted
AUDITED_PROBLEMS = 10  # line numbers and codes of the first problems, in the import.failed event
NOT_CSV = "Nothing was imported: the file is not a CSV text file (it holds binary data). Export it from " \
          "the spreadsheet as \"CSV UTF-8\" and try again."


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
    """Nothing was loaded. `problems` lists the first PROBLEMS_SHOWN "line N: reason" (one problem
    each, in line order); `problem_count` and `line_count` count them all, `hidden_lines` the lines
    with problems not shown; `codes` are the first problems' (line, code) for the audit log;
    `reason` is a code for the whole refusal; `summary` is one line for the person."""

    def __init__(self, summary: str, problems: list[str] | None = None, *, problem_count: int | None = None,
                 line_count: int | None = None, hidden_lines: int = 0, codes: list[tuple[int, str]] | None = None,
                 rows: int = 0, reason: str = "file"):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems or []
        self.problem_count = len(self.problems) if problem_count is None else problem_count
        self.line_count = len(self.problems) if line_count is None else line_count
        self.hidden_lines = hidden_lines
        self.codes = codes or []
        self.rows = rows
        self.reason = reason

    @property
    def more(self) -> str:
        """"and 312 more problems in 280 lines" when some are not shown, else ""."""
        hidden = self.problem_count - len(self.problems)
        if hidden <= 0:
            return ""
        return f"and {_count(hidden, 'more problem')} in {_count(max(1, self.hidden_lines), 'line')}"


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


class RowProblem(ValueError):
    """One row's reason, with a stable code for the audit log; the caller adds its line number."""

    def __init__(self, reason: str, code: str = "row"):
        super().__init__(reason)
        self.code = code


@dataclass(slots=True)
class Row:
    line: int
    values: dict[str, str]
    width: str = ""  # set when the row's number of values does not match the header

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


BAD = object()  # a cell that could not be read (its problem is recorded)


# ---- entry points --------------------------------------------------------------------------

def open_regular(path: Path) -> tuple[BinaryIO, int]:
    """The file at `path`, opened for reading, and its size; ImportFailed (one line) for anything that
    is not a regular file: a folder, a device (/dev/zero), a pipe or socket. Opened without blocking
    (a FIFO would wait for a writer) and checked on the open file, not by name."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ImportFailed(f"Nothing was imported: there is no file {path}.", reason="no_file") from None
    except IsADirectoryError:
        raise ImportFailed(f"Nothing was imported: {path} is a folder, not a CSV file.", reason="folder") from None
    except OSError as exc:
        raise ImportFailed(f"Nothing was imported: {path} cannot be read ({exc.strerror}).", reason="unreadable") \
            from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImportFailed(f"Nothing was imported: {path} is a folder, not a CSV file.", reason="folder")
        if not stat.S_ISREG(info.st_mode):
            raise ImportFailed(f"Nothing was imported: {path} is not a regular file (a device, a pipe or a "
                               "socket); give the path of a CSV file.", reason="not_regular")
        if info.st_size > FILE_MAX_BYTES:
            raise ImportFailed(f"Nothing was imported: {path.name} is larger than "
                               f"{FILE_MAX_BYTES // (1024 * 1024)} MB; split it into smaller files.",
                               reason="too_large")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def import_file(kind: str, path: Path, progress: bool = False, actor=None, via: str = "cli",
                sink: "Progress | None" = None) -> ImportResult:
    """Load a CSV file from disk (the `iop import` command, and the web's saved uploads)."""
    check_kind(kind)
    try:
        source, size = open_regular(path)
    except ImportFailed as failure:
        audit_failure(kind, failure, actor, via)
        raise
    with source:
        bar = sink or Progress(size, enabled=progress, unit="bytes")
        return run(kind, source, size, bar, actor, via)


class UploadTooLarge(ImportFailed):
    """An upload over UPLOAD_MAX_BYTES (nothing past the limit was read)."""


def upload_too_large() -> UploadTooLarge:
    return UploadTooLarge(f"Nothing was imported: the file is larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB. "
                          "Split it, or load it with the `iop import` command.")


def import_csv(kind: str, raw: bytes, progress: bool = False, actor=None, via: str = "web") -> ImportResult:
    """Check every row of `raw`, then load them all, or raise ImportFailed (tests and small files)."""
    import io

    check_kind(kind)
    return run(kind, io.BytesIO(raw), len(raw), Progress(len(raw), enabled=progress, unit="bytes"), actor, via)


def check_kind(kind: str) -> None:
    if kind not in LAYOUTS:
        raise ImportFailed(f"Nothing was imported: the kind must be one of {', '.join(KINDS)}.", reason="kind")


def run(kind: str, source: BinaryIO, size: int, bar: "Progress", actor=None, via: str = "web") -> ImportResult:
    """Check every row read from `source`, then load them, or raise ImportFailed (audited)."""
    check_kind(kind)
    loader = {"groups": _GroupImport, "clients": _ClientImport, "attendance": _AttendanceImport,
              "authorizations": _AuthorizationImport}[kind]
    try:
        try:
            job = loader(bar, actor)
            job.check(read_rows(kind, source, bar, size))
        finally:
            db.end_snapshot()  # the checks' read transaction ends: it must not hold back the writers
        if job.problems.count:
            raise job.problems.failure(job.row_count)
        try:
            result = job.load(via)
        except IntegrityError:
            # someone else (a kiosk, another import) wrote one of these records since the checks: the
            # load was taken back whole
            raise ImportFailed("Nothing was imported: some of these records were written by someone else "
                               "while the file was loading. Try again.", rows=job.row_count,
                               reason="conflict") from None
    except ImportFailed as failure:
        bar.done()
        audit_failure(kind, failure, actor, via)
        raise
    bar.done()
    if result.added or result.updated:
        db.refresh_statistics()
    return result


def audit_failure(kind: str, failure: ImportFailed, actor, via: str) -> None:
    """ "import.failed": what was refused, never the file's content (no cell, no name, no header)."""
    with db.transaction():
        audit.record("import.failed", target=f"import:{kind}", user=actor, via=via, rows=failure.rows,
                     problems=failure.problem_count, lines=failure.line_count,
                     first=[f"line {line}: {code}" for line, code in failure.codes[:AUDITED_PROBLEMS]],
                     reason=_reason_code(failure))


def _reason_code(failure: ImportFailed) -> str:
    return "too_large" if isinstance(failure, UploadTooLarge) else failure.reason


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Problems:
    """The problems found, kept in bounded memory: how many on each line that has any, and the texts of
    the first PROBLEMS_SHOWN by line (a heap). A row with a problem is not checked against others."""

    def __init__(self):
        self.count = 0
        self.lines: dict[int, int] = {}
        self._first: list[tuple[int, int, str, str]] = []  # a max-heap by (line, order), negated

    def add(self, line: int, code: str, reason: str) -> None:
        self.count += 1
        self.lines[line] = self.lines.get(line, 0) + 1
        item = (-line, -self.count, code, reason)
        if len(self._first) < PROBLEMS_SHOWN:
            heapq.heappush(self._first, item)
        elif item > self._first[0]:
            heapq.heapreplace(self._first, item)

    def first(self) -> list[tuple[int, str, str]]:
        return [(-line, code, reason) for line, _order, code, reason in sorted(self._first, reverse=True)]

    def failure(self, rows: int) -> ImportFailed:
        first = self.first()
        hidden_lines = 0
        if first and self.count > len(first):
            last = first[-1][0]
            shown_on_last = sum(1 for line, _code, _reason in first if line == last)
            hidden_lines = sum(1 for line in self.lines if line > last) + (self.lines[last] > shown_on_last)
        return ImportFailed(
            f"Nothing was imported: {_count(len(self.lines), 'row')} with problems (of {rows}).",
            [f"line {line}: {reason}" for line, _code, reason in first], problem_count=self.count,
            line_count=len(self.lines), hidden_lines=hidden_lines,
            codes=[(line, code) for line, code, _reason in first], rows=rows, reason="rows")


# ---- reading the file ----------------------------------------------------------------------

def _not_csv(line: int, why: str) -> ImportFailed:
    return ImportFailed(NOT_CSV, [f"line {line}: {why}"], codes=[(line, "not_csv")], reason="not_csv")


def _lines(source: BinaryIO, bar: "Progress", size: int) -> Iterator[str]:
    """The file's lines as text (NFC), one at a time; a whole-file ImportFailed for bytes that are not
    UTF-8 text, binary data or a line longer than MAX_LINE_BYTES. Nothing of the content is quoted."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise _not_csv(number, f"a line longer than {MAX_LINE_BYTES // 1024} KB (no CSV row of "
                                   "this kind is near that)")
        if b"\0" in raw:
            raise _not_csv(number, "this line holds binary data (NUL bytes)")
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            text = decoder.decode(raw, final=True)
        except UnicodeDecodeError:
            if number == 1:
                raise _not_csv(number, "the first line is not UTF-8 text") from None
            raise ImportFailed("Nothing was imported: the file is not UTF-8 text. Save it as \"CSV UTF-8\" "
                               "and try again.", [f"line {number}: this line holds bytes that are not UTF-8 text"],
                               codes=[(number, "not_utf8")], reason="not_utf8") from None
        if number % 256 == 0:
            bar.update(source.tell() if size else 0)
            bar.breathe()
        # a name typed two ways is one name (the cells' rules say so too)
        yield unicodedata.normalize("NFC", text)


def read_rows(kind: str, source: BinaryIO, bar: "Progress | None" = None, size: int = 0) -> Iterator[Row]:
    """The data rows of a CSV with the kind's header, one at a time; ImportFailed for a file that cannot
    be read (raised when the reading gets there). At least one row, or ImportFailed."""
    layout = LAYOUTS[kind]
    bar = bar or Progress(0, enabled=False)
    bar.phase("Checking", size, "bytes")
    lines = _lines(source, bar, size)
    reader = csv.reader(lines)
    try:
        header = None
        for header in reader:
            if header and any(cell.strip() for cell in header):
                break
        else:
            header = None
        if header is None:
            raise ImportFailed("Nothing was imported: the file is empty.",
                               [f"line 1: the file is empty; the first line must be the header "
                                f"{','.join(layout.required)}"], codes=[(1, "empty")], reason="empty")
        columns = _check_header(header, layout, reader.line_num)
        start = reader.line_num + 1
        found = False
        for values in reader:
            if values and any(value.strip() for value in values):
                while len(values) > len(columns) and not values[-1].strip():
                    values.pop()  # spreadsheets add empty trailing cells
                found = True
                if len(values) != len(columns):
                    yield Row(start, {}, f"{len(values)} values, but the header has {len(columns)} columns")
                else:
                    yield Row(start, {c: v.strip() for c, v in zip(columns, values)})
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFailed("Nothing was imported: the file is not a readable CSV.",
                           [f"line {reader.line_num}: {_csv_reason(exc)}"], codes=[(reader.line_num, "csv")],
                           reason="csv") \
            from None
    if not found:
        raise ImportFailed("Nothing was imported: the file has a header but no rows.",
                           ["line 2: no rows after the header"], codes=[(2, "no_rows")], reason="no_rows")


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    return text if text.isascii() and len(text) < 120 else "this line cannot be read as CSV"


COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")  # what may be quoted back from a header: a column's name


def _check_header(header: list[str], layout: Layout, line: int = 1) -> list[str]:
    columns = [name.strip().lower() for name in header]
    expected = ",".join(layout.required) + "".join(f"[,{name}]" for name in layout.optional)
    if any(unicodedata.category(ch)[0] == "C" and ch not in "\t\r\n" for name in header for ch in name):
        # control characters where column names belong: binary data that happens to decode; quote nothing
        raise _not_csv(line, f"the first line is not a header (the header must be {expected})")
    unknown = [name for name in columns if name not in layout.columns]
    missing = [name for name in layout.required if name not in columns]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    reasons = []
    if missing:
        reasons.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        named = [repr(u) for u in unknown if COLUMN_NAME.match(u)]
        other = len(unknown) - len(named)
        if other:
            named.append(f"{other} more that {'are' if other > 1 else 'is'} not a column name")
        reasons.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(named)}")
    if repeated:
        reasons.append(f"repeated column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)}")
    if reasons:
        raise ImportFailed("Nothing was imported: the header row is not the expected one.",
                           [f"line {line}: {'; '.join(reasons)} (the header must be {expected})"],
                           codes=[(line, "header")], reason="header")
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

    def __init__(self, bar: Progress, actor):
        self.bar = bar
        self.actor = actor
        self.session = db.session()
        self.problems = Problems()
        self.result = ImportResult(self.kind)
        self.row_count = 0
        self.seen: dict = {}  # what must be once in a file -> the line it is on

    def problem(self, row: Row | int, reason: str, code: str = "row") -> None:
        self.problems.add(row if isinstance(row, int) else row.line, code, reason)

    def cell(self, row: Row, read: Callable, *args):
        """`read(*args)`, or BAD with its problem recorded: every problem of a row is reported."""
        try:
            return read(*args)
        except RowProblem as exc:
            self.problem(row, str(exc), exc.code)
        except entry.EntryError as exc:
            self.problem(row, exc.in_file, f"{exc.field.name}:{exc.code}")
        return BAD

    def check(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.row_count += 1
            if row.width:
                self.problem(row, row.width, "width")
            else:
                self.check_row(row)
            row.values = {}  # checked: what is needed was parsed
        self.check_together()

    def ok(self, row: Row) -> bool:
        return row.line not in self.problems.lines

    def first_time(self, row: Row, key, what: str) -> bool:
        """True on the first line with `key`; on a later one False, with "<what> is already on line N"."""
        if key in self.seen:
            self.problem(row, f"{what} is already on line {self.seen[key]}", "repeated")
            return False
        self.seen[key] = row.line
        return True

    def client_keys(self) -> dict[str, int]:
        """Every client's key by client_id: two plain values a client, whatever the file holds."""
        return dict(self.session.execute(select(Client.client_id, Client.id)).tuples().all())

    def known_client(self, row: Row) -> tuple[str, int | None]:
        """The row's client_id (or BAD) and the client's key in `self.clients` (None, its problem recorded)."""
        client_id = self.cell(row, entry.client_id, row["client_id"])
        if client_id is BAD:
            return client_id, None
        client_key = self.clients.get(client_id)
        if client_key is None:
            self.problem(row, f"unknown client_id {client_id!r}", "unknown_client")
        return client_id, client_key

    def check_row(self, row: Row) -> None:
        raise NotImplementedError

    def check_together(self) -> None:
        """Problems between rows, and between rows and the records already there."""

    def load(self, via: str) -> ImportResult:
        """Groups and clients: one unit of work (their files are small; each change is audited)."""
        self.bar.phase("Loading", 0, "rows")
        with db.transaction():
            self.load_rows()
            self.result.rows = self.row_count
            self.audit_success(via)
        return self.result

    def audit_success(self, via: str) -> None:
        result = self.result
        audit.record(f"import.{self.kind}", target=f"import:{self.kind}", user=self.actor, via=via,
                     rows=result.rows, added=result.added, updated=result.updated, unchanged=result.unchanged)

    def load_rows(self) -> None:
        raise NotImplementedError


class _GroupImport(_Import):
    kind = "groups"

    def __init__(self, bar, actor):
        super().__init__(bar, actor)
        from curriculum.catalog import catalog

        self.tracks = catalog().tracks
        self.existing = {g.code: g for g in self.session.scalars(select(Group))}
        self.parsed: list[dict] = []

    def check_row(self, row):
        code = self.cell(row, entry.group_code, row["code"])
        if code is not BAD:
            self.first_time(row, code, f"group {code}")
        name = self.cell(row, entry.text, row["name"], entry.GROUP_NAME)
        track = self.cell(row, entry.text, row["track"], entry.TRACK)
        if track is not BAD and track not in self.tracks:
            self.problem(row, f"track {track!r} is not a curriculum track (known: {', '.join(sorted(self.tracks))})",
                         "track")
        room = self.cell(row, entry.text, row["room"], entry.ROOM)
        weekdays = self.cell(row, entry.weekdays, row["weekdays"])
        start = self.cell(row, entry.clock_time, row["start"], entry.START)
        end = self.cell(row, entry.clock_time, row["end"], entry.END)
        if start is not BAD and end is not BAD:
            self.cell(row, entry.time_range, start, end)
        if self.ok(row):
            self.parsed.append(dict(code=code, name=name, track=track, room=room, weekdays=weekdays,
                                    start=start, end=end))

    def load_rows(self):
        for values in self.parsed:
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


@dataclass(slots=True)
class _ClientRow:
    line: int
    client_id: str
    first_name: str
    last_name: str
    group_codes: list[str]
    plan: hours.PlanTerms | None


class _ClientImport(_Import):
    kind = "clients"

    def __init__(self, bar, actor):
        super().__init__(bar, actor)
        self.levels = set(self.session.scalars(select(LevelOfCare.code)))
        self.groups = {g.code: g for g in self.session.scalars(select(Group))}
        self.existing = {c.client_id: c for c in self.session.scalars(
            select(Client).options(selectinload(Client.plans).selectinload(Plan.phases),
                                   selectinload(Client.groups)))}
        self.parsed: list[_ClientRow] = []

    def check_row(self, row):
        client_id = self.cell(row, entry.client_id, row["client_id"])
        if client_id is not BAD:
            self.first_time(row, client_id, f"client {client_id}")
        first = self.cell(row, entry.text, row["first_name"], entry.FIRST_NAME)
        last = self.cell(row, entry.text, row["last_name"], entry.LAST_NAME)
        codes = self.cell(row, entry.group_codes, row["groups"])
        if codes is not BAD:
            unknown = [code for code in codes if code not in self.groups]
            if unknown:
                self.problem(row, f"unknown group{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                                  "(import groups first)", "unknown_group")
        plan = self._plan(row)
        if self.ok(row):
            self.parsed.append(_ClientRow(row.line, client_id, first, last, codes, plan))

    def _plan(self, row: Row) -> hours.PlanTerms | None:
        plan_columns = ("plan_end", "weekly_hours", "days_per_week", "phases")
        if not row["plan_start"]:
            if any(row[column] for column in plan_columns):
                self.problem(row, "plan_start is empty but other plan columns are filled; "
                                  "a plan needs its start date", "plan_start")
            if row["level_of_care"] and row["level_of_care"] not in self.levels:
                self.problem(row, self._unknown_level(row["level_of_care"]), "level_of_care")
            return None  # a client without a plan (yet)
        if row["level_of_care"] not in self.levels:
            self.problem(row, self._unknown_level(row["level_of_care"]), "level_of_care")
        start = self.cell(row, entry.day, row["plan_start"], entry.PLAN_START)
        end = self.cell(row, entry.day, row["plan_end"], entry.PLAN_END)
        if start is not BAD and end not in (None, BAD) and end < start:
            self.problem(row, f"plan_end {end} is before plan_start {start}", "plan_end")
        phases = self.cell(row, entry.phases, row["phases"])
        if phases is not BAD:
            problem = hours.phases_problem(phases)
            if problem:
                self.problem(row, problem[0].lower() + problem[1:].rstrip("."), "phases")
        weekly = self.cell(row, entry.hours, row["weekly_hours"], entry.WEEKLY_HOURS)
        days = self.cell(row, entry.days_per_week, row["days_per_week"], entry.DAYS_PER_WEEK)
        if not self.ok(row):
            return None
        return hours.PlanTerms(start_date=start, end_date=end, weekly_minutes=weekly, days_per_week=days,
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
                    self.problem(item.line, (
                        f"this plan overlaps {item.client_id}'s plan that starts {plan.start_date} "
                        f"(ends {plan.end_date or 'open'}); end that plan first, or give its plan_start "
                        "to change it"), "plan_overlap")

    def load_rows(self):
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
    """A checked row: plain values (the client's key and id, the shared Group), no ORM object per row."""

    line: int
    client_key: int
    client_id: str
    group: Group
    day: date
    status: str
    check_in: datetime | None
    check_out: datetime | None
    skip: bool = False
    modality: str = "in_person"


class _AttendanceImport(_Import):
    kind = "attendance"
    STATUSES = ("present", "excused")

    def __init__(self, bar, actor):
        super().__init__(bar, actor)
        from iop.clock import program_tz

        self.tz = program_tz()
        self.now = clock.now()
        self.clients = self.client_keys()
        self.groups = {g.code: g for g in self.session.scalars(select(Group))}
        self.parsed: list[_AttendanceRow] = []
        # No read transaction is held while the rows are checked (a minute for a big file): on SQLite
        # an old snapshot keeps the WAL from being checkpointed, and the kiosks' commits pay for it.
        db.end_snapshot()

    def check_row(self, row):
        client_id, client_key = self.known_client(row)
        code = self.cell(row, entry.group_code, row["group"], GROUP_CELL)
        group = None
        if code is not BAD:
            group = self.groups.get(code)
            if group is None:
                self.problem(row, f"unknown group {code!r}", "unknown_group")
        day = self.cell(row, entry.day, row["date"], DATE_CELL)
        if group is not None and day is not BAD and day.weekday() not in group.weekday_numbers:
            self.problem(row, f"group {group.code} does not meet on {day:%A}s ({day}; it meets {group.weekdays})",
                         "weekday")
        status = row["status"].lower() or "present"
        if status not in self.STATUSES:
            self.problem(row, f"status {row['status']!r} must be present, excused or empty", "status")
        check_in = check_out = None
        if status == "excused":
            if row["check_in"] or row["check_out"]:
                self.problem(row, "an excused row has empty check_in and check_out", "excused_times")
        elif not row["check_in"]:
            self.problem(row, "check_in is empty (leave both times empty only with status excused)", "check_in:missing")
        else:
            at_in = self.cell(row, entry.clock_time, row["check_in"], CHECK_IN_CELL)
            at_out = self.cell(row, entry.clock_time, row["check_out"], CHECK_OUT_CELL) if row["check_out"] else None
            if day is not BAD and at_in is not BAD:
                check_in = self._moment(day, at_in)
                if check_in > self.now:
                    self.problem(row, f"check_in {day} {row['check_in']} is in the future", "future")
                if at_out not in (None, BAD):
                    check_out = self._moment(day, at_out)
                    if check_out < check_in:
                        self.problem(row, f"check_out {row['check_out']} is before check_in {row['check_in']}",
                                     "check_out_before")
        if client_key is not None and group is not None and day is not BAD:
            self.first_time(row, (client_key, group.id, day), f"{client_id} at {group.code} on {day}")
        modality = self.cell(row, entry.modality, row["modality"])
        if self.ok(row):
            self.parsed.append(_AttendanceRow(row.line, client_key, client_id, group, day, status, check_in, check_out,
                                              modality=modality))

    def _moment(self, day: date, at: time) -> datetime:
        from iop.clock import local_to_utc

        return local_to_utc(day, at, self.tz)

    def _window_end(self, item: _AttendanceRow) -> datetime:
        return self._moment(item.day, item.group.end)

    def check_together(self):
        self.seen = {}
        if not self.parsed:
            return
        first = min(item.day for item in self.parsed) - timedelta(days=1)
        last = max(item.day for item in self.parsed) + timedelta(days=1)
        client_keys = {item.client_key for item in self.parsed}
        # (status, check-in, check-out) of each unvoided record, by client, group and date: plain
        # columns, not ORM objects, since a year-long file meets a year of records.
        recorded: dict[tuple[int, int, date], tuple] = {}
        visits: dict[int, list[_Visit]] = {}
        query = (select(Attendance.client_key, GroupSession.group_id, GroupSession.date, Attendance.status,
                        Attendance.check_in_at, Attendance.check_out_at, GroupSession.ends_at)
                 .join(GroupSession, GroupSession.id == Attendance.session_id)
                 .where(GroupSession.date.between(first, last), Attendance.voided_at.is_(None)))
        group_codes = {g.id: g.code for g in self.groups.values()}
        for number, (client_key, group_id, day, status, check_in, check_out, ends) in enumerate(
                self.session.execute(query)):
            if number % 512 == 0:
                self.bar.breathe()
            if client_key not in client_keys:
                continue
            recorded[(client_key, group_id, day)] = (status, check_in, check_out)
            if status == "present" and check_in is not None:
                visits.setdefault(client_key, []).append(_Visit(
                    client_key, check_in, check_out or max(ends, check_in), group_codes.get(group_id, "?"), day))
        db.end_snapshot()
        for index, item in enumerate(self.parsed):
            if index % 512 == 0:
                self.bar.breathe()
            before = recorded.get((item.client_key, item.group.id, item.day))
            if before is not None:
                if before == (item.status, item.check_in, item.check_out):
                    item.skip = True
                    continue
                self.problem(item.line, (
                    f"{item.client_id} at {item.group.code} on {item.day} is already recorded "
                    f"as {self._describe(*before)}; "
                    "correct it in the app, not by import"), "already_recorded")
                continue
            if item.status == "present":
                visits.setdefault(item.client_key, []).append(_Visit(
                    item.client_key, item.check_in, item.check_out or max(self._window_end(item), item.check_in),
                    item.group.code, item.day, item.line))
        ids_by_line = {item.line: item.client_id for item in self.parsed}
        for number, client_visits in enumerate(visits.values()):
            if number % 64 == 0:
                self.bar.breathe()
            client_visits.sort(key=lambda v: (v.starts, v.ends))
            furthest: _Visit | None = None
            for visit in client_visits:
                if furthest is not None and hours.overlaps(furthest.starts, furthest.ends, visit.starts, visit.ends):
                    self._report_overlap(visit, furthest, ids_by_line)
                if furthest is None or visit.ends > furthest.ends:
                    furthest = visit

    def _report_overlap(self, later: _Visit, earlier: _Visit, ids_by_line) -> None:
        mine, other = (later, earlier) if later.line is not None else (earlier, later)
        if mine.line is None:
            return  # two records already in the database: not this file's doing
        where = (f"line {other.line}" if other.line is not None
                 else f"the recorded check-in at {other.group_code} on {other.day} "
                      f"({self._hhmm(other.starts)}-{self._hhmm(other.ends)})")
        self.problem(mine.line, f"{ids_by_line[mine.line]} cannot be in two places at once: this overlaps {where}",
                     "overlap")

    def _hhmm(self, moment: datetime | None) -> str:
        return moment.astimezone(self.tz).strftime("%H:%M") if moment else "no check-out"

    def _describe(self, status, check_in, check_out) -> str:
        if status == "excused":
            return "excused"
        return f"{self._hhmm(check_in)}-{self._hhmm(check_out)}"

    def load(self, via: str) -> ImportResult:
        """In transactions of LOAD_BATCH rows, kiosks scanning in between. The rows are marked by the
        load's time (created_at) and come after the highest id before it: if the load stops part-way
        (an error, a conflicting scan, the server stopping), those rows are taken back (`take_back`).
        Sessions made for them stay: a group's session on a day it met is no partial import."""
        todo = [item for item in self.parsed if not item.skip]
        self.result.unchanged = len(self.parsed) - len(todo)
        self.result.rows = self.row_count
        self.parsed = []
        self.bar.phase("Loading", len(todo), "rows")
        recorder = self.actor.id if self.actor is not None else None
        stamp = clock.now()
        first_row_id = self.session.scalar(select(func.max(Attendance.id))) or 0
        db.end_snapshot()
        self.bar.loading(first_row_id, stamp)
        try:
            sessions = self._sessions(todo)
            for start in range(0, len(todo), LOAD_BATCH):
                batch = todo[start:start + LOAD_BATCH]
                with db.transaction():
                    self.session.execute(insert(Attendance), [dict(
                        session_id=sessions[(item.group.id, item.day)], client_key=item.client_key,
                        status=item.status, check_in_at=item.check_in, check_out_at=item.check_out, source="import",
                        check_out_source="import" if item.check_out else None, recorded_by_id=recorder,
                        created_at=stamp, modality=item.modality) for item in batch])
                    self.result.added += len(batch)
                    if start + LOAD_BATCH >= len(todo):
                        self.audit_success(via)
                self.bar.update(min(len(todo), start + LOAD_BATCH))
                self.bar.breathe()
            if not todo:
                with db.transaction():
                    self.audit_success(via)
        except BaseException:
            take_back(first_row_id, stamp)
            raise
        return self.result


    def _sessions(self, todo: list[_AttendanceRow]) -> dict[tuple[int, date], int]:
        """The group sessions the rows go to, by (group id, date): those there, and the rest made in
        transactions of SESSION_BATCH (each new session picks its curriculum module: real work)."""
        from iop.clinic.sessions import ensure_session

        wanted = {(item.group.id, item.day): item.group for item in todo}
        sessions: dict[tuple[int, date], int] = {}
        if wanted:
            days = [key[1] for key in wanted]
            for session_id, group_id, day in self.session.execute(
                    select(GroupSession.id, GroupSession.group_id, GroupSession.date)
                    .where(GroupSession.date.between(min(days), max(days)))):
                if (group_id, day) in wanted:
                    sessions[(group_id, day)] = session_id
            db.end_snapshot()
        missing = sorted((key for key in wanted if key not in sessions), key=lambda key: (key[1], key[0]))
        for start in range(0, len(missing), SESSION_BATCH):
            with db.transaction():
                for key in missing[start:start + SESSION_BATCH]:
                    sessions[key] = ensure_session(wanted[key], key[1]).id
            self.bar.breathe()
        return sessions


def take_back(first_row_id: int, stamp: datetime) -> int:
    """Delete the attendance rows a stopped load wrote (after `first_row_id`, stamped `stamp`, from
    the import): all or nothing, after the fact. Returns how many."""
    with db.transaction() as s:
        gone = s.execute(delete(Attendance).where(
            Attendance.id > first_row_id, Attendance.created_at == stamp, Attendance.source == "import"))
    return gone.rowcount or 0


class _AuthorizationImport(_Import):
    """Payer authorizations: a row with the client, service and number of one already kept updates it."""

    kind = "authorizations"

    def __init__(self, bar, actor):
        super().__init__(bar, actor)
        self.clients = self.client_keys()
        self.parsed: list[tuple[int, int, object]] = []  # (line, client key, the authorization's fields)

    @staticmethod
    def _fields(values: dict):
        from iop.clinic import authorizations

        try:
            return authorizations.import_fields(values)
        except entry.EntryError as exc:
            if exc.code == "end_before_start":
                raise RowProblem(f"end {values['end']} is before start {values['start']}", "end_before_start") from None
            raise

    def check_row(self, row):
        client_id, client_key = self.known_client(row)
        fields = self.cell(row, self._fields, dict(row.values))
        if client_key is None or fields is BAD:
            return
        if not self.first_time(row, (client_id, fields.service, fields.number),
                               f"{client_id}'s authorization {fields.number} for {fields.service}"):
            return
        if self.ok(row):
            self.parsed.append((row.line, client_key, fields))

    def check_together(self):
        from iop.clinic import authorizations
        from iop.rules import authorizations as rules
        from iop.store import authorization_queries

        kept: dict[int, list] = {}
        for client_key in {client_key for _line, client_key, _fields in self.parsed}:
            kept[client_key] = authorization_queries.client_authorizations(client_key)
        for index, (line, client_key, fields) in enumerate(self.parsed):
            replaced = {(a.service, a.number) for _l, k, a in self.parsed if k == client_key}
            others = [a for a in kept[client_key] if (a.service, a.number) not in replaced]
            problem = authorizations.overlap_problem(fields, others)
            if problem is None:
                for other_line, other_key, other in self.parsed[:index]:
                    if other_key == client_key and rules.overlaps(fields.terms, other.terms):
                        problem = (f"these dates overlap line {other_line} (authorization {other.number} "
                                   f"for {other.service}); two authorizations of one service may not overlap")
                        break
            if problem is not None:
                self.problem(line, problem[0].lower() + problem[1:].rstrip("."), "overlap")

    def load_rows(self):
        import dataclasses

        from iop.clinic import authorizations

        updates, additions = [], []
        for line, client_key, fields in self.parsed:
            client = self.session.get(Client, client_key)
            record = next((a for a in authorizations.of_client(client)
                           if a.service == fields.service and a.number == fields.number), None)
            if record is None:
                additions.append((line, client, fields, None))
                continue
            before = (record.payer, record.unit, record.units, record.start_date, record.end_date)
            if before == (fields.payer, fields.unit, fields.units, fields.start, fields.end):
                self.result.unchanged += 1
            else:
                updates.append((line, client, dataclasses.replace(fields, note=record.note), record))
        # Changed dates first, so a new row may take dates an updated one gave up (all checked above).
        for line, client, fields, record in updates + additions:
            try:
                authorizations.save(client, fields, self.actor, record, via="import")
            except authorizations.AuthorizationError as exc:
                raise ImportFailed("Nothing was imported: 1 line with problems.",
                                   [f"line {line}: {' '.join(exc.problems)}"], rows=self.row_count,
                                   reason="rows") from None
        self.result.updated += len(updates)
        self.result.added += len(additions)



# ---- progress ------------------------------------------------------------------------------

class Progress:
    """A plain-text bar on stderr for big files, redrawn at most ten times a second. The web's jobs
    use a subclass that writes to the import_job row instead (iop.files.import_jobs)."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool, stream=None, clock_: Callable[[], float] = wall.monotonic,
                 unit: str = "rows"):
        self.total = total
        self.unit = unit
        minimum = PROGRESS_MIN_BYTES if unit == "bytes" else PROGRESS_MIN_ROWS
        self.enabled = enabled and total >= minimum
        self.stream = stream or sys.stderr
        self.clock = clock_
        self.label = ""
        self.last_drawn = 0.0
        self.drawn = False

    def phase(self, label: str, total: int | None = None, unit: str | None = None) -> None:
        if label == self.label and not total:
            return
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.label = label
        if total is not None:
            self.total = total
        if unit is not None:
            self.unit = unit
        self.last_drawn = 0.0
        if self.total:
            self.update(0)

    def update(self, done: int) -> None:
        if not self.enabled or not self.total:
            return
        now = self.clock()
        if done < self.total and now - self.last_drawn < 0.1:
            return
        self.last_drawn = now
        filled = int(self.WIDTH * done / self.total) if self.total else self.WIDTH
        if self.unit == "bytes":
            count = f"{done * 100 // self.total:>3}% of the file"
        else:
            count = f"{done:>{len(str(self.total))}}/{self.total} {self.unit}"
        self.stream.write(f"\r{self.label:<9} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {count}")
        self.stream.flush()
        self.drawn = True

    def breathe(self) -> None:
        """A pause for others' work between chunks (the web's job); the command goes on at once."""

    def loading(self, first_row_id: int, stamp: datetime) -> None:
        """The load begins: what would name its rows if it stopped part-way (the web's job keeps it)."""

    def done(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

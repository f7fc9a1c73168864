"""Exports for payers, audits and the clinical record (docs/interface.md): hours, attendance, days.

Rows stream from the database (yield_per: a server-side cursor on PostgreSQL) straight into the
CSV or XLSX writer, so a year of a large program never sits in memory. Every figure comes from
the hours rules (iop.rules.hours, and iop.store.hours_queries for many rows at once). Every export,
from the command line or the web, is written to the audit log.
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Iterator, TextIO

from sqlalchemy import select

from iop import clock, config
from iop.clinic import audit
from iop.files import cells
from iop.rules import entry, hours
from iop.store import db, hours_queries
from iop.store.models import Attendance, Client, Group, GroupSession

FORMATS = ("csv", "xlsx")
MAX_YEARS = 3
FETCH_ROWS = 2000  # rows per round trip to the database
CHUNK_BYTES = 64 * 1024  # what a streamed web response sends at a time
MIMETYPES = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ExportError(ValueError):
    """A request a person can fix (a reversed or too long range, an unknown kind)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text | int | date | time | hours (minutes written as hours, 2 decimals)
    width: int = 12
    meaning: str = ""  # what the column holds, in the coordinator's words (the Exports page lists it)


STATUS_WORDS = "met, on_track, at_risk, short or no_plan"
COLUMNS: dict[str, tuple[Column, ...]] = {
    "hours": (
        Column("client_id", width=12, meaning="the program's id of the client"),
        Column("client_name", width=24, meaning="first and last name"),
        Column("week_start", "date", meaning="the Monday of the week"),
        Column("level_of_care", width=13, meaning="the level of care of the plan in effect that week"),
        Column("target_minutes", "int", 15, meaning="the week's target in minutes, from the plan's phase in effect"),
        Column("attended_minutes", "int", 17, meaning="credited minutes attended that week"),
        Column("attended_hours", "hours", 15, meaning="the same in hours, with two decimals"),
        Column("days_attended", "int", 14, meaning="days with any credited minutes"),
        Column("status", width=10, meaning=f"the week against the target: {STATUS_WORDS}"),
    ),
    "attendance": (
        Column("date", "date", meaning="the session's date"),
        Column("client_id", meaning="the program's id of the client"),
        Column("client_name", width=24, meaning="first and last name"),
        Column("group", width=10, meaning="the group's code"),
        Column("track", width=18, meaning="the group's curriculum track"),
        Column("module", width=28, meaning="the curriculum module the session ran (its id)"),
        Column("check_in", "time", 9, meaning="local time, HH:MM (empty when excused)"),
        Column("check_out", "time", 10, meaning="local time, HH:MM (empty while still in, or when excused)"),
        Column("credited_minutes", "int", 17, meaning="minutes credited by the hours rules (within the session's "
                                                      "times)"),
        Column("status", width=9, meaning="present or excused"),
        Column("source", width=9, meaning="how the check-in was recorded: kiosk, manual (by staff) or import"),
        Column("modality", width=11, meaning="in_person, or telehealth for a client who joined by video"),
    ),
    "days": (
        Column("date", "date", meaning="the day"),
        Column("client_id", meaning="the program's id of the client"),
        Column("client_name", width=24, meaning="first and last name"),
        Column("credited_minutes", "int", 17, meaning="credited minutes that day, all sessions together"),
        Column("sessions", "int", 9, meaning="sessions attended that day"),
        Column("full_day", width=9, meaning="yes when the day's credited minutes reach a full day "
                                            "({full_day} minutes), else no"),
    ),
}
COLUMNS["utilization"] = (
    Column("client_id", meaning="the program's id of the client"),
    Column("client_name", width=24, meaning="first and last name"),
    Column("payer", width=18, meaning="the payer that gave the authorization"),
    Column("number", width=14, meaning="the payer's authorization number"),
    Column("service", width=9, meaning="the service code authorized (H0015, S9480, 90853, ...)"),
    Column("unit", width=8, meaning="day (a full day of {full_day} minutes) or session (an attended session)"),
    Column("start", "date", meaning="the first date authorized"),
    Column("end", "date", meaning="the last date authorized (included)"),
    Column("units_authorized", "int", 16, meaning="units the payer authorized"),
    Column("units_used", "int", 11, meaning="units attended inside the dates up to the export's date, at most "
                                             "those authorized"),
    Column("units_remaining", "int", 15, meaning="units authorized less units used"),
    Column("units_over", "int", 11, meaning="units attended beyond those authorized (not authorized)"),
    Column("status", width=10, meaning="on the export's date: over, exhausted, expired, future, expiring or active"),
    Column("runs_out", "date", meaning="the date the units run out at the client's plan pace, when that falls "
                                       "inside the dates (else empty)"),
)
KINDS = tuple(COLUMNS)
# The exports of a range of dates (--from/--to); utilization is taken on one date (--on).
RANGE_KINDS = tuple(kind for kind in KINDS if kind != "utilization")


def column_meanings(kind: str) -> list[tuple[str, str]]:
    """(column, what it holds) of an export, in file order, as the Exports page lists them."""
    full_day = config.full_day_minutes()
    return [(column.name, column.meaning.format(full_day=full_day)) for column in COLUMNS[kind]]


def header(kind: str) -> list[str]:
    return [column.name for column in COLUMNS[kind]]


def check_request(kind: str, first: date, last: date, fmt: str) -> None:
    """ExportError when the request cannot be served as asked."""
    if kind not in COLUMNS:
        raise ExportError(f"There is no {kind!r} export; choose one of {', '.join(KINDS)}.")
    if fmt not in FORMATS:
        raise ExportError(f"The format must be csv or xlsx, not {fmt!r}.")
    check_range(first, last)


def check_range(first: date, last: date) -> None:
    """ExportError when the dates cannot be one export (every kind, the FHIR export's too)."""
    if first > last:
        raise ExportError(f"The range is reversed: {first} is after {last}.")
    if last >= _years_after(first, MAX_YEARS):
        raise ExportError(f"A range may cover at most {MAX_YEARS} years; export {first} to {last} in parts.")


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


# ---- the rows (typed values; the writers format them) ----------------------------------------

def rows(kind: str, first: date, last: date, now: datetime | None = None) -> Iterator[tuple]:
    """The export's rows, streamed; close the iterator to release the database cursor early."""
    now = now or clock.now()
    source = {"hours": _hours_rows, "attendance": _attendance_rows, "days": _days_rows,
              "utilization": _utilization_rows}[kind]
    return source(first, last, now)


def _full_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}".strip()


def _streamed(query, params: dict | None = None):
    """Execute `query` so its rows come from the database in batches, never all at once."""
    return db.session().execute(query.execution_options(yield_per=FETCH_ROWS), params)


def attendance_query(first: date, last: date, now: datetime):
    """The attendance export's statement: each unvoided attendance whose session date is in the range, with
    its credited minutes (rule 1 in SQL), in the export's order. The FHIR export adds columns to it."""
    credited = hours_queries.credited_minutes_sql(Attendance, GroupSession, now)
    return (
        select(GroupSession.date, Client.client_id, Client.first_name, Client.last_name, Group.code, Group.track,
               GroupSession.module_id, Attendance.check_in_at, Attendance.check_out_at,
               credited.label("credited_minutes"), Attendance.status, Attendance.source,
               Attendance.modality.label("modality"))
        .join(GroupSession, GroupSession.id == Attendance.session_id)
        .join(Group, Group.id == GroupSession.group_id)
        .join(Client, Client.id == Attendance.client_key)
        .where(GroupSession.date.between(first, last), Attendance.voided_at.is_(None))
        .order_by(GroupSession.date, GroupSession.starts_at, Group.code, Client.client_id, Attendance.id)
    )


def streamed(query) -> Iterator:
    """The rows of `query`, fetched in batches; closing the iterator releases the database cursor."""
    result = _streamed(query)
    try:
        yield from result
    finally:
        result.close()


def credited(record) -> int:
    """An attendance_query row's credited minutes, as every export writes them."""
    return int(record.credited_minutes or 0)


def _attendance_rows(first: date, last: date, now: datetime) -> Iterator[tuple]:
    tz = clock.program_tz()
    for record in streamed(attendance_query(first, last, now)):
        (day, client_id, first_name, last_name, group, track, module, check_in, check_out, _minutes,
         status, source, modality) = record
        yield (day, client_id, _full_name(first_name, last_name), group, track, module or "",
               _local_time(check_in, tz), _local_time(check_out, tz), credited(record), status, source, modality)


def _utilization_rows(_first: date, on: date, now: datetime) -> Iterator[tuple]:
    """One row per authorization whose dates include `on` or that ended in the 30 days before it."""
    from iop.clinic import authorizations

    for row in authorizations.export_rows(on, now):
        record, used = row.record, row.usage
        yield (row.client_id, row.client_name, record.payer, record.number, record.service, record.unit,
               record.start_date, record.end_date, record.units, used.used, used.remaining, used.over, row.status,
               row.forecast.runs_out)


def _local_time(moment: datetime | None, tz) -> time | None:
    return moment.astimezone(tz).time().replace(second=0, microsecond=0) if moment else None


def _days_rows(first: date, last: date, now: datetime) -> Iterator[tuple]:
    """Each client's days with credited minutes: hours_queries' minutes per client and day, with names."""
    full_day = config.full_day_minutes()
    days = hours_queries.minutes_by_day_statement(with_sessions=True).subquery()
    query = (
        select(days.c.day, Client.client_id, Client.first_name, Client.last_name, days.c.minutes, days.c.sessions)
        .join(Client, Client.id == days.c.client_key)
        .where(days.c.minutes > 0)
        .order_by(days.c.day, Client.client_id)
    )
    result = _streamed(query, hours_queries.range_params(first, last, now))
    try:
        for day, client_id, first_name, last_name, day_minutes, sessions in result:
            day_minutes = int(day_minutes)
            yield (day, client_id, _full_name(first_name, last_name), day_minutes, int(sessions),
                   "yes" if hours.is_full_day(day_minutes, full_day) else "no")
    finally:
        result.close()


def _hours_rows(first: date, last: date, now: datetime) -> Iterator[tuple]:
    tz = clock.program_tz()
    for monday in hours.weeks_overlapping(first, last):
        figures = hours_queries.week_figures(monday, now, tz)  # one week's clients at a time
        if not figures:
            continue
        people = {}
        pks = sorted(figures)
        for start in range(0, len(pks), 500):
            people.update((pk, (client_id, _full_name(first_name, last_name))) for pk, client_id, first_name, last_name
                          in db.session().execute(select(Client.id, Client.client_id, Client.first_name,
                                                         Client.last_name).where(Client.id.in_(pks[start:start + 500]))))
        for pk in sorted(figures, key=lambda pk: people[pk][0]):
            week = figures[pk]
            client_id, name = people[pk]
            yield (client_id, name, monday, week.level_of_care, week.target_minutes, week.attended_minutes,
                   week.attended_minutes, week.days_attended, week.status)


# ---- writers -------------------------------------------------------------------------------

# Every cell of every export goes through iop.files.cells (cells.CsvWriter, cells.xlsx_value): text
# can never be taken for a formula, and a character no cell may hold never stops an export.

def _csv_values(columns: tuple[Column, ...], row: tuple) -> list:
    values = []
    for column, value in zip(columns, row):
        if value is None:
            values.append("")
        elif column.kind == "date":
            values.append(value.isoformat())
        elif column.kind == "time":
            values.append(value.strftime("%H:%M"))
        elif column.kind == "hours":
            values.append(Decimal(hours.decimal_hours(value)))  # a number: never neutralised as text
        else:
            values.append(value)
    return values


def write_csv(kind: str, source: Iterator[tuple], out: TextIO) -> int:
    """The header and every row to a text stream; the number of rows."""
    columns = COLUMNS[kind]
    writer = cells.CsvWriter(out)
    writer.writerow(header(kind))
    count = 0
    for row in source:
        writer.writerow(_csv_values(columns, row))
        count += 1
    return count


def csv_chunks(kind: str, source: Iterator[tuple], counter: list[int]) -> Iterator[bytes]:
    """The CSV as UTF-8 byte chunks of about CHUNK_BYTES (a streamed web response); counter[0] counts rows."""
    columns = COLUMNS[kind]
    buffer = io.StringIO()
    writer = cells.CsvWriter(buffer)
    writer.writerow(header(kind))
    for row in source:
        writer.writerow(_csv_values(columns, row))
        counter[0] += 1
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(kind: str, source: Iterator[tuple], target) -> int:
    """A one-sheet workbook in write-only mode (rows go to disk as they come): typed cells, a frozen
    header, set widths. `target` is a path or a binary file. Returns the number of rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    columns = COLUMNS[kind]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=kind)
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    bold = Font(bold=True)
    heading = []
    for name in header(kind):
        cell = WriteOnlyCell(sheet, value=cells.printable(name))
        cell.font = bold
        heading.append(cell)
    sheet.append(heading)
    # Dates get openpyxl's yyyy-mm-dd and numbers stay numbers on their own; only times and hours
    # need a format of their own (a styled cell costs about twice a plain one, row after row).
    formats = {"time": "hh:mm", "hours": "0.00"}
    styled = [(index, formats[column.kind]) for index, column in enumerate(columns) if column.kind in formats]
    count = 0
    for row in source:
        values = [cells.xlsx_value(sheet, value) for value in row]
        for index, number_format in styled:
            if values[index] is not None:
                value = values[index]
                cell = WriteOnlyCell(sheet, value=round(value / 60, 2) if number_format == "0.00" else value)
                cell.number_format = number_format
                values[index] = cell
        sheet.append(values)
        count += 1
    book.save(target)
    return count


# ---- the command line ----------------------------------------------------------------------

def export_to(kind: str, first: date, last: date, fmt: str, path: Path | None, actor=None) -> int:
    """Write the export to `path` (stdout for CSV without one); audited; the number of rows.

    A file is written beside its target and renamed at the end, so an error leaves no half file.
    """
    check_request(kind, first, last, fmt)
    if path is None and fmt != "csv":
        raise ExportError("XLSX needs a file: add -o FILE.xlsx.")
    source = rows(kind, first, last)
    count, complete = 0, False
    try:
        with contextlib.closing(source):
            if path is None:
                count = write_csv(kind, source, sys.stdout)
                sys.stdout.flush()
            else:
                count = _write_file(kind, fmt, source, Path(path))
        complete = True
    finally:
        record(kind, first, last, fmt, count, actor, via="cli" if actor is None else "app", complete=complete)
    return count


def _write_file(kind: str, fmt: str, source: Iterator[tuple], path: Path) -> int:
    try:
        with config.replacing(path) as partial:
            if fmt == "csv":
                with open(partial, "w", encoding="utf-8", newline="") as out:
                    return write_csv(kind, source, out)
            return write_xlsx(kind, source, str(partial))
    except OSError as exc:
        raise ExportError(f"{path} cannot be written ({exc.strerror}).") from None


def record(kind: str, first: date, last: date, fmt: str, count: int, actor, via: str, complete: bool = True,
           **more) -> None:
    """The audit event of one export (its own unit of work, after the rows have been read); `more` adds
    to its detail."""
    with db.transaction():
        detail = dict(via=via, first=first.isoformat(), last=last.isoformat(), format=fmt, rows=count, **more)
        if not complete:
            detail["complete"] = False
        audit.record(f"export.{kind}", target=f"export:{kind}", user=actor, **detail)


# ---- the web -------------------------------------------------------------------------------

def filename(kind: str, first: date, last: date, fmt: str) -> str:
    if kind == "utilization":
        return f"utilization-on-{last.isoformat()}.{fmt}"
    return f"{kind}-{first.isoformat()}-to-{last.isoformat()}.{fmt}"


def web_stream(kind: str, first: date, last: date, fmt: str, actor) -> Iterator[bytes]:
    """The export as byte chunks for a streamed response, audited when it ends (or is cut off).

    CSV goes out row by row; XLSX is assembled in a temporary file (a zip cannot be streamed
    while it is written) and then sent in chunks."""
    check_request(kind, first, last, fmt)

    def generate():
        counter = [0]
        complete = False
        source = rows(kind, first, last)
        try:
            with contextlib.closing(source):
                if fmt == "csv":
                    yield from csv_chunks(kind, source, counter)
                else:
                    with tempfile.TemporaryFile() as spool:
                        counter[0] = write_xlsx(kind, source, spool)
                        spool.seek(0)
                        while chunk := spool.read(CHUNK_BYTES):
                            yield chunk
            complete = True
        finally:
            record(kind, first, last, fmt, counter[0], actor, via="web", complete=complete)

    return generate()


# ---- the audit log -------------------------------------------------------------------------

NO_USER = "-"  # the filter value for events with no signed-in user: commands and scheduled jobs
# The codes first (as before), then the same in words: who by name, what happened, what it was about.
AUDIT_HEADER = ("at", "username", "action", "target", "detail", "who", "what", "about")


@dataclass(frozen=True)
class AuditFilter:
    username: str = ""  # "" any, NO_USER none
    action: str = ""
    first: date | None = None  # local dates, inclusive
    last: date | None = None
    target: str = ""  # one thing ("client:<public id>", "staff:<id>"), as the page links it

    def query_args(self) -> dict[str, str]:
        args = {"user": self.username, "action": self.action, "target": self.target,
                "first": self.first.isoformat() if self.first else "", "last": self.last.isoformat() if self.last else ""}
        return {name: value for name, value in args.items() if value}


def audit_events_query(wanted: AuditFilter):
    """The audit events that match, newest first."""
    from iop.clock import local_to_utc
    from iop.store.models import AuditEvent

    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if wanted.username == NO_USER:
        query = query.where(AuditEvent.user_id.is_(None))
    elif wanted.username:
        query = query.where(AuditEvent.username == wanted.username)
    if wanted.action:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.target:
        query = query.where(AuditEvent.target == wanted.target)
    tz = clock.program_tz()
    if wanted.first:
        query = query.where(AuditEvent.at >= local_to_utc(wanted.first, time(0), tz))
    if wanted.last:
        query = query.where(AuditEvent.at < local_to_utc(wanted.last + timedelta(days=1), time(0), tz))
    return query


def audit_filter(username: str, action: str, first: str, last: str, target: str = "") -> tuple[AuditFilter, str]:
    """The filter as typed in the audit log's boxes, and a sentence when part of it cannot be read."""
    problem = ""
    days = {}
    for name, typed in (("first", first), ("last", last)):
        try:
            days[name] = entry.day(typed, entry.Field(name, "The date", needed=False))
        except entry.EntryError:
            problem = "Dates must look like 2026-03-02."
    wanted = AuditFilter(username=(username or "").strip(), action=(action or "").strip(),
                         first=days.get("first"), last=days.get("last"), target=(target or "").strip()[:120])
    if wanted.first and wanted.last and wanted.first > wanted.last:
        problem = "The range is reversed: the first date is after the last."
    return wanted, problem


def audit_page(wanted: AuditFilter, page: int, size: int) -> tuple[list, bool]:
    """Page `page` (from 1) of the matching events, newest first, and whether older ones follow."""
    events = list(db.session().scalars(audit_events_query(wanted).offset((page - 1) * size).limit(size + 1)))
    return events[:size], len(events) > size


def audit_choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(username, name) of staff (and usernames kept on older events) and (action, words), for the filters."""
    from iop.store.models import AuditEvent, StaffUser

    session = db.session()
    users = dict(session.execute(select(StaffUser.username, StaffUser.display_name)).all())
    for username in session.scalars(select(AuditEvent.username).where(AuditEvent.username != "").distinct()):
        users.setdefault(username, username)
    actions = session.scalars(select(AuditEvent.action).distinct())
    return (sorted(users.items(), key=lambda item: item[1].lower()),
            sorted(((action, audit.action_words(action)) for action in actions), key=lambda item: item[1]))


@dataclass(frozen=True)
class AuditLine:
    """An audit event as a reviewer reads it."""

    event: object
    who: str
    what: str
    about: str


def readable(events) -> list[AuditLine]:
    """The events with the actor's name, the action in words and the target's label (a few queries)."""
    events = list(events)
    names = audit.actor_names(e.user_id for e in events)
    labels = audit.target_labels(e.target for e in events)
    return [AuditLine(e, _who(e, names), audit.action_words(e.action, e.detail),
                      labels.get(e.target, e.target)) for e in events]


def _who(event, names: dict[int, str]) -> str:
    if event.user_id is not None:
        return names.get(event.user_id, event.username)
    if event.action == "staff.sign_in_failed":
        return "Someone signing in"
    return "Command line" if (event.detail or {}).get("via") == "cli" else "System"


def audit_csv_stream(wanted: AuditFilter, actor) -> Iterator[bytes]:
    """The matching audit events as CSV chunks (local times with their offset); this export is
    itself audited when it ends."""
    import json


    def generate():
        tz = clock.program_tz()
        buffer = io.StringIO()
        writer = cells.CsvWriter(buffer)
        writer.writerow(AUDIT_HEADER)
        count, complete = 0, False
        result = db.session().execute(audit_events_query(wanted).execution_options(yield_per=FETCH_ROWS))
        try:
            for batch in result.scalars().partitions(FETCH_ROWS):
                for line in readable(batch):
                    event = line.event
                    writer.writerow((event.at.astimezone(tz).isoformat(timespec="seconds"), event.username,
                                     event.action, event.target, json.dumps(event.detail, sort_keys=True),
                                     line.who, line.what, line.about))
                    count += 1
                    if buffer.tell() >= CHUNK_BYTES:
                        yield buffer.getvalue().encode("utf-8")
                        buffer.seek(0)
                        buffer.truncate()
            yield buffer.getvalue().encode("utf-8")
            complete = True
        finally:
            result.close()
            with db.transaction():
                detail = dict(filters=wanted.query_args(), rows=count)
                if not complete:
                    detail["complete"] = False
                audit.record("audit.export", target="audit", user=actor, **detail)

    return generate()

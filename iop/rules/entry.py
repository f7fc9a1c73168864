"""What people type, read in one place: names, ids and codes, hours, days, dates, times, weekdays,
phases, reasons and notes. Every form, import, command and hand action reads its input here, so
what one refuses the others refuse, with the same reason.

Pure: no Flask, no database. Each rule takes the text as typed and the `Field` it was typed into,
and gives back the clean value or raises `EntryError`, whose words suit a form or a command
(`message`: "The first name has a character that cannot be printed.") or a line of a file
(`in_file`: "first_name has a character that cannot be printed").

Text is Unicode-normalised (NFC, so a name typed two ways is one name) and trimmed; control
characters, bidirectional controls and (in one-line fields) line breaks are refused, since they
are invisible on a page yet change what a name, an export or a log line says.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, time
from decimal import Decimal
from typing import Iterable

from iop.rules.hours import Phase

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_WORDS = {
    **{name.lower(): number for number, name in enumerate(WEEKDAY_NAMES)},
    **{name: number for number, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))},
}
MAX_WEEKLY_HOURS = 168
MAX_PLAN_WEEK = 520  # ten years of plan weeks: far past any plan, and well inside the columns

# Breaks a line: C0's line and record separators, NEL, and Unicode's line and paragraph separators.
LINE_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Never printed: C0 and C1 controls and DEL, and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), which reorder what follows them on the screen.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
UNPRINTABLE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # tab and \n pass
ONE_WORD = re.compile(r"\s")
LEVEL_CODE_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*", re.ASCII)
HOURS = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,6})?", re.ASCII)
WHOLE = re.compile(r"[0-9]{1,4}", re.ASCII)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
PHASE = re.compile(r"([0-9]+)(?:-([0-9]+))?:([^/]*)/(.*)", re.ASCII)


@dataclass(frozen=True)
class Field:
    """A box on a form, a column of a file or an argument of a command."""

    name: str  # as files, forms and commands name it: first_name
    label: str  # as a sentence about it begins: The first name
    most: int = 0  # the longest it may be, in characters (its column's size); 0 for values that are not text
    needed: bool = True
    lines: bool = False  # a note: line breaks and tabs allowed
    missing: str = ""  # the sentence when it is left empty, where "<label> is needed." reads badly

    def part(self, name: str, label: str, **changes) -> Field:
        """A part of this field (a phase's hours), named after it."""
        return replace(self, name=f"{self.name} {name}", label=f"{self.label} {label}", missing="", **changes)


class EntryError(ValueError):
    """One field's value refused. `code` is stable (missing, unprintable, line_break, too_long, ...);
    `message` is a sentence for a form or a command; `in_file` names the column, for a line of a file."""

    def __init__(self, field: Field, code: str, reason: str, value: str | None = None, sentence: str = ""):
        self.field, self.code, self.reason, self.value = field, code, reason, value
        if not sentence and code == "missing":
            sentence = field.missing or f"{field.label} is needed."
        self.message = sentence or f"{field.label} {reason}."
        super().__init__(self.message)

    @property
    def in_file(self) -> str:
        if self.code == "missing":
            return f"{self.field.name} is empty"
        shown = f" {self.value!r}" if self.value is not None else ""
        return f"{self.field.name}{shown} {self.reason}"


# ---- the fields people fill in (lengths are the database columns' sizes) ----------------------

CLIENT_ID = Field("client_id", "The client ID", 40)
FIRST_NAME = Field("first_name", "The first name", 80)
LAST_NAME = Field("last_name", "The last name", 80)
GROUP_CODE = Field("code", "The group code", 40)
GROUP_CODES = Field("groups", "The groups", 2000, needed=False)
GROUP_NAME = Field("name", "The group name", 120)
ROOM = Field("room", "The room", 60, needed=False)
TRACK = Field("track", "The curriculum track", 60)
WEEKDAYS = Field("weekdays", "The weekdays", missing="Choose at least one weekday.")
START = Field("start", "The start time")
END = Field("end", "The end time")
LEVEL_CODE = Field("code", "The level code", 20)
LEVEL_NAME = Field("name", "The level's name", 120)
USERNAME = Field("username", "The username", 64)
DISPLAY_NAME = Field("name", "The name", 120, needed=False)
CREDENTIALS = Field("credentials", "The credentials", 60, needed=False)
KIOSK_NAME = Field("name", "The kiosk name", 80, missing="A kiosk needs a name (for example: Front desk).")
REASON = Field("reason", "The reason", 300, needed=False)
NOTE = Field("note_text", "The note", 20_000, needed=False, lines=True)
PLAN_START = Field("plan_start", "The start date")
PLAN_END = Field("plan_end", "The end date", needed=False)
WEEKLY_HOURS = Field("weekly_hours", "Weekly hours")
DAYS_PER_WEEK = Field("days_per_week", "Days a week")
PHASES = Field("phases", "The phases", 2000, needed=False)
PAYER = Field("payer", "The payer", 120)
AUTHORIZATION_NUMBER = Field("number", "The authorization number", 60)
SERVICE = Field("service", "The service code", 20)
UNIT = Field("unit", "The unit")
UNITS = Field("units", "The units authorized")
AUTHORIZATION_START = Field("start", "The start date")
AUTHORIZATION_END = Field("end", "The end date")
AUTHORIZATION_NOTE = Field("note", "The note", 300, needed=False)
MODALITY = Field("modality", "The modality", needed=False)


# ---- text --------------------------------------------------------------------------------------

def text(value: object, field: Field) -> str:
    """The text as it will be kept: NFC, trimmed, printable, within the field's length ("" when
    empty and not needed)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise EntryError(field, "not_text", "must be text")
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    if field.lines:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.strip()
    if field.lines:
        if UNPRINTABLE_IN_LINES.search(value):
            raise EntryError(field, "unprintable", "has a character that cannot be printed")
    elif LINE_BREAK.search(value):
        raise EntryError(field, "line_break", "has a line break; it must be one line")
    elif UNPRINTABLE.search(value):
        raise EntryError(field, "unprintable", "has a character that cannot be printed")
    if not value and field.needed:
        raise EntryError(field, "missing", "is needed")
    if field.most and len(value) > field.most:
        raise EntryError(field, "too_long", f"is longer than {field.most} characters")
    return value


def _one_word(value: object, field: Field, reason: str) -> str:
    word = text(value, field)
    if ONE_WORD.search(word):
        raise EntryError(field, "not_one_word", reason, word)
    return word


def client_id(value: object, field: Field = CLIENT_ID) -> str:
    """The program's own id for a client: one word, like C1042."""
    return _one_word(value, field, "cannot contain spaces; it is one word like C1042")


def group_code(value: object, field: Field = GROUP_CODE) -> str:
    return _one_word(value, field, "has a space; group codes are one word like RP-AM")


def group_codes(value: object, field: Field = GROUP_CODES) -> list[str]:
    """Group codes separated by spaces ("RP-AM TS-PM"), each named once."""
    codes = text(value, field).split()
    if len(set(codes)) != len(codes):
        raise EntryError(field, "repeated", "lists a group twice", sentence="A group is listed twice.")
    return codes


def level_code(value: object, field: Field = LEVEL_CODE) -> str:
    code = text(value, field)
    if not LEVEL_CODE_SHAPE.fullmatch(code):
        raise EntryError(field, "bad_level_code",
                         f"is up to {field.most} letters, digits, dots or dashes, like 2.1 or 2.1-A", code)
    return code


def username(value: object, field: Field = USERNAME) -> str:
    name = text(value, field)
    # ASCII only: a sign-in name is typed on any keyboard, and look-alike letters from other scripts
    # would make two accounts that read the same.
    if not all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name):
        raise EntryError(field, "bad_username", "may use only letters, digits, dots, dashes and underscores")
    return name


# ---- numbers, dates and times ------------------------------------------------------------------

def _typed(value: object, field: Field) -> str | None:
    """The trimmed text of a value that is not free text, or None when empty and not needed."""
    typed = text(value, replace(field, most=0))
    return typed or None


def hours(value: object, field: Field = WEEKLY_HOURS) -> int | None:
    """Hours a week as whole minutes ("9", "7.5", "7.25"), read exactly (no binary fractions)."""
    typed = _typed(value, field)
    if typed is None:
        return None
    if not HOURS.fullmatch(typed):
        raise EntryError(field, "not_hours", "is not a number of hours like 9 or 7.5", typed)
    minutes = Decimal(typed) * 60
    if minutes > MAX_WEEKLY_HOURS * 60 or minutes != minutes.to_integral_value():
        raise EntryError(field, "hours_out_of_range", f"must be hours from 0 to {MAX_WEEKLY_HOURS}, in whole minutes",
                         typed)
    return int(minutes)


def hours_as_typed(minutes: int) -> str:
    """Minutes as a person types hours: 540 -> "9", 450 -> "7.5" (the inverse of `hours`)."""
    amount = Decimal(minutes) / 60
    return format(amount.quantize(Decimal("0.000001")).normalize(), "f")


def days_per_week(value: object, field: Field = DAYS_PER_WEEK) -> int | None:
    typed = _typed(value, field)
    if typed is None:
        return None
    if not WHOLE.fullmatch(typed) or int(typed) > 7:
        raise EntryError(field, "not_days", "must be a whole number of days from 0 to 7", typed)
    return int(typed)


def week_number(value: object, field: Field) -> int | None:
    """A plan week (1 is the week the plan starts)."""
    typed = _typed(value, field)
    if typed is None:
        return None
    if not WHOLE.fullmatch(typed) or not 1 <= int(typed) <= MAX_PLAN_WEEK:
        raise EntryError(field, "not_week", f"must be whole numbers from 1 to {MAX_PLAN_WEEK}, like 1 and 4", typed)
    return int(typed)


def day(value: object, field: Field = PLAN_START) -> date | None:
    """A date written like 2026-03-02."""
    typed = _typed(value, field)
    if typed is None:
        return None
    if DATE.fullmatch(typed):
        try:
            return date.fromisoformat(typed)
        except ValueError:
            pass
    raise EntryError(field, "not_a_date", "is not a date like 2026-03-02", typed)


def clock_time(value: object, field: Field = START) -> time | None:
    """A time of day on the 24-hour clock, like 09:00 or 9:05."""
    typed = _typed(value, field)
    if typed is None:
        return None
    match = CLOCK.fullmatch(typed)
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        return time(int(match.group(1)), int(match.group(2)))
    raise EntryError(field, "not_a_time", "is not a time like 09:00 (24-hour clock)", typed)


def time_range(start: time, end: time, field: Field = END) -> None:
    """A group meets from start to a later end on the same day."""
    if end <= start:
        raise EntryError(field, "end_not_after_start", f"{end:%H:%M} is not after start {start:%H:%M}",
                         sentence=f"{field.label} must be after the start time (on the same day).")


# ---- authorizations and modality -----------------------------------------------------------------

SERVICE_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9.\-]*", re.ASCII)
UNIT_WORDS = ("day", "session")
MODALITIES = ("in_person", "telehealth")
MAX_UNITS = 9999


def service_code(value: object, field: Field = SERVICE) -> str:
    """A service code as the payer writes it (H0015, S9480, 90853 or the program's own), upper case."""
    code = text(value, field).upper()
    if not SERVICE_SHAPE.fullmatch(code):
        raise EntryError(field, "bad_service", "is letters and digits like H0015 or 90853", code)
    return code


def authorization_number(value: object, field: Field = AUTHORIZATION_NUMBER) -> str:
    return _one_word(value, field, "cannot contain spaces; it is one word like A-12345")


def unit(value: object, field: Field = UNIT) -> str:
    """`day` or `session`."""
    word = text(value, field).lower()
    if word not in UNIT_WORDS:
        raise EntryError(field, "bad_unit", "must be day or session", word)
    return word


def units(value: object, field: Field = UNITS) -> int:
    """A whole number of units, at least 1."""
    typed = text(value, replace(field, most=0))
    if not typed:
        raise EntryError(field, "missing", "is needed")
    if not WHOLE.fullmatch(typed) or not 1 <= int(typed) <= MAX_UNITS:
        raise EntryError(field, "bad_units", f"must be a whole number from 1 to {MAX_UNITS}", typed)
    return int(typed)


def date_range(start: date, end: date, field: Field = AUTHORIZATION_END) -> None:
    """An end on or after the start (both dates included)."""
    if end < start:
        raise EntryError(field, "end_before_start", f"{end} is before the start {start}",
                         sentence=f"{field.label} is before the start date.")


def modality(value: object, field: Field = MODALITY) -> str:
    """in_person (when empty) or telehealth."""
    word = text(value, field).lower() or "in_person"
    if word not in MODALITIES:
        raise EntryError(field, "bad_modality", "must be in_person, telehealth or empty", word)
    return word


# ---- weekdays ------------------------------------------------------------------------------------

def weekdays(value: object, field: Field = WEEKDAYS) -> str:
    """Day names ("Mon Wed Fri", full names and commas too, or a form's ticked boxes) as stored:
    short names in week order, "Mon Wed Fri"."""
    if isinstance(value, (list, tuple)):
        words = [text(word, replace(field, needed=False)) for word in value]
        typed = " ".join(words)
    else:
        typed = text(value, field if field.needed else replace(field, needed=False))
    words = typed.replace(",", " ").split()
    if not words:
        if field.needed:
            raise EntryError(field, "missing", "is needed")
        return ""
    if any(word.lower() not in DAY_WORDS for word in words):
        raise EntryError(field, "not_weekdays", "must be day names like Mon Wed Fri", typed)
    numbers = sorted({DAY_WORDS[word.lower()] for word in words})
    if len(numbers) != len(words):
        raise EntryError(field, "repeated", "names a day twice", typed)
    return " ".join(WEEKDAY_NAMES[number] for number in numbers)


def weekday_numbers(stored: str) -> list[int]:
    """Stored weekdays ("Mon Wed Fri") as Python's weekday numbers ([0, 2, 4])."""
    return [WEEKDAY_NAMES.index(name) for name in stored.split()]


# ---- phases --------------------------------------------------------------------------------------

def phase(first: object, last: object, hours_typed: object, days_typed: object, field: Field) -> Phase:
    """One step of a plan: weeks first..last (last empty: that week alone) at its hours and days."""
    weeks = field.part("weeks", "weeks")
    first_week = week_number(first, weeks)
    last_week = week_number(last, replace(weeks, needed=False)) or first_week
    minutes = hours(hours_typed, field.part("hours", "hours"))
    days = days_per_week(days_typed, field.part("days", "days"))
    return Phase(first_week, last_week, minutes, days)


def phases(value: object, field: Field = PHASES) -> tuple[Phase, ...]:
    """`1-4:9/3 5-8:6/2`: weeks 1-4 at 9 hours on 3 days, weeks 5-8 at 6 hours on 2 days."""
    found = []
    for token in text(value, field).split():
        match = PHASE.fullmatch(token)
        one = Field(f"phase {token!r}", f"The phase {token}")
        if not match:
            raise EntryError(one, "not_a_phase", "is not like 1-4:9/3 (weeks 1-4, 9 hours on 3 days)")
        found.append(phase(match.group(1), match.group(2), match.group(3), match.group(4), one))
    return tuple(sorted(found, key=lambda p: p.first_week))


# ---- many fields at once -------------------------------------------------------------------------

class Problems:
    """Each field's refusal, gathered so that a person sees them all at once."""

    def __init__(self):
        self.found: list[tuple[str, str]] = []  # (field name, sentence); "" for the record as a whole

    def check(self, rule, value, *args):
        """The rule's clean value, or None with its refusal noted."""
        try:
            return rule(value, *args)
        except EntryError as exc:
            self.add(exc.message, exc.field.name)
            return None

    def add(self, sentence: str, field_name: str = "") -> None:
        self.found.append((field_name, sentence))

    def __bool__(self) -> bool:
        return bool(self.found)

    @property
    def sentences(self) -> list[str]:
        return [sentence for _name, sentence in self.found]

    def by_field(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, sentence in self.found:
            grouped.setdefault(name, []).append(sentence)
        return grouped


class Refused(ValueError):
    """A record that cannot be saved: `problems` are sentences for the person; `by_field` the same
    sentences by the field each belongs to ("" for the record as a whole)."""

    def __init__(self, problems: Problems | Iterable[str]):
        if not isinstance(problems, Problems):
            gathered = Problems()
            for sentence in problems:
                gathered.add(sentence)
            problems = gathered
        self.problems = problems.sentences
        self.by_field = problems.by_field()
        super().__init__(" ".join(self.problems))


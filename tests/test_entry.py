"""iop.rules.entry, the one reader of what people type: tables of inputs and what each becomes or why
it is refused, in a form's words and in a file's."""
from __future__ import annotations

import unicodedata
from datetime import date, time

import pytest
from sqlalchemy import String

from iop.rules import entry
from iop.rules.entry import EntryError, Field
from iop.rules.hours import Phase

NAME = entry.FIRST_NAME


def refused(rule, value, *args) -> EntryError:
    with pytest.raises(EntryError) as caught:
        rule(value, *args)
    return caught.value


# ---- text ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, kept", [
    ("Ana", "Ana"),
    ("  Ana  ", "Ana"),
    ("\tAna\u00a0", "Ana"),
    ("Ana María", "Ana María"),
    ("Jos\u0065\u0301", "Jos\u00e9"),  # e + combining acute: the same name as the precomposed é
    ("O'Brien-Smith", "O'Brien-Smith"),
    ("李小龍", "李小龍"),
    ("ﬁona", "ﬁona"),  # NFC, not NFKC: a ligature a person typed stays as typed
    ("a" * 80, "a" * 80),
])
def test_one_line_text_is_kept_normalised_and_trimmed(typed, kept):
    assert entry.text(typed, NAME) == kept
    assert unicodedata.is_normalized("NFC", entry.text(typed, NAME))


@pytest.mark.parametrize("typed, code, sentence, line", [
    ("", "missing", "The first name is needed.", "first_name is empty"),
    ("   ", "missing", "The first name is needed.", "first_name is empty"),
    (None, "missing", "The first name is needed.", "first_name is empty"),
    ("a" * 81, "too_long", "The first name is longer than 80 characters.", "first_name is longer than 80 characters"),
    ("An\x00a", "unprintable", "The first name has a character that cannot be printed.",
     "first_name has a character that cannot be printed"),
    ("An\x1ba", "unprintable", None, None),  # ESC: a terminal's escape sequences
    ("An\x7fa", "unprintable", None, None),  # DEL
    ("An\x9ba", "unprintable", None, None),  # C1 (CSI)
    ("An\ta", "unprintable", None, None),  # a tab inside a one-line field
    ("Ana\u202eairaM", "unprintable", None, None),  # right-to-left override
    ("Ana\u202a", "unprintable", None, None),  # left-to-right embedding (trailing, so not trimmed away)
    ("\u2066Ana\u2069", "unprintable", None, None),  # isolates
    ("Ana\nMaria", "line_break", "The first name has a line break; it must be one line.",
     "first_name has a line break; it must be one line"),
    ("Ana\rMaria", "line_break", None, None),
    ("Ana\u2028Maria", "line_break", None, None),
    ("Ana\x85Maria", "line_break", None, None),  # NEL
    (42, "not_text", "The first name must be text.", "first_name must be text"),
])
def test_one_line_text_refused(typed, code, sentence, line):
    error = refused(entry.text, typed, NAME)
    assert error.code == code
    if sentence:
        assert error.message == sentence and str(error) == sentence
    if line:
        assert error.in_file == line


def test_a_field_may_say_what_is_missing_in_its_own_words():
    assert refused(entry.text, " ", entry.KIOSK_NAME).message == "A kiosk needs a name (for example: Front desk)."
    assert refused(entry.text, " ", entry.KIOSK_NAME).in_file == "name is empty"


def test_length_counts_characters_after_normalising():
    decomposed = "e\u0301" * 80  # 160 code points typed, 80 characters kept
    assert entry.text(decomposed, NAME) == "\u00e9" * 80


def test_optional_text_may_be_empty():
    assert entry.text("  ", entry.ROOM) == ""
    assert entry.text(None, entry.REASON) == ""


@pytest.mark.parametrize("typed, kept", [
    ("Goals met.\r\nNext: relapse plan.", "Goals met.\nNext: relapse plan."),
    ("\n  Line one\n\tindented\n\n", "Line one\n\tindented"),
    ("Mac line\rend", "Mac line\nend"),
])
def test_notes_keep_their_lines_and_tabs(typed, kept):
    assert entry.text(typed, entry.NOTE) == kept


@pytest.mark.parametrize("typed", ["Bell\x07", "a\x00b", "a\u202eb", "a\x1bb", "a\vb", "a\x85b"])
def test_notes_refuse_other_controls(typed):
    assert refused(entry.text, typed, entry.NOTE).message == "The note has a character that cannot be printed."


def test_notes_are_bounded():
    assert entry.text("x" * 20_000, entry.NOTE)
    assert refused(entry.text, "x" * 20_001, entry.NOTE).code == "too_long"


def test_every_field_fits_its_column():
    """A field's length is its column's size, so nothing accepted is cut or refused by the database."""
    from iop.store.models import Attendance, Client, Group, GroupSession, KioskDevice, LevelOfCare, StaffUser

    columns = {
        entry.CLIENT_ID: Client.client_id, entry.FIRST_NAME: Client.first_name, entry.LAST_NAME: Client.last_name,
        entry.GROUP_CODE: Group.code, entry.GROUP_NAME: Group.name, entry.ROOM: Group.room, entry.TRACK: Group.track,
        entry.LEVEL_CODE: LevelOfCare.code, entry.LEVEL_NAME: LevelOfCare.name, entry.USERNAME: StaffUser.username,
        entry.DISPLAY_NAME: StaffUser.display_name, entry.CREDENTIALS: StaffUser.credentials,
        entry.KIOSK_NAME: KioskDevice.name, entry.REASON: Attendance.reason,
    }
    for field, column in columns.items():
        assert isinstance(column.type, String) and field.most == column.type.length, field.name
    assert GroupSession.note_text.type.length is None  # Text: the note's bound is the rule's own


# ---- ids, codes and names of things ------------------------------------------------------------------

@pytest.mark.parametrize("rule, typed, kept", [
    (entry.client_id, " C1042 ", "C1042"),
    (entry.client_id, "MRN-0001/a", "MRN-0001/a"),
    (entry.group_code, "RP-AM", "RP-AM"),
    (entry.level_code, "2.1-A", "2.1-A"),
    (entry.username, "dana.o_k-1", "dana.o_k-1"),
    (entry.group_codes, "RP-AM  TS-PM", ["RP-AM", "TS-PM"]),
    (entry.group_codes, "", []),
])
def test_ids_and_codes_kept(rule, typed, kept):
    assert rule(typed) == kept


@pytest.mark.parametrize("rule, typed, code, words", [
    (entry.client_id, "C 1042", "not_one_word", "The client ID cannot contain spaces; it is one word like C1042."),
    (entry.client_id, "C\u00a01042", "not_one_word", None),  # a no-break space inside is a space too
    (entry.client_id, "C1042\u202e", "unprintable", None),
    (entry.client_id, "", "missing", "The client ID is needed."),
    (entry.client_id, "C" * 41, "too_long", None),
    (entry.group_code, "RP AM", "not_one_word", "The group code has a space; group codes are one word like RP-AM."),
    (entry.level_code, "2 1", "bad_level_code", None),
    (entry.level_code, ".21", "bad_level_code", None),
    (entry.level_code, "2" * 21, "too_long", None),
    (entry.username, "dana smith", "bad_username", None),
    (entry.username, "dana\x00", "unprintable", None),
    (entry.group_codes, "RP-AM RP-AM", "repeated", "A group is listed twice."),
])
def test_ids_and_codes_refused(rule, typed, code, words):
    error = refused(rule, typed)
    assert error.code == code
    if words:
        assert error.message == words


def test_a_value_shown_in_a_files_line_is_quoted():
    assert refused(entry.client_id, "C 9").in_file == "client_id 'C 9' cannot contain spaces; it is one word like C1042"


# ---- hours, days, weeks ------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, minutes", [
    ("9", 540), ("7.5", 450), ("7.25", 435), ("0", 0), ("168", 10080), ("0.05", 3), ("9.000", 540),
    ("", None), ("  ", None),
])
def test_hours_are_read_exactly(typed, minutes):
    assert entry.hours(typed, Field("h", "Hours", needed=False)) == minutes


@pytest.mark.parametrize("typed, code", [
    ("nine", "not_hours"), ("9,5", "not_hours"), ("-1", "not_hours"), ("1e1", "not_hours"), ("inf", "not_hours"),
    ("NaN", "not_hours"), ("9.", "not_hours"), (".5", "not_hours"), ("1_0", "not_hours"), ("٩", "not_hours"),
    ("𝟗", "not_hours"), ("+9", "not_hours"), ("9" * 5000, "not_hours"),
    ("168.5", "hours_out_of_range"), ("7.51", "hours_out_of_range"), ("0.01", "hours_out_of_range"),
    ("", "missing"),
])
def test_hours_refused(typed, code):
    assert refused(entry.hours, typed, entry.WEEKLY_HOURS).code == code


def test_hours_words():
    assert refused(entry.hours, "nine", entry.WEEKLY_HOURS).in_file == \
        "weekly_hours 'nine' is not a number of hours like 9 or 7.5"
    assert refused(entry.hours, "200", entry.WEEKLY_HOURS).message == \
        "Weekly hours must be hours from 0 to 168, in whole minutes."


@pytest.mark.parametrize("minutes, typed", [(540, "9"), (450, "7.5"), (435, "7.25"), (0, "0"), (600, "10"), (3, "0.05")])
def test_hours_as_typed_reads_back_to_the_same_minutes(minutes, typed):
    assert entry.hours_as_typed(minutes) == typed
    assert entry.hours(typed) == minutes


@pytest.mark.parametrize("typed, days", [("0", 0), ("3", 3), ("7", 7), (" 5 ", 5), ("05", 5)])
def test_days_per_week(typed, days):
    assert entry.days_per_week(typed) == days


@pytest.mark.parametrize("typed", ["8", "-1", "3.0", "three", "²", "٣", "", "1" * 5000])
def test_days_per_week_refused(typed):
    error = refused(entry.days_per_week, typed)
    assert error.code in ("not_days", "missing")


# ---- dates and times -----------------------------------------------------------------------------

@pytest.mark.parametrize("typed, kept", [("2026-03-02", date(2026, 3, 2)), (" 2026-12-31 ", date(2026, 12, 31))])
def test_dates(typed, kept):
    assert entry.day(typed) == kept


@pytest.mark.parametrize("typed", ["03/02/2026", "2026-3-2", "20260302", "2026-W10-1", "2026-02-30", "2026-13-01",
                                   "２０２６-03-02", "2026-03-02T09:00", "soon"])
def test_dates_refused(typed):
    error = refused(entry.day, typed, entry.PLAN_START)
    assert error.code == "not_a_date" and error.in_file == f"plan_start {typed.strip()!r} is not a date like 2026-03-02"


@pytest.mark.parametrize("typed, kept", [("09:00", time(9)), ("9:05", time(9, 5)), ("23:59", time(23, 59)),
                                         ("00:00", time(0))])
def test_times(typed, kept):
    assert entry.clock_time(typed) == kept


@pytest.mark.parametrize("typed", ["24:00", "09:60", "9", "9am", "6pm", "09:00:30", "0900", "9:5", "-1:00", "٠٩:٠٠"])
def test_times_refused(typed):
    assert refused(entry.clock_time, typed, entry.START).message == \
        "The start time is not a time like 09:00 (24-hour clock)."


def test_an_end_before_its_start():
    error = refused(entry.time_range, time(21), time(18))
    assert error.in_file == "end 18:00 is not after start 21:00"
    assert error.message == "The end time must be after the start time (on the same day)."
    assert entry.time_range(time(9), time(12)) is None


# ---- weekdays ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, stored", [
    ("Mon Wed Fri", "Mon Wed Fri"), ("fri, mon,wed", "Mon Wed Fri"), ("Monday Tuesday", "Mon Tue"),
    (["Wed", "Mon"], "Mon Wed"), ("SUN", "Sun"),
])
def test_weekdays_are_stored_short_and_in_order(typed, stored):
    assert entry.weekdays(typed) == stored
    assert entry.weekday_numbers(stored) == [entry.WEEKDAY_NAMES.index(name) for name in stored.split()]


@pytest.mark.parametrize("typed, code, words", [
    ("", "missing", "Choose at least one weekday."),
    ([], "missing", "Choose at least one weekday."),
    ("Tue Funday", "not_weekdays", "The weekdays must be day names like Mon Wed Fri."),
    ("Tue Tuesday", "repeated", "The weekdays names a day twice."),
    (["Mon", "Mon"], "repeated", None),
    (["Mon", "Wed\x00"], "unprintable", None),
])
def test_weekdays_refused(typed, code, words):
    error = refused(entry.weekdays, typed)
    assert error.code == code
    if words:
        assert error.message == words


# ---- phases --------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, kept", [
    ("1-4:9/3 5-8:6/2", (Phase(1, 4, 540, 3), Phase(5, 8, 360, 2))),
    ("5-8:6/2 1-4:9/3", (Phase(1, 4, 540, 3), Phase(5, 8, 360, 2))),
    ("1:7.5/3", (Phase(1, 1, 450, 3),)),
    ("", ()),
])
def test_phases_text(typed, kept):
    assert entry.phases(typed) == kept


@pytest.mark.parametrize("typed, line", [
    ("1-4 9h", "phase '1-4' is not like 1-4:9/3 (weeks 1-4, 9 hours on 3 days)"),
    ("1-4:nine/3", "phase '1-4:nine/3' hours 'nine' is not a number of hours like 9 or 7.5"),
    ("1-4:9/8", "phase '1-4:9/8' days '8' must be a whole number of days from 0 to 7"),
    ("1-99999:9/3", "phase '1-99999:9/3' weeks '99999' must be whole numbers from 1 to 520, like 1 and 4"),
    ("0-4:9/3", "phase '0-4:9/3' weeks '0' must be whole numbers from 1 to 520, like 1 and 4"),
])
def test_phases_text_refused(typed, line):
    assert refused(entry.phases, typed).in_file == line


def test_a_phase_row_on_a_form():
    row = Field("phase 1", "Phase 1")
    assert entry.phase("1", "", "9", "3", row) == Phase(1, 1, 540, 3)
    assert entry.phase("1", "4", "7.5", "2", row) == Phase(1, 4, 450, 2)
    assert refused(entry.phase, "1", "4", "9", "9", row).message == \
        "Phase 1 days must be a whole number of days from 0 to 7."
    assert refused(entry.phase, "one", "4", "9", "3", row).message == \
        "Phase 1 weeks must be whole numbers from 1 to 520, like 1 and 4."
    assert refused(entry.phase, "1", "4", "", "3", row).message == "Phase 1 hours is needed."


# ---- many fields at once -------------------------------------------------------------------------

def test_problems_gather_every_refusal_by_field():
    problems = entry.Problems()
    assert problems.check(entry.client_id, "C 9") is None
    assert problems.check(entry.text, "Ana", NAME) == "Ana"
    assert problems.check(entry.text, "", entry.LAST_NAME) is None
    problems.add("Another client already has the ID C1.", "client_id")
    refusal = entry.Refused(problems)
    assert refusal.problems == ["The client ID cannot contain spaces; it is one word like C1042.",
                                "The last name is needed.", "Another client already has the ID C1."]
    assert refusal.by_field == {
        "client_id": ["The client ID cannot contain spaces; it is one word like C1042.",
                      "Another client already has the ID C1."],
        "last_name": ["The last name is needed."]}
    assert entry.Refused(["A whole-record problem."]).by_field == {"": ["A whole-record problem."]}

"""What the coordinator's forms refuse the CSV imports refuse, and the reverse (and the commands,
where they take the same thing): one table of inputs, each run through every way in. A refusal
names the same problem in both, in the form's sentence and the file's line."""
from __future__ import annotations

import csv
import html
import io
import re

import pytest
from sqlalchemy import func, select

from iop.files import imports
from iop.store import db
from iop.store.models import Client, Group, KioskDevice, Plan

# ---- the table: (field, what is typed, accepted?, words both answers use when refused) --------------

CLIENT_CASES = [
    ("client_id", " C77 ", True, ""),
    ("client_id", "C 77", False, "cannot contain spaces"),  # the import took it before; the form did not
    ("client_id", "C\u00a077", False, "cannot contain spaces"),
    ("client_id", "C\t77", False, "cannot be printed"),
    ("client_id", "C77\u202e", False, "cannot be printed"),
    ("client_id", "C" * 40, True, ""),
    ("client_id", "C" * 41, False, "longer than 40 characters"),
    ("client_id", "", False, ""),
    ("first_name", "Ana María", True, ""),
    ("first_name", "Jos\u0065\u0301", True, ""),
    ("first_name", "e\u0301" * 80, True, ""),  # 80 letters once normalised
    ("first_name", "a" * 81, False, "longer than 80 characters"),
    ("first_name", "An\x1ba", False, "cannot be printed"),
    ("first_name", "An\x7fa", False, "cannot be printed"),
    ("first_name", "An\x9ba", False, "cannot be printed"),
    ("first_name", "Ana\u202eairaM", False, "cannot be printed"),
    ("first_name", "\u2066Ana\u2069", False, "cannot be printed"),
    ("first_name", "Ana\nMaria", False, "line break"),
    ("first_name", "Ana\rMaria", False, "line break"),
    ("first_name", "Ana\u2028Maria", False, "line break"),
    ("last_name", "O'Brien-Smith", True, ""),
    ("last_name", "  ", False, ""),
]

PLAN_CASES = [
    ("weekly_hours", "7.25", True, ""),
    ("weekly_hours", "168", True, ""),
    ("weekly_hours", "7.51", False, "in whole minutes"),
    ("weekly_hours", "168.5", False, "from 0 to 168"),
    ("weekly_hours", "1e1", False, "is not a number of hours"),  # a float reader took it
    ("weekly_hours", "9.", False, "is not a number of hours"),
    ("weekly_hours", "nine", False, "is not a number of hours"),
    ("weekly_hours", "٩", False, "is not a number of hours"),
    ("weekly_hours", "", False, ""),
    ("days_per_week", "7", True, ""),
    ("days_per_week", "8", False, "whole number of days from 0 to 7"),
    ("days_per_week", "3.0", False, "whole number of days from 0 to 7"),
    ("days_per_week", "²", False, "whole number of days from 0 to 7"),
    ("plan_start", "2026-03-02", True, ""),
    ("plan_start", "20260302", False, "is not a date like 2026-03-02"),  # Python's ISO reader took it
    ("plan_start", "2026-3-2", False, "is not a date like 2026-03-02"),
    ("plan_start", "2026-02-30", False, "is not a date like 2026-03-02"),
    ("plan_end", "2026-04-26", True, ""),
    ("plan_end", "2026-02-01", False, "before"),
    ("level_of_care", "9.9", False, ""),
    ("phases", [("1", "4", "9", "3"), ("5", "8", "6", "2")], True, ""),
    ("phases", [("1", "4", "7.5", "3"), ("5", "", "6", "2")], True, ""),
    ("phases", [("2", "4", "9", "3")], False, "start at week 1"),
    ("phases", [("1", "4", "9", "3"), ("4", "8", "6", "2")], False, "overlap"),
    ("phases", [("1", "4", "9", "9")], False, "whole number of days from 0 to 7"),
    ("phases", [("1", "4", "7.51", "3")], False, "in whole minutes"),
    ("phases", [("1", "99999", "9", "3")], False, "from 1 to 520"),
]

GROUP_CASES = [
    ("code", "EV-MW ", True, ""),
    ("code", "EV MW", False, "one word"),
    ("code", "EV\u2029MW", False, "line break"),
    ("code", "X" * 41, False, "longer than 40 characters"),
    ("name", "Evening \u00e9", True, ""),
    ("name", "Evening\u202e", False, "cannot be printed"),
    ("name", "x" * 121, False, "longer than 120 characters"),
    ("room", "", True, ""),
    ("room", "Room\x07", False, "cannot be printed"),
    ("room", "r" * 61, False, "longer than 60 characters"),
    ("track", "yoga", False, "curriculum track"),
    ("weekdays", "monday wednesday", True, ""),
    ("weekdays", "Mon, Wed", True, ""),
    ("weekdays", "Mon Funday", False, "must be day names"),
    ("weekdays", "Tue Tuesday", False, "names a day twice"),
    ("weekdays", "", False, ""),
    ("start", "9:00", True, ""),
    ("start", "24:00", False, "is not a time like 09:00"),
    ("start", "6pm", False, "is not a time like 09:00"),
    ("start", "09:00:00", False, "is not a time like 09:00"),  # Python's ISO reader took it
    ("end", "17:00", False, "after"),
    ("end", "18:00", False, "after"),
]

KIOSK_NAMES = [
    ("  Lobby  ", True, ""),
    ("x" * 80, True, ""),
    ("x" * 81, False, "longer than 80 characters"),
    ("", False, "needs a name"),
    ("Lobby\u202e", False, "cannot be printed"),
    ("Lobby\nB", False, "line break"),
]

CARD_IDS = [
    (" C77 ", True, ""),
    ("C 77", False, "cannot contain spaces"),
    ("C77\u202e", False, "cannot be printed"),
    ("C78", False, "No client with id C78"),
]


# ---- the ways in ---------------------------------------------------------------------------------

@pytest.fixture
def desk(auth, client):
    auth.login("cora", role="coordinator")
    return client


def post_form(desk, path, data, form_path=None):
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', desk.get(form_path or path).get_data(as_text=True))
    return desk.post(path, data={"csrf_token": token.group(1), **data})


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def csv_bytes(header: list[str], row: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)  # its \r\n line ends make it quote a cell holding \r or \n, as spreadsheets do
    writer.writerow(header)
    writer.writerow(row)
    return out.getvalue().encode("utf-8")


def run_import(app, kind: str, header: list[str], row: list[str]) -> tuple[bool, str]:
    """(loaded?, the problems' lines)."""
    with app.app_context():
        try:
            imports.import_csv(kind, csv_bytes(header, row), via="web")
        except imports.ImportFailed as refused:
            return False, "\n".join(refused.problems) or refused.summary
    return True, ""


def count(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def agree(name, typed, accepted, words, form_ok, form_says, import_ok, import_says):
    assert form_ok == accepted, f"the form {'refused' if accepted else 'took'} {name}={typed!r}: {form_says[:300]}"
    assert import_ok == accepted, f"the import {'refused' if accepted else 'took'} {name}={typed!r}: {import_says}"
    if words:
        assert words in form_says, f"{words!r} not on the form's page"
        assert words in import_says, f"{words!r} not in the import's lines: {import_says}"


CLIENT_HEADER = ["client_id", "first_name", "last_name", "level_of_care", "plan_start", "plan_end", "weekly_hours",
                 "days_per_week", "groups"]


@pytest.mark.parametrize("name, typed, accepted, words", CLIENT_CASES, ids=lambda v: repr(v)[:30])
def test_a_client_field(app, desk, name, typed, accepted, words):
    values = {"client_id": "C77", "first_name": "Ana", "last_name": "Lopez", name: typed}
    form = post_form(desk, "/coordinator/clients/new", {**values, "status": "active"})
    form_ok = form.status_code == 302 and count(app, Client) == 1
    assert form.status_code in (302, 400)
    with app.app_context(), db.transaction() as session:  # the import starts from the same empty program
        for person in session.scalars(select(Client)):
            session.delete(person)
    row = [values["client_id"], values["first_name"], values["last_name"], "", "", "", "", "", ""]
    import_ok, import_says = run_import(app, "clients", CLIENT_HEADER, row)
    agree(name, typed, accepted, words, form_ok, page_text(form), import_ok, import_says)


def _phase_text(rows) -> str:
    return " ".join(f"{first}-{last}:{hours}/{days}" if last else f"{first}:{hours}/{days}"
                    for first, last, hours, days in rows)


@pytest.mark.parametrize("name, typed, accepted, words", PLAN_CASES, ids=lambda v: repr(v)[:30])
def test_a_plan_field(app, world, desk, name, typed, accepted, words):
    person = world.client("C1", "Maria", "Gonzalez")
    plan = {"level_of_care": "2.1", "plan_start": "2026-03-02", "plan_end": "", "weekly_hours": "9",
            "days_per_week": "3", "phases": [], name: typed}
    form_data = {"level_of_care": plan["level_of_care"], "start_date": plan["plan_start"],
                 "end_date": plan["plan_end"], "weekly_hours": plan["weekly_hours"],
                 "days_per_week": plan["days_per_week"]}
    for index, (first, last, hours, days) in enumerate(plan["phases"]):
        form_data.update({f"phase-{index}-first": first, f"phase-{index}-last": last,
                          f"phase-{index}-hours": hours, f"phase-{index}-days": days})
    form = post_form(desk, f"/coordinator/clients/{person.public_id}/plans/new", form_data)
    assert form.status_code in (302, 400)
    form_ok = form.status_code == 302 and count(app, Plan) == 1
    with app.app_context(), db.transaction() as session:
        for saved in session.scalars(select(Plan)):
            session.delete(saved)
    row = ["C1", "Maria", "Gonzalez", plan["level_of_care"], plan["plan_start"], plan["plan_end"],
           plan["weekly_hours"], plan["days_per_week"], "", _phase_text(plan["phases"])]
    import_ok, import_says = run_import(app, "clients", CLIENT_HEADER + ["phases"], row)
    agree(name, typed, accepted, words, form_ok, page_text(form), import_ok and count(app, Plan) == 1, import_says)


GROUP_HEADER = ["code", "name", "track", "room", "weekdays", "start", "end"]


@pytest.mark.parametrize("name, typed, accepted, words", GROUP_CASES, ids=lambda v: repr(v)[:30])
def test_a_group_field(app, desk, name, typed, accepted, words):
    values = {"code": "EV-MW", "name": "Evening", "track": "twelve-step", "room": "Room A", "weekdays": "Mon Wed",
              "start": "18:00", "end": "21:00", name: typed}
    form = post_form(desk, "/coordinator/groups/new", {**values, "weekdays": values["weekdays"].split(),
                                                       "facilitator_id": "", "active": "on"})
    assert form.status_code in (302, 400)
    form_ok = form.status_code == 302 and count(app, Group) == 1
    with app.app_context(), db.transaction() as session:
        for group in session.scalars(select(Group)):
            session.delete(group)
    import_ok, import_says = run_import(app, "groups", GROUP_HEADER, [values[column] for column in GROUP_HEADER])
    agree(name, typed, accepted, words, form_ok, page_text(form), import_ok, import_says)


# ---- the same things typed at the commands --------------------------------------------------------

@pytest.mark.parametrize("typed, accepted, words", KIOSK_NAMES, ids=lambda v: repr(v)[:30])
def test_a_kiosk_name_on_the_page_and_at_the_command(app, desk, runner, typed, accepted, words):
    page = post_form(desk, "/coordinator/kiosks", {"name": typed})
    page_ok = page.status_code == 200 and count(app, KioskDevice) == 1
    says = page_text(desk.get("/coordinator/kiosks")) if page.status_code == 302 else page_text(page)
    with app.app_context(), db.transaction() as session:
        for device in session.scalars(select(KioskDevice)):
            session.delete(device)
    command = runner.invoke(args=["kiosk", "enroll", typed])
    command_ok = command.exit_code == 0 and count(app, KioskDevice) == 1
    assert "Traceback" not in command.output
    agree("kiosk name", typed, accepted, words, page_ok, says, command_ok, command.output)


@pytest.mark.parametrize("typed, accepted, words", CARD_IDS, ids=lambda v: repr(v)[:30])
def test_a_client_id_for_cards_on_the_page_and_at_the_command(app, world, desk, runner, typed, accepted, words):
    world.client("C77", "Ana", "Lopez")
    page = post_form(desk, "/coordinator/cards/print", {"client_id": typed}, form_path="/coordinator/cards")
    page_ok = page.status_code == 200 and page.mimetype == "application/pdf"
    says = page_text(desk.get("/coordinator/cards")) if page.status_code == 302 else ""
    command = runner.invoke(args=["card-code", typed])
    assert "Traceback" not in command.output
    agree("client_id", typed, accepted, words, page_ok, says, command.exit_code == 0, command.output)


# ---- one name, however it was typed ------------------------------------------------------------------

def test_a_client_id_typed_two_ways_is_one_client(app, desk):
    """The form adds "CÉ1" typed with a combining accent; the import's precomposed "CÉ1" is the same client."""
    response = post_form(desk, "/coordinator/clients/new", {"client_id": "CE\u03011", "first_name": "Ana",
                                                            "last_name": "Lopez", "status": "active"})
    assert response.status_code == 302
    loaded, says = run_import(app, "clients", CLIENT_HEADER, ["C\u00c91", "Ana", "Lopez", "", "", "", "", "", ""])
    assert loaded, says
    with app.app_context():
        assert db.session().scalars(select(Client.client_id)).all() == ["C\u00c91"]

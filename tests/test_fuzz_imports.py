"""Property-based fuzzing of the CSV imports (hypothesis): any file, plausible or hostile, either loads
or is refused as a whole with line-numbered reasons, never an unexpected exception, and a refused file
writes nothing. The web upload answers every such file without a server error.
"""
from __future__ import annotations

import csv
import io
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iop.files import import_jobs, imports
from iop.store import db

EXAMPLES = int(os.environ.get("IOP_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
TABLES = ("program_group", "client", "client_group", "plan", "plan_phase", "group_session", "attendance",
          "audit_event")

junk = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "=1+1", "@SUM(A1)", "-", "0", "-1", "1e9",
                                                        "NaN", "∞", "𝟗", "١٢", "\u200b", "null", "None", ",", '"']))
dates = st.one_of(st.dates().map(str), st.sampled_from(["2026-02-30", "2026-13-01", "03/02/2026", "2026-3-2"]), junk)
times = st.one_of(st.times().map(lambda t: t.strftime("%H:%M")), st.sampled_from(["24:00", "9", "09:60", "9:5 PM"]),
                  junk)
numbers = st.one_of(st.integers(-5, 200).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str), junk)
weekdays = st.one_of(st.lists(st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "mon", "Funday"]),
                              max_size=8).map(" ".join), junk)
codes = st.one_of(st.sampled_from(["RP-AM", "TS-PM", "RP-AM TS-PM", "NOPE"]), st.from_regex(r"\A[A-Z]{2}-[A-Z0-9]{1,6}\Z"),
                  junk)
client_ids = st.one_of(st.sampled_from(["C1", "C2", "C404"]), st.from_regex(r"\AC[0-9]{1,6}\Z"), junk)
phases = st.one_of(st.sampled_from(["", "1-4:9/3 5-8:6/2", "1-4:9/3 3-8:6/2", "4-1:9/3", "1-4:99/9"]),
                   st.lists(st.tuples(st.integers(-1, 60), st.integers(-1, 60), st.integers(-1, 30),
                                      st.integers(-1, 8)).map(lambda t: f"{t[0]}-{t[1]}:{t[2]}/{t[3]}"),
                            max_size=3).map(" ".join), junk)

CELLS = {
    "groups": {"code": codes, "name": junk, "track": st.one_of(st.sampled_from(["relapse-prevention", "twelve-step"]), junk),
               "room": junk, "weekdays": weekdays, "start": times, "end": times},
    "clients": {"client_id": client_ids, "first_name": junk, "last_name": junk,
                "level_of_care": st.one_of(st.sampled_from(["1", "2.1", "2.5", "3.7"]), junk),
                "plan_start": dates, "plan_end": dates, "weekly_hours": numbers, "days_per_week": numbers,
                "groups": codes, "phases": phases},
    "attendance": {"client_id": client_ids, "group": codes, "date": dates, "check_in": times, "check_out": times,
                   "status": st.one_of(st.sampled_from(["", "present", "excused", "absent"]), junk)},
}


letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÁÉñü' -", min_size=1, max_size=12).map(str.strip).filter(bool)
VALID = {  # rows a program could really send, so the load path is fuzzed too
    "groups": {"code": st.from_regex(r"\AZ[A-Z]{1,3}-[0-9]{1,3}\Z"), "name": letters, "track": st.just("twelve-step"),
               "room": letters, "weekdays": st.just("Tue Thu"), "start": st.just("13:00"), "end": st.just("14:30")},
    "clients": {"client_id": st.from_regex(r"\AZ[0-9]{1,6}\Z"), "first_name": letters, "last_name": letters,
                "level_of_care": st.just("2.1"), "plan_start": st.dates().map(str), "plan_end": st.just(""),
                "weekly_hours": st.integers(1, 20).map(str), "days_per_week": st.integers(1, 5).map(str),
                "groups": st.just("RP-AM"), "phases": st.just("")},
    "attendance": {"client_id": st.just("C1"), "group": st.just("RP-AM"), "date": st.just("2026-03-02"),
                   "check_in": st.just("09:00"), "check_out": st.sampled_from(["11:00", "12:00", ""]),
                   "status": st.just("")},
}


@st.composite
def csv_files(draw):
    kind = draw(st.sampled_from(sorted(CELLS)))
    layout = imports.LAYOUTS[kind]
    if draw(st.integers(0, 5)) == 0:
        rows = draw(st.lists(st.fixed_dictionaries(VALID[kind]), min_size=1, max_size=3))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(layout.columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return kind, out.getvalue().encode("utf-8")
    columns = list(draw(st.sampled_from([layout.required, layout.columns]))) if draw(st.integers(0, 9)) else \
        draw(st.lists(st.sampled_from(list(layout.columns) + ["extra", ""]), max_size=12))
    rows = draw(st.lists(st.lists(st.one_of(*(CELLS[kind].get(c, junk) for c in columns or ["x"])),
                                  min_size=max(0, len(columns) - 1), max_size=len(columns) + 1), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(columns)
    writer.writerows(rows)
    raw = out.getvalue().encode("utf-8")
    damage = draw(st.integers(0, 9))
    if damage == 0:
        raw = draw(st.binary(max_size=300))
    elif damage == 1:
        raw = b"\xef\xbb\xbf" + raw
    elif damage == 2:
        raw = out.getvalue().encode("latin-1", "replace")
    elif damage == 3:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return kind, raw


def counts(app) -> dict[str, int]:
    from sqlalchemy import text

    with db.database(app).engine.connect() as connection:
        row = connection.execute(text("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES))).one()
    return dict(zip(TABLES, row))


def test_any_csv_loads_whole_or_is_refused_whole_with_line_numbers(app, world):
    group = world.group()  # RP-AM
    world.client("C1", "Maria", "Gonzalez", groups=[group])
    outcomes = {"loaded": 0, "refused": 0}

    @FUZZ
    @given(file=csv_files())
    def run(file):
        kind, raw = file
        before = counts(app)
        with app.app_context():
            try:
                imports.import_csv(kind, raw, via="web")
            except imports.ImportFailed as refused:
                outcomes["refused"] += 1
                assert refused.summary.startswith("Nothing was imported")
                assert all(re.match(r"^line \d+: \S", problem) for problem in refused.problems), refused.problems
                after = counts(app)
                assert after["audit_event"] == before["audit_event"] + 1, "a refusal is audited once (import.failed)"
                after["audit_event"] -= 1
                assert after == before, "a refused file wrote something"
            else:
                outcomes["loaded"] += 1

    run()
    assert outcomes["refused"] > outcomes["loaded"] > 0
    print(f"\nimport fuzz: {outcomes}")


def test_any_uploaded_file_is_answered_without_a_server_error(app, client, auth, world):
    world.group()
    auth.login("casey", role="coordinator")
    token = auth.csrf("/coordinator/exports")
    statuses: dict[int, int] = {}

    @settings(FUZZ, max_examples=max(50, EXAMPLES // 10))
    @given(file=csv_files(), name=st.one_of(st.just("f.csv"), st.text(max_size=30)))
    def run(file, name):
        kind, raw = file
        response = client.post(f"/coordinator/imports/{kind}", data={"csrf_token": token, "file": (io.BytesIO(raw), name)},
                               content_type="multipart/form-data")
        assert response.status_code < 500, response.data[:300]
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 303:  # taken: the job runs outside the request; its page says how it ended
            url = response.headers["Location"]
            assert import_jobs.wait(url.rsplit("/", 1)[1])
            page = client.get(url)
            assert page.status_code == 200 and "unexpected error" not in page.get_data(as_text=True)

    run()
    assert set(statuses) <= {303, 400, 413}, statuses

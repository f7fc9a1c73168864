"""Property-based fuzzing of the kiosk API (hypothesis): whatever a tablet, a broken scanner or an
attacker sends, the answer is never a server error, always the documented error shape, never a name
other than the scanner's own short name, and invalid input writes nothing.

EXAMPLES scales the run (IOP_FUZZ_EXAMPLES overrides it); CI's run sends well over 10,000 generated
inputs across the tests/test_fuzz_*.py files.
"""
from __future__ import annotations

import json
import os
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("IOP_FUZZ_EXAMPLES", "3000"))
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
REFUSED_AT_THE_EDGE = {400, 403, 413, 415}  # before any database write
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False), st.text(max_size=80))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def mutations(code: str):
    """A real card, damaged the ways cards and scanners damage it (and forgers try)."""
    return st.one_of(
        st.just(code),
        st.integers(0, len(code) - 1).map(lambda n: code[:n]),
        st.tuples(st.integers(0, len(code) - 1), st.sampled_from(string.printable)).map(
            lambda t: code[:t[0]] + t[1] + code[t[0] + 1:]),
        st.text(max_size=30).map(lambda extra: code + extra),
        st.text(max_size=30).map(lambda extra: extra + code),
        st.just(code.upper()), st.just(code.swapcase()), st.just(" " + code + "\n"),
        st.just(code.replace(".", "")), st.just(".".join(reversed(code.split(".")))),
    )


def scan_bodies(code: str):
    scan_ids = st.one_of(st.uuids().map(str), st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z"), st.text(max_size=70),
                         json_scalars)
    codes = st.one_of(mutations(code), st.text(max_size=300), json_values,
                      st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=220))
    stamps = st.one_of(st.none(), st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                       st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=50), json_scalars)
    actions = st.one_of(st.just("check_out"), json_scalars)
    shaped = st.fixed_dictionaries({"code": codes, "scan_id": scan_ids},
                                   optional={"scanned_at": stamps, "action": actions, "extra": json_values})
    return st.one_of(shaped, json_values)


TABLES = ("attendance", "scan", "client", "group_session", "audit_event", "plan", "program_group")


def counts(app) -> dict[str, int]:
    """Rows in every table a scan could touch, in one query."""
    from sqlalchemy import text

    from iop.store import db

    with db.database(app).engine.connect() as connection:
        row = connection.execute(text("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES))).one()
    return dict(zip(TABLES, row))


def check_answer(response, other_names=()):
    assert response.status_code < 500, response.data[:300]
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.data[:300]
    if response.status_code == 200:
        assert body["result"] in ("checked_in", "checked_out", "already_checked_in", "confirm_check_out")
        assert re.fullmatch(r"\S+ \S\.", body["client"]["display_name"])
    else:
        assert set(body) == {"error"} and ERROR_CODE.match(body["error"]["code"]) and body["error"]["message"]
    text = response.get_data(as_text=True)
    for name in other_names:
        assert name not in text
    return body


def test_any_json_to_the_scan_api_is_answered_without_error_and_bad_input_writes_nothing(kiosk_scene, app, world):
    app.config["KIOSK_BAD_SCANS_PER_MINUTE"] = 10**9  # the slow-down would otherwise answer 429 to almost all
    other = world.client("C2", "Ottoline", "Brackenridge", groups=[kiosk_scene.group])
    code = kiosk_scene.card(kiosk_scene.maria)
    seen: dict[int, int] = {}

    @FUZZ
    @given(body=scan_bodies(code))
    def run(body):
        before = counts(app)
        response = kiosk_scene.http.post("/kiosk/api/scan", json=body)
        check_answer(response, other_names=("Gonzalez", "Ottoline", "Brackenridge", other.client_id))
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        after = counts(app)
        if response.status_code != 200:
            assert after["attendance"] == before["attendance"], body
        if response.status_code in REFUSED_AT_THE_EDGE:
            assert after == before, body
        assert after["client"] == before["client"] and after["group_session"] <= before["group_session"] + 1

    run()
    assert sum(seen.values()) >= min(EXAMPLES, 100)
    assert 200 in seen and 400 in seen, seen  # both the happy path and the refusals were reached
    print(f"\nscan API fuzz: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")


raw_bodies = st.one_of(st.binary(max_size=600), st.text(max_size=600).map(lambda t: t.encode("utf-8", "replace")))
content_types = st.sampled_from([None, "application/json", "application/json; charset=latin-1", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                 "application/json; charset=utf-16", "application/ld+json", "*/*"])


def test_any_bytes_with_any_content_type_are_answered_without_error(kiosk_scene, app):
    app.config["KIOSK_BAD_SCANS_PER_MINUTE"] = 10**9
    before = counts(app)
    seen: dict[int, int] = {}

    @settings(FUZZ, max_examples=EXAMPLES // 2)
    @given(raw=raw_bodies, content_type=content_types,
           path=st.sampled_from(["/kiosk/api/scan", "/kiosk/api/help", "/kiosk/api/scan?code=x"]))
    def run(raw, content_type, path):
        headers = {"Content-Type": content_type} if content_type else {}
        response = kiosk_scene.http.post(path, data=raw, headers=headers)
        assert response.status_code < 500
        if response.status_code != 200:
            check_answer(response)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    run()
    after = counts(app)
    assert after["attendance"] == before["attendance"] and after["client"] == before["client"]
    print(f"\nraw bodies fuzz: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")


def test_json_with_odd_encodings_and_nesting_is_refused_cleanly(kiosk_scene, app):
    for raw in (b"{" * 5000 + b"}" * 5000, b'{"code": "\\ud800", "scan_id": "abcdefgh"}', b"\xef\xbb\xbf{}",
                json.dumps({"code": "x" * 10_000, "scan_id": "abcdefgh"}).encode(), b"[]", b"null", b"1e999999"):
        response = kiosk_scene.http.post("/kiosk/api/scan", data=raw, headers={"Content-Type": "application/json"})
        check_answer(response)
        assert response.status_code != 200

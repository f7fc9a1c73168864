"""Bad JSON of any shape, sent to every JSON endpoint through the real app, answers 400 `bad_request`:
deep nesting (a RecursionError in the decoder was a 500), huge numbers, wrong types, invalid UTF-8, a
top-level array. A table of the shapes people and attackers send, then hypothesis for the rest."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.web import AuthActions, csrf_from

DEEP = 2000
BAD_BODIES = {
    "array nested 2000 deep": b"[" * DEEP + b"]" * DEEP,
    "object nested 2000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "object with a deep value": b'{"code":' + b"[" * DEEP + b"]" * DEEP + b',"scan_id":"abcdefgh"}',
    "unclosed nesting": b"[" * DEEP,
    "a number of 5000 digits": b"1" * 5000,
    "an object with a 5000-digit number": b'{"code":' + b"9" * 5000 + b"}",
    "a number too large for a float": b'{"code": 1e999999, "scan_id": 1e999999}',
    "invalid UTF-8": b'{"code": "\xff\xfe\xfd", "scan_id": "abcdefgh"}',
    "a lone surrogate escape": b'{"code": "\\ud800", "scan_id": "\\udfff"}',
    "a top-level array": b'[{"code": "x", "scan_id": "abcdefgh"}]',
    "a top-level string": b'"hello"',
    "a top-level number": b"42",
    "null": b"null",
    "true": b"true",
    "NaN": b"NaN",
    "truncated": b'{"code": "x", "scan',
    "nothing": b"",
    "only spaces": b"   ",
    "a byte-order mark then an array": b"\xef\xbb\xbf[]",
    "two documents": b"{}{}",
}


@pytest.fixture
def endpoints(app, client, auth, live_group, kiosk_scene):
    """(path, the client that may call it, headers) for every endpoint that reads a JSON body."""
    group = live_group(code="JS-AM", facilitator="dana", members=(("C7", "Ona", "Lind"),))
    staff = app.test_client()
    AuthActions(staff, app).login("dana")
    csrf = csrf_from(staff.get(f"/facilitator/sessions/{group.session_id}").get_data(as_text=True))
    staff_headers = {"X-CSRFToken": csrf, "Accept": "application/json"}
    return [
        ("/kiosk/api/scan", client, {}),
        ("/kiosk/api/help", client, {}),
        ("/api/keepalive", staff, staff_headers),
        (f"/facilitator/sessions/{group.session_id}/attendance", staff, staff_headers),
        (f"/facilitator/sessions/{group.session_id}/close", staff, staff_headers),
        (f"/facilitator/sessions/{group.session_id}/module", staff, staff_headers),
    ]


def post_json(http, path, body: bytes, headers):
    return http.post(path, data=body, headers={**headers, "Content-Type": "application/json"})


KIOSK_BODY_LIMIT = 4 * 1024  # the kiosk API's documented limit: larger bodies answer 413 bad_request


def assert_bad_request(response, what, size=0):
    allowed = {400, 413} if size > KIOSK_BODY_LIMIT else {400}
    assert response.status_code in allowed, (what, response.status_code, response.get_data()[:200])
    assert response.get_json()["error"]["code"] == "bad_request", what
    assert response.get_json()["error"]["message"], what


def test_every_json_endpoint_refuses_every_bad_shape_with_400(endpoints):
    for path, http, headers in endpoints:
        for name, body in BAD_BODIES.items():
            assert_bad_request(post_json(http, path, body, headers), f"{path}: {name}", len(body))


@pytest.mark.parametrize("body", [
    {"code": ["x"], "scan_id": "abcdefgh"}, {"code": {"a": 1}, "scan_id": "abcdefgh"},
    {"code": "x", "scan_id": 12345678}, {"code": None, "scan_id": None}, {"code": True, "scan_id": False},
    {"code": 10 ** 400, "scan_id": "abcdefgh"}, {},
])
def test_the_scan_refuses_wrong_types_inside_an_object(kiosk_scene, body):
    assert_bad_request(kiosk_scene.http.post("/kiosk/api/scan", json=body), body)


@pytest.mark.parametrize("body", [
    {"action": ["check_in"], "client": "x"}, {"action": {"check_in": 1}, "client": "x"},
    {"action": "check_in", "client": ["x"]}, {"action": "check_in", "client": 7},
    {"action": "check_in", "client": "x", "reason": ["a"]}, {"action": "check_in", "client": "x", "at": 905},
    {"action": 10 ** 400},
])
def test_attendance_by_hand_refuses_wrong_types(endpoints, body):
    path, http, headers = endpoints[3]
    assert_bad_request(http.post(path, json=body, headers=headers), body)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=10)
not_objects = st.one_of(json_scalars.map(json.dumps), st.lists(json_values, max_size=3).map(json.dumps),
                        st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
                        st.binary(max_size=64).filter(lambda b: not b.strip().startswith(b"{")).map(
                            lambda b: b.decode("latin-1")))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_anything_that_is_not_an_object_is_refused_everywhere(endpoints, data):
    path, http, headers = data.draw(st.sampled_from(endpoints))
    body = data.draw(not_objects)
    raw = body.encode("latin-1")
    assert_bad_request(post_json(http, path, raw, headers), (path, body[:80]), len(raw))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_objects_of_any_shape_never_make_a_server_error(endpoints, data):
    path, http, headers = data.draw(st.sampled_from(endpoints[:2] + endpoints[3:4]))
    body = data.draw(st.dictionaries(st.sampled_from(["code", "scan_id", "scanned_at", "action", "client",
                                                      "reason", "at", "x"]), json_values, max_size=5))
    response = http.post(path, json=body, headers=headers)
    assert response.status_code < 500 and response.is_json, (path, body, response.status_code)
    if response.status_code >= 400:
        assert response.get_json()["error"]["code"]

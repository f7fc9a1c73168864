"""The OpenAPI description (iop/web/openapi.yaml, served at /api/openapi.json) is true: schemathesis
generates requests from it, valid and invalid, sends them to the WSGI app as an enrolled kiosk and a
signed-in coordinator, and checks every answer: never a 5xx, status codes, content types, headers and
bodies as described, invalid input refused.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import schemathesis
import schemathesis.checks as checks
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]
EXAMPLES = 50  # per operation and mode; the kiosk API gets more in tests/test_fuzz_scan.py


def test_the_description_is_served_and_lists_the_public_api(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert {"/kiosk/api/scan", "/kiosk/api/help", "/healthz", "/coordinator/exports/{kind}",
            "/coordinator/exports/fhir"} <= set(document["paths"])
    scan = document["paths"]["/kiosk/api/scan"]["post"]
    assert set(scan["responses"]) >= {"200", "400", "403", "404", "409", "410", "503"}


def test_the_described_error_codes_are_the_ones_the_scan_answers(client):
    from iop.clinic import scan

    described = set(client.get("/api/openapi.json").get_json()["paths"]["/kiosk/api/scan"]["post"]["responses"])
    assert {str(status) for status in scan.STATUS.values()} <= described


@pytest.fixture
def app_config(app_config):
    # The fuzzer sends hundreds of unknown cards from one kiosk inside one frozen minute: with the
    # bad-card slow-down on, every later scan (the real card's too) would answer 429, and whether the
    # 200 path is checked would depend on where the real card falls. The slow-down has its own tests.
    return {**app_config, "KIOSK_BAD_SCANS_PER_MINUTE": 1_000_000}


@pytest.fixture
def api(app, world, auth, client, kiosk_scene):
    """The schema loaded from the app, and what an enrolled kiosk and a coordinator send with requests."""
    auth.login("casey", role="coordinator")
    token = auth.csrf("/coordinator/exports")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    cookies = {"iop_kiosk": kiosk_scene.cookie, "session": client.get_cookie("session").value}
    headers = {"X-CSRFToken": token, "Referer": "http://localhost/coordinator/exports"}
    # James is scanned only by the described successes: whatever the fuzzer did to Maria (checked her
    # in, out, or neither), his check-in, question and check-out each answer 200.
    james = world.client("C2", "James", "Whitfield", groups=[kiosk_scene.group], plan_start=kiosk_scene.day)
    return schema, cookies, headers, kiosk_scene.card(kiosk_scene.maria), kiosk_scene.card(james)


def operations(schema):
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 6  # schemathesis leaves out the description's own path
    return found


REAL_CARD_EVERY = 3  # every third generated scan carries the real card: the 200 path, every run


def successes(schema, fresh_code):
    """Requests the description says succeed, one per operation that takes input: each must answer 200
    and be checked like the generated ones (the fuzzer rarely writes a valid date range by itself).
    The scan's three answers, in order: a check-in, the question ten minutes later, the check-out."""
    from iop import clock

    scan = schema["/kiosk/api/scan"]["POST"]
    yield scan.Case(body={"code": fresh_code, "scan_id": "5b0e7a52-1f0c-4a8e-b0a9-3c2d1e0f9a87"})
    clock.advance(timedelta(minutes=10))
    yield scan.Case(body={"code": fresh_code, "scan_id": "5b0e7a52-1f0c-4a8e-b0a9-3c2d1e0f9a88"})
    yield scan.Case(body={"code": fresh_code, "scan_id": "5b0e7a52-1f0c-4a8e-b0a9-3c2d1e0f9a89", "action": "check_out"})
    exports = schema["/coordinator/exports/{kind}"]["POST"]
    for kind in ("hours", "attendance", "days"):
        for fmt in ("csv", "xlsx"):
            yield exports.Case(path_parameters={"kind": kind}, media_type="application/x-www-form-urlencoded",
                               body={"first": "2026-02-23", "last": "2026-03-08", "format": fmt})
    yield schema["/coordinator/exports/fhir"]["POST"].Case(media_type="application/x-www-form-urlencoded",
                                                          body={"first": "2026-02-23", "last": "2026-03-08"})


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_described(api, mode):
    schema, cookies, headers, real_code, fresh_code = api
    statuses: dict[str, set[int]] = {}
    for operation in operations(schema):
        label = operation.label
        sent = [0]

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            sent[0] += 1
            if label.endswith("/kiosk/api/scan") and isinstance(case.body, dict) and sent[0] % REAL_CARD_EVERY == 0:
                case.body = {**case.body, "code": real_code}  # a real card, described body otherwise
            response = case.call(cookies=cookies, headers=headers)
            statuses.setdefault(label, set()).add(response.status_code)
            if mode == GenerationMode.POSITIVE:
                case.validate_response(response, checks=CHECKS)
            else:
                case.validate_response(response, checks=[checks.not_a_server_error, checks.content_type_conformance])

        try:
            check()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # nothing to break in a request without input (GET /healthz)
    assert all(status < 500 for seen in statuses.values() for status in seen), statuses
    if mode == GenerationMode.POSITIVE:
        scan_results = []
        for case in successes(schema, fresh_code):
            response = case.call(cookies=cookies, headers=headers)
            assert response.status_code == 200, (case.operation.label, response.status_code, response.text[:300])
            if case.operation.label == "POST /kiosk/api/scan":
                scan_results.append(response.json()["result"])
            case.validate_response(response, checks=CHECKS)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)
        assert scan_results == ["checked_in", "confirm_check_out", "checked_out"]
        assert 200 in statuses["POST /kiosk/api/scan"], statuses
        assert 200 in statuses["POST /coordinator/exports/{kind}"], statuses
        assert 200 in statuses["POST /coordinator/exports/fhir"], statuses


def test_a_check_in_through_the_described_request_matches_the_described_answer(api, client, kiosk_scene):
    schema, _cookies, _headers, real_code, _fresh_code = api
    operation = schema["/kiosk/api/scan"]["POST"]
    case = operation.Case(body={"code": real_code, "scan_id": "0f4c3c1e-8a5e-4d5e-9a31-1b2c3d4e5f60"})
    response = case.call(cookies={"iop_kiosk": kiosk_scene.cookie})
    assert response.status_code == 200 and response.json()["result"] == "checked_in"
    case.validate_response(response, checks=CHECKS)
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z]\.", response.json()["client"]["display_name"])

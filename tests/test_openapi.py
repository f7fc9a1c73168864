"""The OpenAPI description (iop/openapi.yaml, served at /api/openapi.json) is true: schemathesis
generates requests from it, valid and invalid, sends them to the WSGI app as an enrolled kiosk and a
signed-in coordinator, and checks every answer: never a 5xx, status codes, content types, headers and
bodies as described, invalid input refused.
"""
from __future__ import annotations

import re

import pytest
import schemathesis
import schemathesis.checks as checks
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]
EXAMPLES = 50  # per operation and mode; the kiosk API gets more in tests/test_fuzz_scan.py


def test_the_description_is_served_and_lists_the_public_api(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert {"/kiosk/api/scan", "/kiosk/api/help", "/healthz", "/coordinator/exports/{kind}"} <= set(document["paths"])
    scan = document["paths"]["/kiosk/api/scan"]["post"]
    assert set(scan["responses"]) >= {"200", "400", "403", "404", "409", "410", "503"}


def test_the_described_error_codes_are_the_ones_the_scan_answers(client):
    from iop import scan

    described = set(client.get("/api/openapi.json").get_json()["paths"]["/kiosk/api/scan"]["post"]["responses"])
    assert {str(status) for status in scan.STATUS.values()} <= described


@pytest.fixture
def api(app, world, auth, client, kiosk_scene):
    """The schema loaded from the app, and what an enrolled kiosk and a coordinator send with requests."""
    auth.login("casey", role="coordinator")
    token = auth.csrf("/coordinator/exports")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    cookies = {"iop_kiosk": kiosk_scene.cookie, "session": client.get_cookie("session").value}
    headers = {"X-CSRFToken": token, "Referer": "http://localhost/coordinator/exports"}
    return schema, cookies, headers, kiosk_scene.card(kiosk_scene.maria)


def operations(schema):
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 6  # schemathesis leaves out the description's own path
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_described(api, mode):
    schema, cookies, headers, real_code = api
    statuses: dict[str, set[int]] = {}
    for operation in operations(schema):
        label = operation.label

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
        def check(case, real):
            if real and label.endswith("/kiosk/api/scan") and isinstance(case.body, dict):
                case.body = {**case.body, "code": real_code}  # a real card now and then: the 200 path
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
        assert 200 in statuses["POST /kiosk/api/scan"], statuses
        assert 200 in statuses["POST /coordinator/exports/{kind}"], statuses


def test_a_check_in_through_the_described_request_matches_the_described_answer(api, client, kiosk_scene):
    schema, _cookies, _headers, real_code = api
    operation = schema["/kiosk/api/scan"]["POST"]
    case = operation.Case(body={"code": real_code, "scan_id": "0f4c3c1e-8a5e-4d5e-9a31-1b2c3d4e5f60"})
    response = case.call(cookies={"iop_kiosk": kiosk_scene.cookie})
    assert response.status_code == 200 and response.json()["result"] == "checked_in"
    case.validate_response(response, checks=CHECKS)
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z]\.", response.json()["client"]["display_name"])

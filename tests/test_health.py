def test_health_reports_database_and_names_no_one(client, world):
    world.client(first="Maria", last="Gonzalez")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["queue"] == "off" and body["scheduler"] == "off"
    assert body["status"] == "ok"
    assert b"Maria" not in response.data


def test_access_log_hides_enrollment_and_display_secrets():
    import logging

    from iop import _NoQueryStrings

    record = logging.LogRecord("werkzeug", logging.INFO, "", 0, '"%s" %s %s',
                               ("GET /kiosk/enroll/s3cretNonce?x=Maria HTTP/1.1", "200", "-"), None)
    _NoQueryStrings().filter(record)
    line = record.getMessage()
    assert "s3cretNonce" not in line and "Maria" not in line and "/kiosk/enroll/[hidden]" in line

def test_health_reports_database_and_names_no_one(client, world):
    world.client(first="Maria", last="Gonzalez")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["queue"] == "off" and body["scheduler"] == "off"
    assert body["status"] == "ok"
    assert b"Maria" not in response.data

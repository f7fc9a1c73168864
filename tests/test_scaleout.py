"""Scale-out, proven with real processes: two web processes (gunicorn iop.wsgi:app, threading mode)
sharing a fresh PostgreSQL schema and Redis (a channel of this run's own), plus the one `iop scheduler`.

Runs when IOP_TEST_POSTGRES_URL and IOP_TEST_REDIS_URL reach PostgreSQL and Redis (.ci/run sets them);
skips without them, fails without them in CI.
"""
from __future__ import annotations

import re
import time

import pytest

import servers

pytestmark = pytest.mark.slow


class Deployment:
    """What an operator runs (README, deploy/): `iop demo` once, web processes A and B, one scheduler."""

    def __init__(self, tmp, database_url, redis_url):
        self.tmp = tmp
        self.env = servers.environment(tmp / "instance", database_url, redis_url)
        self.scheduler_env = dict(self.env, IOP_SCHEDULER="on")
        self.demo_output = servers.iop(self.env, "demo")
        self.web: dict[str, servers.WebProcess] = {}
        self.scheduler = servers.Process("scheduler", [str(servers.BIN / "iop"), "scheduler"],
                                         self.scheduler_env, tmp)

    def start_web(self, name: str, port: int | None = None) -> servers.WebProcess:
        process = servers.WebProcess(name, self.env, self.tmp, port=port).start()
        self.web[name] = process
        process.wait_healthy()
        return process

    def enrollment_link(self) -> str:
        return servers.iop(self.env, "kiosk", "enroll", f"Kiosk {len(self.web)}-{time.monotonic_ns()}").strip()

    def card_codes(self, *client_ids: str) -> list[str]:
        return servers.iop(self.env, "card-code", *client_ids).split()

    def stop(self):
        for process in [*self.web.values(), self.scheduler]:
            process.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    postgres = servers.required_postgres()
    redis_url = servers.required_redis()
    tmp = tmp_path_factory.mktemp("scaleout")
    with servers.fresh_schema(postgres) as database_url:
        deployment = Deployment(tmp, database_url, redis_url)
        try:
            deployment.scheduler.start()
            deployment.start_web("A")
            deployment.start_web("B")
            yield deployment
        finally:
            deployment.stop()


def test_every_process_reports_the_shared_database_and_queue(deployment):
    for name in ("A", "B"):
        status, body = deployment.web[name].health()
        assert status == 200, body
        assert body["database"] == "ok" and body["queue"] == "ok", body
        assert body["status"] in ("ok", "degraded")
    assert deployment.scheduler.alive(), deployment.scheduler.log()[-2000:]


def test_a_staff_sign_in_on_one_process_is_good_on_the_other(deployment):
    a, b = deployment.web["A"], deployment.web["B"]
    http = servers.staff_session(a.url, "coordinator", "demo-coordinator")
    response = http.get(b.url + "/coordinator/", allow_redirects=False, timeout=10)
    assert response.status_code == 200, "the same secret key and database make a session good anywhere"

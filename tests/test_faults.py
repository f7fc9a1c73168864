"""Faults, with real processes and real services: a server killed with SIGKILL mid-session, the database
going away for a moment, Redis going away. What must hold: no answered scan is lost, nothing is
half-written, screens come back to the current step by themselves, and /healthz tells the truth.

The kill test runs on the embedded default (`iop serve`, SQLite) always, and on the scale-out stack
(gunicorn + PostgreSQL) when IOP_TEST_POSTGRES_URL is reachable; the other tests need PostgreSQL or
Redis and skip without them (fail in CI, where .ci/run starts both).
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from contextlib import ExitStack

import pytest
import requests
from sqlalchemy import create_engine, text

from helpers import servers

pytestmark = pytest.mark.slow


# ---- helpers ----------------------------------------------------------------------------------

class Kiosks:
    """Kiosks scanning distinct clients in parallel. Each scan is retried with its own scan_id until the
    server answers (as the kiosk page's queue does), so a scan lost to a crash is sent again."""

    def __init__(self, base_url: str, kiosk: requests.Session, codes: list[str], threads: int = 3,
                 deadline: float = 120.0):
        self.base_url = base_url
        self.codes = codes
        self.answers: list[tuple[int, str, int, dict]] = []  # (client index, scan_id, status, body)
        self.failures = 0
        self.try_again = 0
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + deadline
        cookie = kiosk.cookies
        self.threads = [threading.Thread(target=self._run, args=(range(n, len(codes), threads), cookie),
                                         daemon=True) for n in range(threads)]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def _run(self, indexes, cookies):
        http = requests.Session()
        http.cookies.update(cookies)
        for index in indexes:
            scan_id = str(uuid.uuid4())
            while time.monotonic() < self._deadline:
                try:
                    response = servers.scan(http, self.base_url, self.codes[index], scan_id, timeout=5)
                except requests.RequestException:
                    with self._lock:
                        self.failures += 1
                    time.sleep(0.05)
                    continue
                if response.status_code == 503:  # try_again: the kiosk keeps it and sends it again
                    assert response.json()["error"]["code"] == "try_again"
                    with self._lock:
                        self.try_again += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.answers.append((index, scan_id, response.status_code, response.json()))
                break
            time.sleep(0.02)

    def answered(self) -> int:
        with self._lock:
            return len(self.answers)

    def join(self):
        """Until every kiosk has its answers, or the deadline passed (then the test's counts fail)."""
        for thread in self.threads:
            thread.join(max(0.0, self._deadline - time.monotonic()) + 10)


def rows(database_url: str, sql: str, **params) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params))
    finally:
        engine.dispose()


def unvoided_attendance_by_client(database_url: str, session_id: int) -> dict[str, int]:
    """{client_id: unvoided attendances} of the session, read straight from the database."""
    found = rows(database_url, "SELECT c.client_id, count(*) FROM attendance a JOIN client c ON c.id = a.client_key "
                               "WHERE a.session_id = :s AND a.voided_at IS NULL GROUP BY c.client_id", s=session_id)
    return {client_id: count for client_id, count in found}


# ---- kill -9 mid-session ----------------------------------------------------------------------

@pytest.fixture(params=["sqlite-serve", "postgres-gunicorn"])
def stack(request, tmp_path):
    """(environment, database URL, process kind) of the embedded default or the scale-out stack."""
    with ExitStack() as cleanup:
        database_url, kind = servers.stack_database(request.param, tmp_path, cleanup)
        env = servers.environment(tmp_path / "instance", database_url)
        yield env, database_url, kind


def test_kill_9_mid_session_loses_no_answered_scan_and_screens_come_back(stack, tmp_path):
    env, database_url, kind = stack
    program = servers.Program(env, tmp_path, clients=45)
    server = servers.WebProcess("server", env, tmp_path, kind=kind).start()
    group = None
    try:
        server.wait_healthy()
        group = servers.RunningGroup(server, program, step=2)
        session_id = group.session_id

        scanning = Kiosks(server.url, group.kiosk, program.codes[1:]).start()
        deadline = time.monotonic() + 20
        while scanning.answered() < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scanning.answered() >= 8, f"scans are not being answered:\n{server.log()[-2000:]}"
        display_connects = group.display.connects

        server.kill()  # SIGKILL, scans in flight and screens connected
        killed = time.monotonic()
        answered_before = scanning.answered()
        server.start()
        spawned = time.monotonic()
        server.wait_healthy()
        healthy = time.monotonic()
        # The screens reconnect and ask for the state by themselves: back on step 2 within 5 s.
        group.back_after(killed, step=2, timeout=5)
        back = time.monotonic()
        assert group.display.connects > display_connects
        print(f"\n[{kind}] restart: healthy {healthy - spawned:.2f}s after spawn; display back on the current "
              f"step {back - healthy:.2f}s after that ({back - killed:.2f}s after the kill); "
              f"{answered_before} scans answered before the kill, {scanning.failures} requests failed in the gap")

        scanning.join()
        assert len(scanning.answers) == len(program.codes) - 1, "every kiosk got its answers in the end"
        statuses = {status for _i, _s, status, _b in scanning.answers}
        assert statuses == {200}, statuses
        unvoided = unvoided_attendance_by_client(database_url, session_id)
        for index, scan_id, _status, body in scanning.answers:
            client_id = program.client_ids[index + 1]
            assert body["result"] == "checked_in", (client_id, body)
            assert unvoided.get(client_id) == 1, f"answered scan of {client_id} has {unvoided.get(client_id)} attendances"
        stored = {scan_id for (scan_id,) in rows(database_url, "SELECT scan_id FROM scan")}
        assert {scan_id for _i, scan_id, _s, _b in scanning.answers} <= stored

        # The group goes on after the restart: a step reaches the display.
        group.press(3)
    finally:
        if group is not None:
            group.close()
        server.stop()


# ---- the database away for a moment -------------------------------------------------------------

def test_database_outage_answers_try_again_writes_nothing_half_and_recovers_by_itself(tmp_path):
    from helpers.web import LiveServer
    from iop import config, create_app
    from iop.store import db

    postgres = servers.required_postgres()
    with servers.fresh_schema(postgres) as direct_url:
        from sqlalchemy.engine import make_url

        real = make_url(direct_url)
        proxy = servers.TcpProxy([(real.host or "127.0.0.1", real.port or 5432)])
        proxied_url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = servers.environment(tmp_path / "instance", proxied_url)
        program = servers.Program(env, tmp_path, clients=80)
        app = create_app({**config.from_environment(env), "SCHEDULER": False})
        server = LiveServer(app).start()
        try:
            kiosk = servers.enrolled_kiosk(server.url, program.kiosk_link())
            first = servers.scan(kiosk, server.url, program.codes[0])
            assert first.status_code == 200, first.text
            session_id = first.json()["session"]["id"]

            # One scan during the outage: a clear, retryable answer, and nothing written.
            counts = rows(direct_url, "SELECT (SELECT count(*) FROM attendance), (SELECT count(*) FROM scan)")[0]
            proxy.cut()
            scan_id = str(uuid.uuid4())
            during = servers.scan(kiosk, server.url, program.codes[1], scan_id)
            assert during.status_code == 503, during.text
            assert during.json()["error"]["code"] == "try_again" and during.json()["error"]["message"]
            assert during.headers.get("Retry-After")
            health = requests.get(server.url + "/healthz", timeout=10)
            assert health.status_code == 503 and health.json()["status"] == "down"
            assert rows(direct_url, "SELECT (SELECT count(*) FROM attendance), (SELECT count(*) FROM scan)")[0] == counts
            proxy.restore()
            # Back by itself (pool_pre_ping replaces the dropped connections): the same scan_id goes through.
            again = servers.scan(kiosk, server.url, program.codes[1], scan_id)
            assert again.status_code == 200 and again.json()["result"] == "checked_in", again.text
            assert requests.get(server.url + "/healthz", timeout=10).json()["database"] == "ok"

            # Kiosks scanning in parallel while the connection drops mid-flight, twice.
            scanning = Kiosks(server.url, kiosk, program.codes[2:], threads=4).start()
            for outage in (1, 2):
                while scanning.answered() < 20 * outage and scanning.threads[0].is_alive():
                    time.sleep(0.005)
                proxy.cut()
                time.sleep(0.8)
                proxy.restore()
            scanning.join()
            assert scanning.try_again > 0, "scans were in flight during the outages"
            assert len(scanning.answers) == len(program.codes) - 2
            assert {status for _i, _s, status, _b in scanning.answers} == {200}
            unvoided = unvoided_attendance_by_client(direct_url, session_id)
            assert all(count == 1 for count in unvoided.values()), unvoided
            assert len(unvoided) == len(program.codes), "every client checked in exactly once"
            # Nothing half-written: every stored scan that checked someone in has its attendance, and back.
            orphans = rows(direct_url, "SELECT count(*) FROM scan s WHERE s.http_status = 200 AND s.client_key IS NOT NULL "
                                       "AND NOT EXISTS (SELECT 1 FROM attendance a WHERE a.client_key = s.client_key "
                                       "AND a.session_id = :s)", s=session_id)[0][0]
            assert orphans == 0
            print(f"\n[database outage] {scanning.try_again} answers were try_again (503) and sent again, "
                  f"{scanning.failures} requests failed at the transport level")
        finally:
            server.stop()
            db.database(app).engine.dispose()
            proxy.stop()


# ---- Redis away ------------------------------------------------------------------------------

def test_redis_down_each_process_serves_its_own_screens_and_health_says_degraded(tmp_path):
    postgres = servers.required_postgres()
    redis_server = servers.PrivateRedis(tmp_path).start()
    screens, processes = [], []
    with servers.fresh_schema(postgres) as database_url:
        env = servers.environment(tmp_path / "instance", database_url, redis_server.url)
        program = servers.Program(env, tmp_path, clients=8)
        try:
            a = servers.WebProcess("A", env, tmp_path).start()
            b = servers.WebProcess("B", env, tmp_path).start()
            processes += [a, b]
            for process in processes:
                assert process.wait_healthy()["queue"] == "ok"
            kiosk = servers.enrolled_kiosk(a.url, program.kiosk_link())
            first = servers.scan(kiosk, a.url, program.codes[0])
            session_id = first.json()["session"]["id"]
            coordinator = program.coordinator(a.url)
            token = servers.display_token(coordinator, a.url, session_id)
            cookies = servers.cookie_header(coordinator)
            control = servers.Screen("control on A", cookies=cookies).connect(a.url)
            display_a = servers.Screen("display on A").connect(a.url, auth={"display_token": token})
            display_b = servers.Screen("display on B").connect(b.url, auth={"display_token": token})
            roster_a = servers.Screen("roster on A", cookies=cookies).connect(a.url)
            screens += [control, display_a, display_b, roster_a]
            for screen in screens:
                screen.follow(session_id)
                screen.wait_for("state")

            redis_server.kill()
            for process in processes:
                status, body = process.health()
                assert status == 200, body
                assert body["status"] == "degraded" and body["queue"] == "unreachable" and body["database"] == "ok"
            # Each process goes on serving its own screens: steps and rosters still reach them.
            pressed = time.monotonic()
            control.client.emit("step", {"session_id": session_id, "index": 1})
            display_a.wait_for("step", lambda s: s["step_index"] == 1, after=pressed)
            scanned = time.monotonic()
            answer = servers.scan(kiosk, a.url, program.codes[1])
            assert answer.status_code == 200, answer.text
            roster_a.wait_for("roster", after=scanned)
            answer = servers.scan(kiosk, b.url, program.codes[2])
            assert answer.status_code == 200, "B takes scans without the queue too"
            # A screen on B catches up by asking for the state (it reads the database).
            display_b.client.emit("state", {"session_id": session_id})
            display_b.wait_for("state", lambda s: s["step_index"] == 1, after=pressed)

            # Redis back on the same address: health recovers and steps cross processes again.
            redis_server.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(process.health()[1]["queue"] == "ok" for process in processes):
                    break
                time.sleep(0.2)
            assert [process.health()[1]["status"] for process in processes] == ["ok", "ok"]
            index, crossed = 2, False
            while not crossed and time.monotonic() < deadline:  # the queue listener reconnects with back-off
                pressed = time.monotonic()
                control.client.emit("step", {"session_id": session_id, "index": index})
                try:
                    display_b.wait_for("step", lambda s, i=index: s["step_index"] == i, after=pressed, timeout=1)
                    crossed = True
                except AssertionError:
                    index = 3 - index
            assert crossed, "steps reach process B again once Redis is back"
        finally:
            for screen in screens:
                screen.close()
            for process in processes:
                process.stop()
            redis_server.stop()


@pytest.mark.browser
def test_the_kiosk_page_keeps_scans_while_the_database_is_away_and_sends_them_after(tmp_path, page):
    from helpers.web import LiveServer
    from iop import config, create_app
    from iop.store import db

    postgres = servers.required_postgres()
    with servers.fresh_schema(postgres) as direct_url:
        from sqlalchemy.engine import make_url

        real = make_url(direct_url)
        proxy = servers.TcpProxy([(real.host or "127.0.0.1", real.port or 5432)])
        env = servers.environment(tmp_path / "instance",
                                  real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        program = servers.Program(env, tmp_path, clients=3)
        app = create_app({**config.from_environment(env), "SCHEDULER": False})
        server = LiveServer(app).start()
        try:
            link = program.kiosk_link()
            page.goto(server.url + link[link.index("/kiosk/enroll/"):])
            page.get_by_role("button", name="Set up this tablet").click()
            page.wait_for_url("**/kiosk/")
            field = page.get_by_role("textbox", name=re.compile("card", re.I))
            field.focus()

            proxy.cut()
            page.keyboard.type(program.codes[0])  # as a USB scanner types it
            page.keyboard.press("Enter")
            page.locator("#state-saved").wait_for(state="visible")
            assert page.evaluate("JSON.parse(localStorage.getItem('iop-kiosk-queue') || '[]').length") == 1
            assert rows(direct_url, "SELECT count(*) FROM attendance")[0][0] == 0

            proxy.restore()
            page.evaluate("window.dispatchEvent(new Event('online'))")  # what the tablet does when back
            page.wait_for_function("() => JSON.parse(localStorage.getItem('iop-kiosk-queue') || '[]').length === 0")
            checked_in = rows(direct_url, "SELECT c.client_id FROM attendance a JOIN client c ON c.id = a.client_key")
            assert [client_id for (client_id,) in checked_in] == [program.client_ids[0]]
        finally:
            server.stop()
            db.database(app).engine.dispose()
            proxy.stop()

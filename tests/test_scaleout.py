"""Scale-out, proven with real processes: two web processes (gunicorn iop.wsgi:app, threading mode)
sharing a fresh PostgreSQL schema and Redis (a channel of this run's own), plus the one `iop scheduler`.

Runs when IOP_TEST_POSTGRES_URL and IOP_TEST_REDIS_URL reach PostgreSQL and Redis (.ci/run sets them);
skips without them, fails without them in CI. The tests run in order and share one deployment.
"""
from __future__ import annotations

import os
import time

import pytest

from helpers import servers

pytestmark = pytest.mark.slow


class Deployment:
    """What an operator runs (README, deploy/): the program loaded once, web processes A and B, one scheduler."""

    def __init__(self, tmp, database_url, redis_url):
        self.tmp = tmp
        self.database_url = database_url
        self.env = servers.environment(tmp / "instance", database_url, redis_url)
        self.program = servers.Program(self.env, tmp, clients=12)
        self.web: dict[str, servers.WebProcess] = {}
        self.scheduler = servers.Process("scheduler", [str(servers.BIN / "iop"), "scheduler"],
                                         dict(self.env, IOP_SCHEDULER="on"), tmp)
        self.screens: list[servers.Screen] = []
        self.proxy: servers.TcpProxy | None = None

    def start_web(self, name: str) -> servers.WebProcess:
        process = servers.WebProcess(name, self.env, self.tmp).start()
        self.web[name] = process
        process.wait_healthy()
        return process

    def screen(self, name: str, cookies: str | None = None) -> servers.Screen:
        screen = servers.Screen(name, cookies=cookies)
        self.screens.append(screen)
        return screen

    def stop(self):
        for screen in self.screens:
            screen.close()
        if self.proxy is not None:
            self.proxy.stop()
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


@pytest.fixture(scope="module")
def live(deployment):
    """A kiosk enrolled on A, the group's session started by a first scan on A, a coordinator signed in."""
    a, b = deployment.web["A"], deployment.web["B"]
    program = deployment.program
    kiosk = servers.enrolled_kiosk(a.url, program.kiosk_link())
    first = servers.scan(kiosk, a.url, program.codes[0])
    assert first.status_code == 200, first.text
    session_id = first.json()["session"]["id"]
    coordinator = program.coordinator(a.url)
    token = servers.display_token(coordinator, a.url, session_id)
    return {"a": a, "b": b, "kiosk": kiosk, "session_id": session_id, "coordinator": coordinator,
            "cookies": servers.cookie_header(coordinator), "display_token": token}


def test_every_process_reports_the_shared_database_queue_and_scheduler(deployment):
    assert deployment.scheduler.alive(), deployment.scheduler.log()[-2000:]
    deadline = time.monotonic() + 20
    for name in ("A", "B"):
        while True:  # the scheduler's first heartbeat may still be on its way
            status, body = deployment.web[name].health()
            if body.get("scheduler") == "ok" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200, body
        # backup: the scheduler's first backup may still be on its way ("none" until it is written)
        assert body["backup"] in ("ok", "none"), body
        assert {key: value for key, value in body.items() if key != "backup"} == {
            "status": "ok", "database": "ok", "queue": "ok", "scheduler": "ok"}, body


def test_a_staff_sign_in_on_one_process_is_good_on_the_other(deployment, live):
    response = live["coordinator"].get(live["b"].url + "/coordinator/", allow_redirects=False, timeout=10)
    assert response.status_code == 200, "the same secret key and database make a session good anywhere"


def test_a_display_on_b_follows_the_facilitator_stepping_on_a(deployment, live):
    session_id = live["session_id"]
    control = deployment.screen("control on A", cookies=live["cookies"]).connect(live["a"].url)
    control.follow(session_id)
    control.wait_for("state", lambda s: s["session_id"] == session_id)
    display = deployment.screen("display on B").connect(live["b"].url, auth={"display_token": live["display_token"]})
    display.follow(session_id)
    state = display.wait_for("state", lambda s: s["session_id"] == session_id)
    assert state["step_count"] >= 3, state
    assert "roster" not in state and "notes" not in state, "a display is told no names and no notes"

    for index in (1, 2):
        pressed = time.monotonic()
        control.client.emit("step", {"session_id": session_id, "index": index})
        step = display.wait_for("step", lambda s, i=index: s["step_index"] == i, after=pressed)
        assert step["session_id"] == session_id and step["step_title"]
    control.close()


def test_a_scan_on_a_reaches_the_roster_on_b(deployment, live):
    session_id, program = live["session_id"], deployment.program
    roster = deployment.screen("roster on B", cookies=live["cookies"]).connect(live["b"].url)
    roster.follow(session_id)
    roster.wait_for("state", lambda s: s["session_id"] == session_id)
    display = deployment.screen("display 2 on B").connect(live["b"].url, auth={"display_token": live["display_token"]})
    display.follow(session_id)
    display.wait_for("state")

    scanned = time.monotonic()
    answer = servers.scan(live["kiosk"], live["a"].url, program.codes[1])
    assert answer.status_code == 200 and answer.json()["result"] == "checked_in", answer.text
    first, last = program.names[1]
    shown = f"{first} {last[0]}."
    update = roster.wait_for("roster", lambda r: shown in str(r), after=scanned)
    assert last not in str(update), "the roster shows a display name, never the full name"
    count = display.wait_for("headcount", after=scanned)
    assert "Zelda" not in str(count), "the room display gets a count, never a name"


def test_the_scheduler_process_reaches_screens_on_the_web_processes(deployment, live):
    """`iop scheduler` serves no screen; what it publishes (a session closed, rosters after the automatic
    check-out) goes through Redis to the screens on A and B. Here: a roster push from such a process."""
    import subprocess
    import sys

    session_id = live["session_id"]
    display = deployment.screen("display 3 on B").connect(live["b"].url, auth={"display_token": live["display_token"]})
    display.follow(session_id)
    display.wait_for("state")
    pushed = time.monotonic()
    script = ("from iop import create_app\nfrom iop.live import roster\n"
              "app = create_app()\n"
              f"with app.app_context(): roster.publish({session_id})\n")
    done = subprocess.run([sys.executable, "-c", script], env=deployment.scheduler.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    count = display.wait_for("headcount", after=pushed)
    assert count["session_id"] == session_id and count["count"] >= 2


@pytest.mark.skipif(not os.path.exists(servers.NGINX), reason="nginx is not installed (apt-get install nginx-light)")
def wait_closed(screens, seconds: float = 5.0) -> None:
    """Every screen is disconnected by the server within `seconds` (the requirement), and stays so."""
    deadline = time.monotonic() + seconds
    while any(screen.client.connected for screen in screens) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(screen.client.connected for screen in screens), [s.name for s in screens if s.client.connected]


def test_a_sign_out_on_a_closes_that_persons_screens_on_both_processes(deployment, live):
    """Sessions live in the database: a sign-out on A ends the sign-in everywhere, and each process closes
    its own screens of it within seconds (B learns it from the database, not from a message)."""
    program = deployment.program
    program.command("user", "add", "robin", "--role", "facilitator", "--password-stdin", stdin="maple harbor lantern\n")
    robin = servers.staff_session(live["a"].url, "robin", "maple harbor lantern")
    cookies = servers.cookie_header(robin)
    on_a = deployment.screen("robin on A", cookies=cookies).connect(live["a"].url)
    on_b = deployment.screen("robin on B", cookies=cookies).connect(live["b"].url)
    others = deployment.screen("coordinator on B", cookies=live["cookies"]).connect(live["b"].url)
    token = servers.csrf_token(robin, live["a"].url + "/facilitator/")
    assert robin.post(live["a"].url + "/logout", data={"csrf_token": token}, timeout=10).status_code == 200
    wait_closed([on_a, on_b])
    assert others.client.connected  # someone else's screen stays
    refused = servers.Screen("robin again on B", cookies=cookies, reconnection=False)
    with pytest.raises(Exception):
        refused.connect(live["b"].url)  # the copied cookie is worthless on B too


def test_deactivating_someone_from_the_command_line_closes_their_screens(deployment, live):
    program = deployment.program
    program.command("user", "add", "sasha", "--role", "coordinator", "--password-stdin", stdin="river stone quiet\n")
    sasha = servers.staff_session(live["b"].url, "sasha", "river stone quiet")
    on_b = deployment.screen("sasha on B", cookies=servers.cookie_header(sasha)).connect(live["b"].url)
    program.command("user", "deactivate", "sasha")  # another process altogether
    wait_closed([on_b])
    assert sasha.get(live["a"].url + "/coordinator/", allow_redirects=False, timeout=10).status_code == 302


def test_the_sample_nginx_site_keeps_each_browser_on_one_process_and_upgrades_websockets(deployment, live, tmp_path):
    """deploy/nginx.conf in front of A and B: the long-polling handshake and its follow-up requests only
    work if every request of a browser reaches the same process (sticky cookie); WebSockets upgrade."""
    import requests
    import urllib3

    urllib3.disable_warnings()
    session_id = live["session_id"]
    proxy = servers.Nginx(tmp_path, [live["a"].port, live["b"].port]).start()
    try:
        http = requests.Session()
        http.trust_env, http.verify = False, False  # a self-signed certificate
        assert http.get(proxy.url + "/healthz", timeout=10).status_code == 200
        route = http.cookies.get("iop_route")
        assert route, "nginx hands out the sticky cookie"
        for _ in range(5):
            http.get(proxy.url + "/api/ping", timeout=10)
        assert http.cookies.get("iop_route") == route, "the cookie is handed out once, then kept"

        for transports in (["polling"], ["websocket"], ["polling", "websocket"]):
            display = servers.Screen(f"display via nginx {transports}", ssl_verify=False)  # a self-signed cert
            deployment.screens.append(display)
            display.connect(proxy.url, auth={"display_token": live["display_token"]}, transports=tuple(transports))
            display.follow(session_id)
            state = display.wait_for("state")
            for index in (state["step_index"] + 1) % state["step_count"], state["step_index"]:
                pressed = time.monotonic()
                control = deployment.screen("control for nginx", cookies=live["cookies"]).connect(live["a"].url)
                control.client.emit("step", {"session_id": session_id, "index": index})
                display.wait_for("step", lambda s, i=index: s["step_index"] == i, after=pressed)
                control.close()
            assert display.client.transport() == transports[-1], display.client.transport()
            display.close()
    finally:
        proxy.stop()


def test_killing_a_leaves_b_serving_and_the_display_returns_at_the_current_step(deployment, live):
    a, b, session_id = live["a"], live["b"], live["session_id"]
    # Screens reach the processes through a proxy that prefers A and fails over to B (nginx's
    # proxy_next_upstream), as in deploy/nginx.conf.
    deployment.proxy = proxy = servers.TcpProxy([("127.0.0.1", a.port), ("127.0.0.1", b.port)])
    via_proxy = f"http://127.0.0.1:{proxy.port}"
    control = deployment.screen("control via proxy", cookies=live["cookies"]).connect(via_proxy)
    control.follow(session_id)
    control.wait_for("state")
    display = deployment.screen("display via proxy").connect(via_proxy, auth={"display_token": live["display_token"]})
    display.follow(session_id)
    display.wait_for("state")
    pressed = time.monotonic()
    control.client.emit("step", {"session_id": session_id, "index": 3})
    display.wait_for("step", lambda s: s["step_index"] == 3, after=pressed)

    connects = display.connects
    a.kill()  # SIGKILL: no goodbye to anyone
    killed = time.monotonic()

    status, body = b.health()
    assert status == 200 and body["database"] == "ok", body
    answer = servers.scan(live["kiosk"], b.url, deployment.program.codes[2])
    assert answer.status_code == 200 and answer.json()["result"] == "checked_in", answer.text

    display.wait_connects(connects + 1, timeout=10)
    state = display.wait_for("state", lambda s: s["step_index"] == 3, after=killed, timeout=10)
    assert state["session_id"] == session_id
    control.wait_for("state", after=killed, timeout=10)
    pressed = time.monotonic()
    control.client.emit("step", {"session_id": session_id, "index": 4})
    display.wait_for("step", lambda s: s["step_index"] == 4, after=pressed)

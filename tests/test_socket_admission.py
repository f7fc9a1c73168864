"""Sockets: a connection that is not a signed-in staff member's screen or a valid room display link is
refused at the Engine.IO handshake (401), before any WebSocket is accepted, so nothing is held for it;
and one address may hold at most SOCKETS_PER_ADDRESS connections. Through a real server."""
from __future__ import annotations

import base64
import os
import re
import socket
import time

import pytest
import requests

from helpers import servers
from helpers.web import LiveServer
from iop.extensions import socketio

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def handshake(base: str, cookies: str = "", query: str = "") -> requests.Response:
    return requests.get(base + HANDSHAKE + query, headers={"Cookie": cookies} if cookies else {}, timeout=10)


def websocket_upgrade(port: int, query: str = "", cookies: str = "") -> str:
    """The status code the server answers a raw WebSocket upgrade with."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /socket.io/?EIO=4&transport=websocket{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n" + (f"Cookie: {cookies}\r\n" if cookies else "") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        return connection.recv(4096).decode(errors="replace").split("\r\n", 1)[0].split(" ", 2)[1]


def held(app) -> int:
    """Engine.IO connections the server holds now."""
    return len(socketio.server.eio.sockets)


def staff_cookies(base: str, auth, username="dana", role="facilitator") -> str:
    from iop.clinic.staff import StaffError

    try:
        auth.make_user(username, role)
    except StaffError:  # live_group made them
        pass
    return servers.cookie_header(servers.staff_session(base, username, "correct horse 1"))


def test_strangers_are_refused_at_the_handshake_and_nothing_is_held(app, live_server):
    base = live_server.url
    for query in ("", "&display_token=forged.token", "&display_token="):
        refused = handshake(base, query=query)
        assert refused.status_code == 401, (query, refused.status_code)
    assert websocket_upgrade(live_server.port) == "401"
    for _ in range(400):
        assert handshake(base).status_code == 401
    assert held(app) == 0


def test_a_signed_in_screen_and_a_display_link_are_admitted(app, live_server, auth, live_group):
    group = live_group()
    cookies = staff_cookies(live_server.url, auth)
    opened = handshake(live_server.url, cookies=cookies)
    assert opened.status_code == 200 and '"sid"' in opened.text
    from iop.live import facilitation

    with app.app_context():
        token = facilitation.display_token(group.session_id)
    assert handshake(live_server.url, query=f"&display_token={token}").status_code == 200
    assert websocket_upgrade(live_server.port, query=f"&display_token={token}") == "101"


def test_a_cookie_whose_sign_in_ended_is_refused(app, live_server, auth):
    auth.make_user()
    http = servers.staff_session(live_server.url, "dana", "correct horse 1")
    token = servers.csrf_token(http, live_server.url + "/facilitator/")
    cookies = servers.cookie_header(http)
    assert handshake(live_server.url, cookies=cookies).status_code == 200
    assert http.post(live_server.url + "/logout", data={"csrf_token": token}, timeout=10).status_code == 200
    assert handshake(live_server.url, cookies=cookies).status_code == 401


def test_one_address_holds_at_most_its_share(app_config, auth, live_group, app):
    """SOCKETS_PER_ADDRESS=3: the fourth screen from one address is refused until one leaves."""
    from iop import create_app
    from iop.live import facilitation
    from iop.store import db

    group = live_group()
    capped = create_app({**app_config, "SOCKETS_PER_ADDRESS": 3})
    server = LiveServer(capped).start()
    try:
        with capped.app_context():
            token = facilitation.display_token(group.session_id)
        screens = [servers.Screen(f"display {n}", reconnection=False).connect(server.url, auth={"display_token": token})
                   for n in range(3)]
        assert handshake(server.url, query=f"&display_token={token}").status_code == 401
        screens[0].close()
        deadline = time.monotonic() + 10
        while handshake(server.url, query=f"&display_token={token}").status_code != 200:
            assert time.monotonic() < deadline, "a place did not come free"
            time.sleep(0.1)
        for screen in screens[1:]:
            screen.close()
    finally:
        server.stop()
        db.database(capped).engine.dispose()


def test_a_refused_socket_io_session_does_not_keep_its_connection(app, live_server, auth, live_group):
    """Admitted at the handshake as staff, then asking to connect as a forged display: the refusal goes out
    and the connection is closed, not held."""
    import socketio as python_socketio

    live_group()
    cookies = staff_cookies(live_server.url, auth)
    client = python_socketio.Client(reconnection=False)
    with pytest.raises(python_socketio.exceptions.ConnectionError):
        client.connect(live_server.url, headers={"Cookie": cookies}, auth={"display_token": "forged.token"},
                       transports=["websocket"], wait_timeout=5)
    deadline = time.monotonic() + 5
    while held(app) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held(app) == 0


@pytest.mark.slow
def test_behind_a_trusted_proxy_the_cap_counts_each_browser(tmp_path, auth):
    """Behind nginx every connection comes from 127.0.0.1: with IOP_PROXY_HOPS=1 the cap counts the
    browsers' own addresses (X-Forwarded-For), so one busy clinic does not use up everyone's share."""
    env = servers.environment(tmp_path / "instance", f"sqlite:///{tmp_path / 'instance' / 'iop.sqlite3'}")
    env.update(IOP_PROXY_HOPS="1", IOP_SOCKETS_PER_ADDRESS="1")
    program = servers.Program(env, tmp_path, clients=2)
    server = servers.WebProcess("web", env, tmp_path).start()
    try:
        server.wait_healthy(60)
        cookies = servers.cookie_header(program.coordinator(server.url))
        first = requests.get(server.url + HANDSHAKE, headers={"Cookie": cookies, "X-Forwarded-For": "10.0.0.1"},
                             timeout=10)
        again = requests.get(server.url + HANDSHAKE, headers={"Cookie": cookies, "X-Forwarded-For": "10.0.0.1"},
                             timeout=10)
        other = requests.get(server.url + HANDSHAKE, headers={"Cookie": cookies, "X-Forwarded-For": "10.0.0.2"},
                             timeout=10)
        assert (first.status_code, again.status_code, other.status_code) == (200, 401, 200)
        assert re.search(r'"sid"', first.text)
    finally:
        server.stop()


def test_signing_out_closes_a_real_screen_and_answers_at_once(app, live_server, auth):
    """Through a real server and a real WebSocket: the sign-out answers (Engine.IO's own close waited for
    packets the gone client would never take, and hung the request), and the screen is closed."""
    auth.make_user()
    http = servers.staff_session(live_server.url, "dana", "correct horse 1")
    screen = servers.Screen("dana's screen", cookies=servers.cookie_header(http), reconnection=False)
    screen.connect(live_server.url)
    assert screen.client.connected
    token = servers.csrf_token(http, live_server.url + "/facilitator/")
    assert http.post(live_server.url + "/logout", data={"csrf_token": token}, timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while screen.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not screen.client.connected
    deadline = time.monotonic() + 5
    while held(app) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held(app) == 0

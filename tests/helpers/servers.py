"""Real server processes for the scale-out and fault tests (and the benchmarks): the production-style
command (gunicorn iop.wsgi:app, threading mode), `iop scheduler`, a private redis-server, a fresh
PostgreSQL schema, and the small HTTP/Socket.IO steps a kiosk, a facilitator and a room display take.

Everything talks to 127.0.0.1 only and stops by itself (bounded waits, processes killed at the end).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from helpers.web import csrf_from

BIN = Path(sys.executable).parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


# ---- the services the scale-out tests need -----------------------------------------------------

def _unavailable(reason: str):
    """Skip on a developer's machine without the services; fail in CI, where .ci/run starts them."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must provide PostgreSQL and Redis for the scale-out tests: {reason}")
    pytest.skip(reason)


def required_postgres() -> str:
    url = os.environ.get("IOP_TEST_POSTGRES_URL", "").strip()
    if not url:
        _unavailable("IOP_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # unreachable, wrong password, no database: all mean "not here"
        _unavailable(f"PostgreSQL at IOP_TEST_POSTGRES_URL is unreachable ({type(exc).__name__})")
    finally:
        engine.dispose()
    return url


def required_redis() -> str:
    url = os.environ.get("IOP_TEST_REDIS_URL", "").strip()
    if not url:
        _unavailable("IOP_TEST_REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:
        _unavailable(f"Redis at IOP_TEST_REDIS_URL is unreachable ({type(exc).__name__})")
    return url


@contextlib.contextmanager
def fresh_schema(base_url: str, prefix: str = "iop_scale"):
    """A PostgreSQL schema of its own (dropped afterwards); yields the URL that selects it."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{joiner}options={quote('-csearch_path=' + schema)}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


# ---- processes -----------------------------------------------------------------------------

class Process:
    """One child process with its output in a log file; killed (the whole group) when stopped."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Kill the process group (gunicorn's arbiter and its worker) with `sig`, and reap it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.alive():
            self.kill(signal.SIGTERM)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start_listening(self, port: int, timeout: float = 10):
        """Process.start(), then wait until the process accepts connections on `port`."""
        Process.start(self)
        deadline = time.monotonic() + timeout
        while not port_open(port):
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{self.name} did not start:\n{self.log()[-2000:]}")
            time.sleep(0.05)
        return self


class WebProcess(Process):
    """A web process: `gunicorn iop.wsgi:app` (gthread, one worker) or `iop serve`."""

    def __init__(self, name: str, env: dict, log_dir: Path, port: int | None = None, threads: int = 64,
                 kind: str = "gunicorn"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "gunicorn":
            command = [str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1",
                       "--threads", str(threads), "--bind", f"127.0.0.1:{self.port}",
                       "--graceful-timeout", "2", "--log-level", "warning", "iop.wsgi:app"]
        else:
            command = [str(BIN / "iop"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                       "--threads", str(threads)]
        super().__init__(name, command, env, log_dir)

    def wait_healthy(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                response = requests.get(self.url + "/healthz", timeout=2)
                if response.status_code in (200, 503):
                    return response.json()
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer /healthz in {timeout}s ({last}):\n{self.log()[-3000:]}")

    def health(self) -> tuple[int, dict]:
        response = requests.get(self.url + "/healthz", timeout=5)
        return response.status_code, response.json()


def environment(instance: Path, database_url: str, redis_url: str | None = None, channel: str | None = None,
                scheduler: bool = False, secret: str = "scale-out-test-secret-" + "k" * 32) -> dict:
    """The environment of every process of one deployment: only these variables differ from a laptop."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IOP_")}
    env.update({
        "IOP_INSTANCE_PATH": str(instance),
        "IOP_DATABASE_URL": database_url,
        "IOP_SECRET_KEY": secret,
        "IOP_SCHEDULER": "on" if scheduler else "off",
        "IOP_TIMEZONE": "America/New_York",
        "IOP_PROXY_HOPS": "0",
        "PYTHONUNBUFFERED": "1",
    })
    if redis_url:
        env["IOP_REDIS_URL"] = redis_url
        env["IOP_REDIS_CHANNEL"] = channel or f"iop-test-{secrets.token_hex(4)}"
    return env


def iop(env: dict, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Run an `iop` command; its stdout (fails the test with stderr when it fails)."""
    done = subprocess.run([str(BIN / "iop"), *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"iop {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


class PrivateRedis(Process):
    """A redis-server of our own on a random loopback port, so a test may stop it (never the shared one)."""

    def __init__(self, log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--protected-mode", "yes", "--dir", str(log_dir)]
        super().__init__(f"redis-{self.port}", command, dict(os.environ), log_dir)

    def start(self):
        return self.start_listening(self.port)


# ---- what people do, over HTTP ---------------------------------------------------------------

def csrf_token(http: requests.Session, url: str) -> str:
    return csrf_from(http.get(url, timeout=10).text)


def staff_session(base_url: str, username: str, password: str) -> requests.Session:
    """A signed-in staff browser (cookie jar) on `base_url`."""
    http = requests.Session()
    token = csrf_token(http, base_url + "/login")
    response = http.post(base_url + "/login", data={"username": username, "password": password,
                                                     "csrf_token": token}, allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303), f"sign-in as {username} failed ({response.status_code})"
    return http


def enrolled_kiosk(base_url: str, enrollment_link: str) -> requests.Session:
    """A kiosk browser: it opened its one-time enrollment link and confirmed, so it carries the cookie."""
    http = requests.Session()
    path = enrollment_link[enrollment_link.index("/kiosk/enroll/"):]
    page = http.get(base_url + path, timeout=10)
    assert page.status_code == 200, f"enrollment page failed ({page.status_code})"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = http.post(base_url + path, data={"csrf_token": token}, timeout=10)
    assert response.status_code < 400, f"enrollment failed ({response.status_code})"
    assert any(c.name == "iop_kiosk" for c in http.cookies), "enrollment set no kiosk cookie"
    return http


def scan(http: requests.Session, base_url: str, code: str, scan_id: str | None = None,
         timeout: float = 10) -> requests.Response:
    return http.post(base_url + "/kiosk/api/scan", json={"code": code, "scan_id": scan_id or _uuid()},
                     timeout=timeout)


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


# ---- screens, over Socket.IO -----------------------------------------------------------------

class Screen:
    """A python-socketio client that records every event it receives, with waits on them."""

    def __init__(self, name: str, cookies: str | None = None, reconnection: bool = True, ssl_verify: bool = True):
        import socketio

        self.name = name
        self.cookies = cookies
        self.client = socketio.Client(reconnection=reconnection, reconnection_delay=0.2, ssl_verify=ssl_verify,
                                      reconnection_delay_max=1, randomization_factor=0.2)
        if not ssl_verify:  # a self-signed test certificate; REQUESTS_CA_BUNDLE would override verify=False
            self.client.eio.http = requests.Session()
            self.client.eio.http.trust_env = False
            self.client.eio.http.verify = False
        self.events: list[tuple[float, str, object]] = []
        self.connects = 0
        self._changed = threading.Condition()
        self.on_connect = None

        @self.client.on("*")
        def _any(event, data=None):
            with self._changed:
                self.events.append((time.monotonic(), event, data))
                self._changed.notify_all()

        @self.client.event
        def connect():
            with self._changed:
                self.connects += 1
                self._changed.notify_all()
            if self.on_connect is not None:
                self.on_connect(self)

    def connect(self, url: str, auth: dict | None = None, transports=("websocket",)):
        """A room display sends its link's token in the connect URL too, as the display page does: the
        server checks it before it accepts the connection."""
        from urllib.parse import urlencode

        headers = {"Cookie": self.cookies} if self.cookies else {}
        if auth and "display_token" in auth:
            url = f"{url}?{urlencode({'display_token': auth['display_token']})}"
        self.client.connect(url, headers=headers, auth=auth, transports=list(transports), wait_timeout=10)
        return self

    def follow(self, session_id: int):
        """Join the session now and again after every reconnect, as the real screens do."""
        self.on_connect = lambda screen: screen.client.emit("join", {"session_id": session_id})
        self.client.emit("join", {"session_id": session_id})
        return self

    def wait_for(self, event: str, predicate=lambda data: True, timeout: float = 10.0, after: float = 0.0):
        """The first `event` received after monotonic time `after` whose data satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, name, data in self.events:
                    if at >= after and name == event and predicate(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [name for at, name, _ in self.events if at >= after]
                    raise AssertionError(f"{self.name}: no {event!r} within {timeout}s (saw {seen[-10:]})")
                self._changed.wait(left)

    def wait_connects(self, count: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.connects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: not reconnected within {timeout}s")
                self._changed.wait(left)
        return time.monotonic()

    def emit(self, event: str, data=None, timeout: float = 10.0):
        """Emit and wait for the server's acknowledgement (its answer), if it sends one."""
        return self.client.call(event, data, timeout=timeout)

    def close(self):
        with contextlib.suppress(Exception):
            self.client.disconnect()


def cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


# ---- a TCP proxy we can cut: a database outage, or a proxy failing over ------------------------

class TcpProxy:
    """Forwards 127.0.0.1:<port> to the first backend that accepts, in order (a proxy failing over to the
    next process, as nginx's proxy_next_upstream does). `cut()` drops every connection and refuses new
    ones (the network to a database going away); `restore()` ends the outage."""

    def __init__(self, backends: list[tuple[str, int]]):
        self.backends = list(backends)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._stopped = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stopped:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self._cut:
                downstream.close()
                continue
            upstream = None
            for host, port in self.backends:
                try:
                    upstream = socket.create_connection((host, port), timeout=2)
                    upstream.settimeout(None)
                    break
                except OSError:
                    continue
            if upstream is None:
                downstream.close()
                continue
            self.accepted += 1
            with self._lock:
                self._open.update((downstream, upstream))
            for source, target in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket):
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._open.discard(sock)

    def cut(self):
        self._cut = True
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self):
        self._cut = False

    def stop(self):
        self._stopped = True
        self.cut()
        self.listener.close()


# ---- a program to scan into: one group session now, N clients, a coordinator, a kiosk link ---------

class Program:
    """Made through the `iop` commands (import, user add, card-code, kiosk enroll), as an operator would
    (run in this process, on the deployment's database, to save a Python start per command): a group
    that meets every day around now, and clients only in that group."""

    COORDINATOR = ("coord", "rounds-and-hours-1")

    def __init__(self, env: dict, folder: Path, clients: int = 12, group: str = "LIVE", groups: int = 1):
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo

        now = datetime.now(ZoneInfo(env.get("IOP_TIMEZONE", "America/New_York")))
        minutes = now.hour * 60 + now.minute
        start = max(0, minutes - 60)
        end = min(23 * 60 + 59, max(minutes + 120, start + 60))
        # One group, or `groups` groups with the clients dealt round them (a session per group).
        self.groups = [group] if groups == 1 else [f"{group}{g:03d}" for g in range(1, groups + 1)]
        self.group = self.groups[0]
        self.client_ids = [f"{group}{n:05d}" for n in range(1, clients + 1)]
        self.names = [(f"Zelda{n}x", f"Quixote{n}y") for n in range(1, clients + 1)]
        groups_csv = folder / f"{group}-groups.csv"
        groups_csv.write_text("code,name,track,room,weekdays,start,end\n" + "".join(
            f"{code},Live Group {code},relapse-prevention,Room Z,Mon Tue Wed Thu Fri Sat Sun,"
            f"{start // 60:02d}:{start % 60:02d},{end // 60:02d}:{end % 60:02d}\n" for code in self.groups))
        plan_start = (now.date() - timedelta(days=14)).isoformat()
        clients_csv = folder / f"{group}-clients.csv"
        clients_csv.write_text(
            "client_id,first_name,last_name,level_of_care,plan_start,plan_end,weekly_hours,days_per_week,groups\n"
            + "".join(f"{cid},{first},{last},2.1,{plan_start},,9,3,{self.groups[n % len(self.groups)]}\n"
                      for n, (cid, (first, last)) in enumerate(zip(self.client_ids, self.names))))
        self.env = env
        self.command("init")
        self.command("import", "groups", str(groups_csv))
        self.command("import", "clients", str(clients_csv))
        username, password = self.COORDINATOR
        with contextlib.suppress(AssertionError):  # a second program in the same database
            self.command("user", "add", username, "--role", "coordinator", "--password-stdin", stdin=password + "\n")
        self.codes = []
        for chunk in range(0, len(self.client_ids), 500):
            self.codes += self.command("card-code", *self.client_ids[chunk:chunk + 500]).split()
        assert len(self.codes) == len(self.client_ids)

    def command(self, *args: str, stdin: str | None = None) -> str:
        """`iop ARGS` with the deployment's environment, in this process."""
        from iop import config, create_app
        from iop.store import db

        app = create_app({**config.from_environment(self.env), "SCHEDULER": False})
        try:
            result = app.test_cli_runner().invoke(args=list(args), input=stdin)
        finally:
            db.database(app).engine.dispose()
        if result.exit_code != 0:
            raise AssertionError(f"iop {' '.join(args)} failed ({result.exit_code}): {result.output[-2000:]}")
        return result.stdout

    def kiosk_link(self, name: str | None = None) -> str:
        return self.command("kiosk", "enroll", name or f"Kiosk {secrets.token_hex(3)}").strip().splitlines()[-1]

    def coordinator(self, base_url: str) -> requests.Session:
        return staff_session(base_url, *self.COORDINATOR)


def todays_session_id(database_url: str, group_code: str) -> int | None:
    """The id of today's session of a group (made by the first scan or the scheduler), read directly."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT s.id FROM group_session s JOIN program_group g ON g.id = s.group_id "
                "WHERE g.code = :code ORDER BY s.date DESC LIMIT 1"), {"code": group_code}).scalar()
    finally:
        engine.dispose()


def display_token(http: requests.Session, base_url: str, session_id: int) -> str:
    """The room display link's token, from the facilitator control page's "Room display" link."""
    page = http.get(f"{base_url}/facilitator/sessions/{session_id}", timeout=10)
    assert page.status_code == 200, f"control page answered {page.status_code}"
    match = re.search(r'href="[^"]*/facilitator/display/([^"/?]+)"', page.text)
    assert match, "no Room display link on the control page"
    return match.group(1)


class RunningGroup:
    """Today's group under way on a real server: a kiosk enrolled and the first card scanned (which opens
    the session), the facilitator's control page and the room display following it, on `step`."""

    def __init__(self, server: "WebProcess", program: Program, step: int = 2):
        self.kiosk = enrolled_kiosk(server.url, program.kiosk_link())
        first = scan(self.kiosk, server.url, program.codes[0])
        assert first.status_code == 200, first.text
        self.session_id = first.json()["session"]["id"]
        coordinator = program.coordinator(server.url)
        token = display_token(coordinator, server.url, self.session_id)
        self.screens: list[Screen] = []
        try:
            self.control = Screen("control", cookies=cookie_header(coordinator)).connect(server.url)
            self.screens.append(self.control)
            self.display = Screen("display").connect(server.url, auth={"display_token": token})
            self.screens.append(self.display)
            self.control.follow(self.session_id)
            self.display.follow(self.session_id)
            self.display.wait_for("state")
            self.control.wait_for("state")
            self.press(step)
        except BaseException:
            self.close()
            raise

    def press(self, step: int) -> None:
        """The facilitator moves to `step`; it is on the room display."""
        pressed = time.monotonic()
        self.control.client.emit("step", {"session_id": self.session_id, "index": step})
        self.display.wait_for("step", lambda s: s["step_index"] == step, after=pressed)

    def back_after(self, killed: float, step: int, timeout: float) -> dict:
        """Both screens reconnect by themselves after a restart and are shown `step` again (the display's state)."""
        state = self.display.wait_for("state", lambda s: s["step_index"] == step, after=killed, timeout=timeout)
        assert state["session_id"] == self.session_id
        self.control.wait_for("state", lambda s: s["step_index"] == step, after=killed, timeout=timeout)
        return state

    def close(self) -> None:
        for screen in self.screens:
            screen.close()


def stack_database(kind: str, folder: Path, cleanup: contextlib.ExitStack) -> tuple[str, str]:
    """(database URL, process kind) of a stack: "sqlite-serve" (the embedded default in the instance
    folder, `iop serve`) or "postgres-gunicorn" (a fresh schema on the test PostgreSQL, gunicorn)."""
    if kind == "sqlite-serve":
        return f"sqlite:///{folder / 'instance' / 'iop.sqlite3'}", "serve"
    return cleanup.enter_context(fresh_schema(required_postgres())), "gunicorn"


# ---- the sample nginx site (deploy/nginx.conf) in front of the web processes ---------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx(Process):
    """deploy/nginx.conf as shipped, with only its addresses, ports and certificate made local."""

    def __init__(self, folder: Path, backends: list[int]):
        import subprocess as sp

        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        site = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
        cert, key = folder / "nginx.crt", folder / "nginx.key"
        sp.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                "-subj", "/CN=127.0.0.1", "-days", "1"], check=True, capture_output=True)
        site = site.replace("server 127.0.0.1:8001", f"server 127.0.0.1:{backends[0]}")
        site = site.replace("server 127.0.0.1:8002", f"server 127.0.0.1:{backends[1]}")
        site = re.sub(r"server \{\s*listen 80;.*?\n\}\n", "", site, flags=re.S)  # the http -> https redirect
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;")
        site = site.replace("listen [::]:443 ssl http2;\n", "")
        site = site.replace("/etc/ssl/certs/iop.example.org.pem", str(cert))
        site = site.replace("/etc/ssl/private/iop.example.org.key", str(key))
        (folder / "iop-site.conf").write_text(site)
        (folder / "nginx.conf").write_text(
            f"pid {folder}/nginx.pid;\nerror_log {folder}/nginx-error.log;\ndaemon off;\nevents {{}}\n"
            f"http {{ access_log off; client_body_temp_path {folder}; proxy_temp_path {folder}; "
            f"fastcgi_temp_path {folder}; uwsgi_temp_path {folder}; scgi_temp_path {folder}; "
            f"include {folder}/iop-site.conf; }}\n")
        super().__init__("nginx", [NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)], dict(os.environ),
                         folder)

    def start(self):
        return self.start_listening(self.port)

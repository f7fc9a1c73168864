"""Fan-out: 200 room displays follow one session; the time from the facilitator's Next to the LAST
display receiving the step, against a bare Flask-SocketIO server broadcasting the same payload to the
same 200 clients in the same run.

    python bench/bench_fanout.py [--displays 200] [--presses 30] [--database sqlite|postgres]

Both servers run the production way (gunicorn, gthread, one worker, a thread per WebSocket). The
displays are python-socketio clients on the websocket transport, spread over 4 processes (real
displays are separate devices; --client-processes 1 keeps them all in this one). The app's
Next is real: the control screen's `step` event checks the facilitator, writes the step in one
transaction, reads the public state and broadcasts it. Goals: p99 <= 100 ms and <= 1.5x the bare
server's p99.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import socketio  # noqa: E402

from helpers import servers  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Displays:
    """N clients that note when each `step` arrives (perf_counter), by press number."""

    def __init__(self, url: str, count: int, auth=None, join=None):
        self.arrivals: dict[int, list[float]] = {}
        self.lock = threading.Lock()
        self.clients = []
        self.joined = threading.Semaphore(0)
        for _ in range(count):
            client = socketio.Client(reconnection=False)

            @client.on("step")
            def _step(data, _c=client):
                now = time.perf_counter()
                press = data.get("press", data.get("step_index"))
                with self.lock:
                    self.arrivals.setdefault(press, []).append(now)

            @client.on("state")
            def _state(_data):
                self.joined.release()

            client.connect(url, auth=auth, transports=["websocket"], wait_timeout=20)
            client.emit("join", join or {})
            self.clients.append(client)
        for _ in range(count):
            if not self.joined.acquire(timeout=30):
                raise SystemExit("not every display joined")

    def last_arrival(self, press: int, count: int, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = self.arrivals.get(press, [])
                if len(got) >= count:
                    return max(got)
            time.sleep(0.0005)
        raise SystemExit(f"press {press}: only {len(self.arrivals.get(press, []))} of {count} displays got it")

    def close(self):
        for client in self.clients:
            try:
                client.disconnect()
            except Exception:
                pass


def _display_worker(url, count, auth, join, results, stop):
    """A process of displays (real screens are separate devices): reports, per event, when its last
    display got it (time.perf_counter is the system-wide monotonic clock on Linux)."""
    got: dict = {}
    lock = threading.Lock()
    joined = threading.Semaphore(0)
    clients = []
    for _ in range(count):
        client = socketio.Client(reconnection=False)

        @client.on("step")
        def _step(data):
            now = time.perf_counter()
            key = data.get("press", data.get("step_index"))
            with lock:
                arrived = got.setdefault(key, [])
                arrived.append(now)
                if len(arrived) == count:
                    results.put((key, max(arrived)))
                    del got[key]

        @client.on("state")
        def _state(_data):
            joined.release()

        client.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)
        client.emit("join", join or {})
        clients.append(client)
    for _ in range(count):
        joined.acquire(timeout=60)
    results.put(("ready", None))
    stop.wait()
    for client in clients:
        try:
            client.disconnect()
        except Exception:
            pass


class SpreadDisplays:
    """The same displays, spread over several processes."""

    def __init__(self, url: str, count: int, processes: int, auth=None, join=None):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.stop = context.Event()
        shares = [count // processes + (1 if n < count % processes else 0) for n in range(processes)]
        self.workers = [context.Process(target=_display_worker, args=(url, share, auth, join, self.results, self.stop),
                                        daemon=True) for share in shares if share]
        for worker in self.workers:
            worker.start()
        for _ in self.workers:
            key, _at = self.results.get(timeout=180)
            assert key == "ready", key

    def last_arrival(self, key, _count, timeout: float = 10) -> float:
        last = []
        while len(last) < len(self.workers):
            got, at = self.results.get(timeout=timeout)
            if got == key:
                last.append(at)
        return max(last)

    def close(self):
        self.stop.set()
        for worker in self.workers:
            worker.join(10)
            if worker.is_alive():
                worker.terminate()


def measure(press, displays, count: int, presses: int) -> list[float]:
    times = []
    for n in range(presses):
        started = time.perf_counter()
        key = press(n)
        times.append(displays.last_arrival(key, count) - started)
        time.sleep(0.05)
    return times


def report(name: str, times: list[float]) -> dict:
    result = {"p50": percentile(times, 0.5) * 1000, "p95": percentile(times, 0.95) * 1000,
              "p99": percentile(times, 0.99) * 1000, "max": max(times) * 1000}
    print(f"  {name:<44} p50 {result['p50']:6.1f} ms  p95 {result['p95']:6.1f} ms  p99 {result['p99']:6.1f} ms")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--displays", type=int, default=200)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="processes the displays live in (1: all in this process)")
    args = parser.parse_args()
    threads = args.displays + 56
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="iop-fanout-")))
        if args.database == "sqlite":
            database_url = f"sqlite:///{folder / 'instance' / 'iop.sqlite3'}"
        else:
            os.environ.setdefault("IOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
            database_url = stack.enter_context(servers.fresh_schema(servers.required_postgres()))
        env = servers.environment(folder / "instance", database_url)
        # Every display connects from this one machine: lift the per-address socket cap above them.
        env["IOP_SOCKETS_PER_ADDRESS"] = str(args.displays + 50)
        program = servers.Program(env, folder, clients=3)

        # The bare baseline.
        bare_port = servers.free_port()
        bare = servers.Process("bare", [str(servers.BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1",
                                        "--threads", str(threads), "--bind", f"127.0.0.1:{bare_port}",
                                        "--chdir", str(ROOT / "bench"), "--log-level", "warning",
                                        "bare_socketio:app"], dict(os.environ), folder).start()
        stack.callback(bare.stop)
        # The app.
        server = servers.WebProcess("server", env, folder, threads=threads).start()
        stack.callback(server.stop)
        server.wait_healthy(60)
        deadline = time.monotonic() + 30
        while not servers.port_open(bare_port):
            if time.monotonic() > deadline:
                raise SystemExit(bare.log())
            time.sleep(0.1)

        kiosk = servers.enrolled_kiosk(server.url, program.kiosk_link())
        first = servers.scan(kiosk, server.url, program.codes[0])
        if first.status_code != 200:
            raise SystemExit(f"the first scan failed: {first.status_code} {first.text}\n{server.log()[-3000:]}")
        session_id = first.json()["session"]["id"]
        coordinator = program.coordinator(server.url)
        token = servers.display_token(coordinator, server.url, session_id)
        control = servers.Screen("control", cookies=servers.cookie_header(coordinator)).connect(server.url)
        stack.callback(control.close)
        control.follow(session_id)
        state = control.wait_for("state")
        steps = state["step_count"]
        payload = {k: v for k, v in state.items() if k not in ("roster", "notes")}  # what displays get

        # A display's link token travels in the connect URL: the server admits a connection at its
        # handshake, before any Socket.IO auth is read (as tests/helpers/servers.py's Screen does).
        display_url = f"{server.url}?{urlencode({'display_token': token})}"
        print(f"{args.displays} displays (python-socketio, websocket) in {args.client_processes} process(es); "
              f"{os.cpu_count()} cores shared by the servers and the displays; database {args.database}")
        print("  connecting the displays ...", flush=True)
        if args.client_processes > 1:
            bare_displays = SpreadDisplays(f"http://127.0.0.1:{bare_port}", args.displays, args.client_processes)
            stack.callback(bare_displays.close)
            app_displays = SpreadDisplays(display_url, args.displays, args.client_processes,
                                          auth={"display_token": token}, join={"session_id": session_id})
        else:
            bare_displays = Displays(f"http://127.0.0.1:{bare_port}", args.displays)
            stack.callback(bare_displays.close)
            app_displays = Displays(display_url, args.displays, auth={"display_token": token},
                                    join={"session_id": session_id})
        stack.callback(app_displays.close)
        trigger = socketio.Client(reconnection=False)
        trigger.connect(f"http://127.0.0.1:{bare_port}", transports=["websocket"], wait_timeout=20)
        stack.callback(trigger.disconnect)

        def bare_press(n):
            trigger.emit("go", dict(payload, press=10_000 + n))
            return 10_000 + n

        indexes = [i for i in range(steps)]
        current = {"index": state["step_index"]}

        def app_press(n):
            index = indexes[(current["index"] + 1) % len(indexes)]
            current["index"] = index
            if isinstance(app_displays, Displays):
                with app_displays.lock:
                    app_displays.arrivals.pop(index, None)
            control.client.emit("step", {"session_id": session_id, "index": index})
            return index

        # Warm up, then alternate rounds so drift in the machine's load hits both alike.
        measure(bare_press, bare_displays, args.displays, 3)
        measure(app_press, app_displays, args.displays, 3)
        bare_times, app_times = [], []
        rounds = 3
        for r in range(rounds):
            bare_times += measure(lambda n, r=r: bare_press(1000 * (r + 1) + n), bare_displays, args.displays,
                                  args.presses // rounds)
            app_times += measure(app_press, app_displays, args.displays, args.presses // rounds)
        print("  Next -> last display:")
        bare_figures = report("bare Flask-SocketIO broadcast (baseline)", bare_times)
        app_figures = report("IOP Kiosk step (check, write, state, emit)", app_times)
        ratio = app_figures["p99"] / bare_figures["p99"]
        ok = app_figures["p99"] <= 100 and ratio <= 1.5
        print(f"  RATIO p99 app/bare: {ratio:.2f} (goal <= 1.5); app p99 {app_figures['p99']:.1f} ms (goal <= 100); "
              f"{'MEETS' if ok else 'MISSES'} the goals")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

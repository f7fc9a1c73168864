"""Kiosk scans under load against a real server, with a trivial endpoint on the same server as the baseline.

    python bench/bench_scan.py [--database sqlite|postgres|both] [--server gunicorn|serve]

Each kiosk is a Python thread with its own keep-alive connection (http.client) and its own enrolled
kiosk cookie. Every scan is a different client, and the clients are spread over many groups (a
realistic 15 to a session), so every scan is a real check-in: a scan row, an attendance row, the
week's hours, and the roster pushed to the session's screens.

Two measures, both with 20 kiosks:
- saturation: every kiosk scans again as soon as it has its answer (a closed loop). Throughput is
  compared with GET /api/ping (no database) on the same server, measured the same way in this run.
  Goal: scans reach at least 40% of the baseline's throughput.
- latency at a rush: every kiosk scans at random times, on average every --pace seconds (an open
  loop: 20 kiosks at 0.5 s is 40 scans a second, several times what people walking up to tablets
  can produce). Goal: p99 at most 50 ms. (In the closed loop, latency is just 20 / throughput: it
  measures the queue the benchmark itself builds, and is printed for comparison with the baseline's.)
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import servers  # noqa: E402  (the test suite's process helpers)

KIOSKS = 20
PER_GROUP = 15


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Client:
    """One kiosk: a keep-alive HTTP/1.1 connection and its cookie."""

    def __init__(self, port: int, cookie: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = cookie
        self.sent: list[tuple[str, str]] = []

    def _send(self, method: str, path: str, body: str | None, headers: dict) -> tuple[int, bytes]:
        for attempt in (1, 2):  # the server may close an idle keep-alive connection: open a new one once
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes]:
        return self._send("GET", path, None, {"Cookie": self.cookie})

    def scan(self, code: str, scan_id: str | None = None) -> tuple[int, bytes]:
        # The same scan_id on a resend: the server counts it once (docs/interface.md).
        scan_id = scan_id or str(uuid.uuid4())
        self.sent.append((code, scan_id))
        body = json.dumps({"code": code, "scan_id": scan_id})
        return self._send("POST", "/kiosk/api/scan", body, {"Cookie": self.cookie, "Content-Type": "application/json"})


def run_closed(clients: list[Client], work, per_client: int) -> tuple[float, list[float], list]:
    """Every client does `per_client` requests back to back; (requests per second, latencies, failures)."""
    return _kiosks(clients, work, per_client, lambda _rng: 0.0)


def run_open(clients: list[Client], work, per_client: int, pace: float) -> tuple[float, list[float], list]:
    """Every client waits an exponential time (mean `pace` s) before each request: arrivals like people."""
    return _kiosks(clients, work, per_client, lambda rng: rng.expovariate(1 / pace))


def _kiosks(clients: list[Client], work, per_client: int, pause) -> tuple[float, list[float], list]:
    """Every client, each in a thread and all starting together, waits `pause(its rng)` seconds before each
    of its `per_client` requests; (requests per second, latencies, failures)."""
    latencies: list[float] = []
    failures: list = []
    lock = threading.Lock()
    ready = threading.Barrier(len(clients) + 1)

    def kiosk(number: int, client: Client):
        rng = random.Random(number)
        mine, bad = [], []
        ready.wait()
        for n in range(per_client):
            wait = pause(rng)
            if wait:
                time.sleep(wait)
            started = time.perf_counter()
            status, body = work(client, number, n)
            mine.append(time.perf_counter() - started)
            if status != 200:
                bad.append((status, body[:200]))
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=kiosk, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - began), latencies, failures


def figures(name: str, rate: float, latencies: list[float]) -> dict:
    result = {"name": name, "per_second": rate, "p50_ms": percentile(latencies, 0.5) * 1000,
              "p95_ms": percentile(latencies, 0.95) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
              "count": len(latencies)}
    print(f"  {name:<34} {rate:8.1f}/s   p50 {result['p50_ms']:6.1f} ms   p95 {result['p95_ms']:6.1f} ms   "
          f"p99 {result['p99_ms']:6.1f} ms   ({len(latencies)} requests)")
    return result


def _screens_worker(url: str, cookies: str, session_ids: list[int], results, stop) -> None:
    """A process of facilitator screens (real screens are other devices, not the kiosks' process):
    each follows one session; reports when all have their state, then how many rosters arrived."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import servers as process_helpers

    screens = []
    for session_id in session_ids:
        screen = process_helpers.Screen(f"control {session_id}", cookies=cookies, reconnection=False).connect(url)
        screen.follow(session_id)
        screen.wait_for("state")
        screens.append(screen)
    results.put(("ready", len(screens)))
    while not stop.wait(0.2):
        pass
    results.put(("rosters", sum(1 for screen in screens for _at, name, _data in screen.events if name == "roster")))
    for screen in screens:
        screen.close()


def steady_state(database_url: str) -> None:
    """PostgreSQL: the planner statistics of a program that has been scanning for a minute. The
    program was imported seconds ago (the import analyzes its tables, attendance still empty) and
    autovacuum analyzes a table within a minute of its first 50 changes; until then every check-in's
    plan reads the attendance table whole, which would make this benchmark measure the first minute
    of a brand-new database instead of a working day. So the benchmark runs that ANALYZE itself,
    after the warm-up's check-ins. (SQLite plans without statistics.)"""
    if not database_url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


class FacilitatorScreens:
    """A facilitator's control page on every session, as in a clinic where each running group has its
    facilitator's screen open: every check-in then builds and pushes the session's roster. The screens
    run in a process of their own, as separate devices would."""

    def __init__(self, server, program, database_url):
        import multiprocessing

        from sqlalchemy import create_engine, text

        engine = create_engine(database_url)
        with engine.connect() as connection:
            session_ids = [row[0] for row in connection.execute(text("SELECT id FROM group_session"))]
        engine.dispose()
        cookies = servers.cookie_header(program.coordinator(server.url))
        context = multiprocessing.get_context("spawn")
        self.results, self.stop = context.Queue(), context.Event()
        self.worker = context.Process(target=_screens_worker, daemon=True,
                                      args=(server.url, cookies, session_ids, self.results, self.stop))
        self.worker.start()
        kind, self.count = self.results.get(timeout=300)
        assert kind == "ready", kind

    def rosters_received(self) -> int:
        """Stops the screens; how many roster pushes they received in all."""
        self.stop.set()
        kind, count = self.results.get(timeout=60)
        assert kind == "rosters", kind
        self.worker.join(10)
        return count


class KioskStand:
    """A server the production way, a program of `scans` clients (15 to a group, each scan a new
    check-in) and KIOSKS enrolled kiosks with their own connections, warmed up: what every kiosk
    benchmark starts from (bench_scan.py, bench_sockets.py)."""

    def __init__(self, stack: ExitStack, database: str, server_kind: str, scans: int, threads: int,
                 extra_env: dict | None = None):
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="iop-bench-")))
        if database == "sqlite":
            self.database_url = f"sqlite:///{folder / 'instance' / 'iop.sqlite3'}"
        else:
            base = os.environ.get("IOP_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
            os.environ["IOP_TEST_POSTGRES_URL"] = base
            self.database_url = stack.enter_context(servers.fresh_schema(servers.required_postgres()))
        env = {**servers.environment(folder / "instance", self.database_url), **(extra_env or {})}
        total = scans + KIOSKS * 5 + 20
        print(f"\n== {database} / {server_kind}: loading {total} clients in {total // PER_GROUP + 1} groups ...",
              flush=True)
        self.program = servers.Program(env, folder, clients=total, group="B", groups=total // PER_GROUP + 1)
        links = [self.program.kiosk_link(f"Bench kiosk {n}") for n in range(KIOSKS)]
        self.server = servers.WebProcess("server", env, folder, kind=server_kind, threads=threads).start()
        stack.callback(self.server.stop)
        self.server.wait_healthy(60)
        cookies = [servers.cookie_header(servers.enrolled_kiosk(self.server.url, link)) for link in links]
        self.clients = [Client(self.server.port, cookie) for cookie in cookies]
        self._codes = iter(self.program.codes)
        self._code_lock = threading.Lock()
        # Warm up both paths (connections, pools, caches) and open every group's session once.
        self.check(run_closed(self.clients, self.ping, 20)[2])
        self.check(run_closed(self.clients, self.scan, 5)[2])
        steady_state(self.database_url)

    def next_code(self) -> str:
        with self._code_lock:
            return next(self._codes)

    def ping(self, client, _number, _n):
        return client.get("/api/ping")

    def scan(self, client, _number, _n):
        """A check-in: every scan a client not yet scanned."""
        return client.scan(self.next_code())

    def check(self, bad):
        if bad:
            print(self.server.log()[-4000:])
            raise SystemExit(f"failures: {bad[:3]}")

    def rush_alone_and_loaded(self, rounds: int, rush_scans: int, pace: float, load, loaded_name: str):
        """`rounds` rounds of a rush (open loop, each kiosk `rush_scans` scans every `pace` s on average):
        alone, then inside `load()` (a context manager: what the benchmark puts beside the kiosks).
        Returns the figures of all rounds alone and loaded, and the p99 ratio loaded / alone."""
        latencies_of, rates_of = {"alone": [], "loaded": []}, {"alone": [], "loaded": []}
        for number in range(1, rounds + 1):
            for kind, name in (("alone", "scans alone"), ("loaded", loaded_name)):
                with load() if kind == "loaded" else nullcontext():
                    rate, latencies, bad = run_open(self.clients, self.scan, rush_scans, pace)
                self.check(bad)
                latencies_of[kind] += latencies
                rates_of[kind].append(rate)
                figures(f"round {number}: {name}", rate, latencies)
        base = figures("all rounds: scans alone", sum(rates_of["alone"]) / rounds, latencies_of["alone"])
        loaded = figures(f"all rounds: {loaded_name}", sum(rates_of["loaded"]) / rounds, latencies_of["loaded"])
        return base, loaded, loaded["p99_ms"] / base["p99_ms"]


def bench(database: str, server_kind: str, closed_scans: int, open_scans: int, pace: float, threads: int,
          screens: bool = True) -> dict:
    with ExitStack() as stack:
        stand = KioskStand(stack, database, server_kind, KIOSKS * (closed_scans + open_scans), threads)
        server, program, database_url, clients = stand.server, stand.program, stand.database_url, stand.clients
        ping, scan, check = stand.ping, stand.scan, stand.check
        followers = FacilitatorScreens(server, program, database_url) if screens else None
        if followers is not None:
            stack.callback(lambda: followers.worker.kill())
        results = {"database": database, "server": server_kind, "cores": os.cpu_count()}
        print(f"  {KIOSKS} kiosks, {followers.count if followers else 0} facilitator screens following the "
              f"sessions (a process of their own), {os.cpu_count()} cores (shared by the server, the kiosks "
              "and the screens)")
        print("  saturation (closed loop):")
        rate, lat, bad = run_closed(clients, ping, closed_scans * 2)
        check(bad)
        results["ping"] = figures("GET /api/ping (baseline)", rate, lat)
        rate, lat, bad = run_closed(clients, scan, closed_scans)
        check(bad)
        results["scan"] = figures("POST /kiosk/api/scan (check-ins)", rate, lat)
        # For the diagnosis: the same scans sent again (a kiosk's retry). The server finds the stored
        # answer and writes nothing: the request path, the kiosk's cookie and one read, without the
        # check-in's work. Its ratio shows what the scan's own work costs.
        replays = [iter(list(client.sent)) for client in clients]

        def replay(client, number, _n):
            code, scan_id = next(replays[number])
            return client.scan(code, scan_id)

        rate, lat, bad = run_closed(clients, replay, closed_scans)
        check(bad)
        results["replay"] = figures("POST /kiosk/api/scan (retries)", rate, lat)
        print(f"  rush (open loop, each kiosk every {pace} s on average):")
        rate, lat, bad = run_open(clients, scan, open_scans, pace)
        check(bad)
        results["rush"] = figures("POST /kiosk/api/scan (check-ins)", rate, lat)
        if followers is not None:
            print(f"  the facilitator screens received {followers.rosters_received()} roster pushes")
        ratio = results["scan"]["per_second"] / results["ping"]["per_second"]
        results["ratio"] = ratio
        print(f"  retry/ping throughput: {results['replay']['per_second'] / results['ping']['per_second']:.2f} "
              "(the request path without the check-in's work)")
        print(f"  RATIO scan/ping throughput: {ratio:.2f} (goal >= 0.40)   "
              f"rush p99: {results['rush']['p99_ms']:.1f} ms (goal <= 50)   "
              f"closed-loop p99 scan/ping: {results['scan']['p99_ms'] / results['ping']['p99_ms']:.2f}")
        results["ok"] = ratio >= 0.40 and results["rush"]["p99_ms"] <= 50
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--server", choices=["gunicorn", "serve"], default="gunicorn")
    parser.add_argument("--scans", type=int, default=60, help="scans per kiosk in the closed loop")
    parser.add_argument("--rush-scans", type=int, default=40, help="scans per kiosk in the open loop")
    parser.add_argument("--pace", type=float, default=0.5, help="mean seconds between one kiosk's scans (open loop)")
    parser.add_argument("--threads", type=int, default=128, help="gunicorn threads (screens hold one each)")
    parser.add_argument("--no-screens", action="store_true", help="no facilitator screens following the sessions")
    args = parser.parse_args()
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    results = [bench(d, args.server, args.scans, args.rush_scans, args.pace, args.threads, not args.no_screens)
               for d in databases]
    print("\nsummary:")
    for r in results:
        print(f"  {r['database']:<9} {r['server']:<9} scan {r['scan']['per_second']:.0f}/s = {r['ratio']:.2f} x ping "
              f"{r['ping']['per_second']:.0f}/s; rush p99 {r['rush']['p99_ms']:.1f} ms; "
              f"{'MEETS' if r['ok'] else 'MISSES'} the goals ({r['cores']} cores)")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""A 5 MB attendance import from the web while 20 kiosks scan, against a real server.

    python bench/bench_import_load.py [--database sqlite|postgres] [--server gunicorn|serve] [--rows 120000]

The kiosks are bench_scan.py's (its KioskStand: 20 enrolled kiosks, each scan a new check-in) at a
rush (an open loop, each kiosk every --pace seconds on average). A coordinator uploads an attendance
file of about 120,000 rows (about 5 MB: every client of the program in its group on each of the
past weeks' days) through the Exports page, and follows the job's JSON until it is done.

Rounds alternate: the rush alone for --alone seconds, then the rush while an import runs (each round
imports another stretch of past days).
Printed: the server's memory growth during the import (the resident memory of the server's
processes, gunicorn's master and worker, sampled every 0.1 s, peak minus the level before the
upload; goal < 200 MB), and the kiosks' scan p99 during the imports as a ratio to their p99 alone
(pooled over the rounds; goal <= 3x).
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import threading
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import KIOSKS, KioskStand, figures  # noqa: E402  (bench_scan puts tests/ on the path)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (gunicorn's master and its workers)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(child) for child in children]
        except (OSError, AttributeError):
            continue
    return total


class MemoryWatch:
    """The server's resident memory every 0.1 s while it runs: the peak above the level at the start."""

    def __init__(self, pid: int):
        self.pid = pid
        self.stop = threading.Event()
        self.before = tree_rss(pid)
        self.peak = self.before
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, tree_rss(self.pid))

    def growth(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak - self.before


def attendance_file(folder: Path, program, first_day: date, rows: int) -> tuple[Path, int]:
    """Each client in its group on past days from `first_day` backwards, until `rows` rows."""
    path = folder / f"attendance-{first_day}.csv"
    written = 0
    with path.open("w") as out:
        out.write("client_id,group,date,check_in,check_out,status\n")
        day = first_day
        while written < rows:
            for n, client_id in enumerate(program.client_ids):
                if written >= rows:
                    break
                out.write(f"{client_id},{program.groups[n % len(program.groups)]},{day},09:00,10:00,present\n")
                written += 1
            day -= timedelta(days=1)
    return path, written


class Rush:
    """The kiosks scanning at random times (mean `pace` s apart each) until stopped: the latencies."""

    def __init__(self, stand: KioskStand, pace: float):
        self.stand, self.pace = stand, pace
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._kiosk, args=(n, c), daemon=True)
                        for n, c in enumerate(stand.clients)]
        self.began = time.perf_counter()
        for thread in self.threads:
            thread.start()

    def _kiosk(self, number, client):
        rng = random.Random(number * 7919 + int(self.began))
        while not self.stop.wait(rng.expovariate(1 / self.pace)):
            started = time.perf_counter()
            try:
                status, body = self.stand.scan(client, number, 0)
            except StopIteration:
                print("    (out of clients to check in: this kiosk stops; run with more --alone seconds)")
                return
            took = time.perf_counter() - started
            with self.lock:
                self.latencies.append(took)
                if status != 200:
                    self.failures.append((status, body[:200]))

    def finish(self) -> tuple[float, list[float]]:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        seconds = time.perf_counter() - self.began
        self.stand.check(self.failures)
        return len(self.latencies) / seconds, self.latencies


def upload(http, base: str, path: Path) -> str:
    page = http.get(base + "/coordinator/exports", timeout=30)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    with path.open("rb") as file:
        response = http.post(base + "/coordinator/imports/attendance", data={"csrf_token": token},
                             files={"file": (path.name, file, "text/csv")}, allow_redirects=False, timeout=120)
    assert response.status_code == 303, (response.status_code, response.text[:500])
    return response.headers["Location"]


def follow(http, base: str, job_url: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(base + job_url + ".json", timeout=30).json()
        if job["finished"]:
            return job
        time.sleep(0.5)
    raise SystemExit("the import did not finish in time")


def bench(database: str, server_kind: str, rows: int, pace: float, rounds: int, alone_seconds: float,
          threads: int) -> dict:
    with ExitStack() as stack:
        scans_needed = int(KIOSKS / pace * (alone_seconds + 200) * rounds) + 500  # each scan a new client
        stand = KioskStand(stack, database, server_kind, scans_needed, threads)
        folder = Path(stand.server.log_path).parent
        coordinator = stand.program.coordinator(stand.server.url)
        pid = stand.server.proc.pid
        print(f"  {KIOSKS} kiosks at a rush (each every {pace} s on average); {len(stand.program.client_ids)} clients "
              f"in {len(stand.program.groups)} groups; {os.cpu_count()} cores shared by all")
        alone, loaded, growths, seconds, rates = [], [], [], [], {"alone": [], "loaded": []}
        first_day = date.today() - timedelta(days=30)
        for number in range(1, rounds + 1):
            path, written = attendance_file(folder, stand.program, first_day, rows)
            days = -(-written // len(stand.program.client_ids))
            first_day -= timedelta(days=days + 1)
            rush = Rush(stand, pace)
            time.sleep(alone_seconds)
            rate, latencies = rush.finish()
            alone += latencies
            rates["alone"].append(rate)
            figures(f"round {number}: scans alone", rate, latencies)
            watch = MemoryWatch(pid)
            rush = Rush(stand, pace)
            began = time.perf_counter()
            job_url = upload(coordinator, stand.server.url, path)
            job = follow(coordinator, stand.server.url, job_url)
            took = time.perf_counter() - began
            rate, latencies = rush.finish()
            growth = watch.growth()
            assert job["status"] == "done", job
            loaded += latencies
            growths.append(growth)
            seconds.append(took)
            rates["loaded"].append(rate)
            figures(f"round {number}: scans during the import", rate, latencies)
            print(f"    import of {written} rows ({path.stat().st_size / 1e6:.1f} MB) took {took:.1f} s: "
                  f"{job['summary']}; server memory +{growth / 1e6:.0f} MB (from {watch.before / 1e6:.0f} MB)")
        base = figures("all rounds: scans alone", sum(rates["alone"]) / rounds, alone)
        during = figures("all rounds: scans during the imports", sum(rates["loaded"]) / rounds, loaded)
        ratio = during["p99_ms"] / base["p99_ms"]
        growth = max(growths)
        print(f"  RATIO scan p99 during/without the import: {ratio:.2f} (goal <= 3); p99 {during['p99_ms']:.1f} ms vs "
              f"{base['p99_ms']:.1f} ms; p50 {during['p50_ms']:.1f} vs {base['p50_ms']:.1f} ms; server memory growth "
              f"{growth / 1e6:.0f} MB (goal < 200); import {sum(seconds) / rounds:.1f} s for {rows} rows")
        return {"database": database, "server": server_kind, "ratio": ratio, "growth": growth, "alone": base,
                "during": during, "seconds": sum(seconds) / rounds, "cores": os.cpu_count(),
                "ok": ratio <= 3 and growth < 200e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--server", choices=["gunicorn", "serve"], default="gunicorn")
    parser.add_argument("--rows", type=int, default=120_000, help="attendance rows in each imported file")
    parser.add_argument("--pace", type=float, default=0.5, help="mean seconds between one kiosk's scans")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--alone", type=float, default=40.0, help="seconds of each round's rush alone")
    parser.add_argument("--threads", type=int, default=128, help="gunicorn threads")
    args = parser.parse_args()
    result = bench(args.database, args.server, args.rows, args.pace, args.rounds, args.alone, args.threads)
    print(f"\nsummary: {result['database']} {result['server']}: scan p99 {result['during']['p99_ms']:.1f} ms during a "
          f"{args.rows}-row import vs {result['alone']['p99_ms']:.1f} ms without = {result['ratio']:.2f}x; server "
          f"memory +{result['growth'] / 1e6:.0f} MB; the import took {result['seconds']:.1f} s; "
          f"{'MEETS' if result['ok'] else 'MISSES'} the goals ({result['cores']} cores)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

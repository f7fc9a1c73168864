"""The coordinator's Clients page on a program of 5,000 clients, over HTTP from a real server.

    python bench/bench_client_list.py [--clients 5000] [--requests 30]

Two temporary SQLite programs, seeded with bulk inserts: the large one with --clients clients (20
groups, each client in one, a plan each, a tenth discharged), the small one with 100 clients (one
page). Each is served by gunicorn as in deploy/ (gthread, one worker); a signed-in coordinator (a
requests session, keep-alive) asks for the list, one request at a time after a warm-up.

Measured in the same run (medians and p95 of --requests requests, wall time to the last byte):
- baseline: the Clients page of the small program (100 clients: the whole list on one page);
- the Clients page of the large program: its first page, a middle page and its last page, each
  100 clients (the pages are ordered by client ID and cut with LIMIT/OFFSET on its index).

Goals: each page of the large program under 1 s, and at most 1.5x the small program's page (a
page's cost follows its 100 rows, not the program's size). Before pagination the same page was
every client at once: about 40 MB for a large program (issue 11).
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import servers  # noqa: E402

GROUPS = 20
PASSWORD = "bench " + secrets.token_hex(12)
SECRET = "bench-client-list-" + "k" * 40


def seed(instance: Path, clients: int) -> str:
    """A program of `clients` clients in `instance`; its database URL."""
    from iop import create_app
    from iop.clinic import staff
    from iop.store import db, migrate

    database_url = f"sqlite:///{instance / 'iop.sqlite3'}"
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                      "SCHEDULER": False, "TIMEZONE": "America/New_York"})
    migrate.upgrade(app)
    created = datetime(2026, 3, 2, 14, tzinfo=timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    with app.app_context():
        raw = db.database().engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            cursor.executemany(
                "INSERT INTO program_group (id, code, name, track, room, weekdays, start, \"end\", active) "
                "VALUES (?, ?, ?, 'relapse-prevention', ?, 'Mon Tue Wed Thu', '09:00:00.000000', "
                "'12:00:00.000000', 1)",
                [(n + 1, f"G{n:02d}", f"Group {n}", f"Room {n}") for n in range(GROUPS)])
            cursor.executemany(
                "INSERT INTO client (id, public_id, client_id, first_name, last_name, status, card_version, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                [(pk, f"p{pk:06d}", f"C{pk:05d}", f"First{pk}", f"Last{pk}",
                  "discharged" if pk % 10 == 0 else "active", created) for pk in range(1, clients + 1)])
            cursor.executemany("INSERT INTO client_group (client_key, group_id) VALUES (?, ?)",
                               [(pk, pk % GROUPS + 1) for pk in range(1, clients + 1)])
            cursor.executemany(
                "INSERT INTO plan (client_key, level_of_care, start_date, end_date, weekly_minutes, days_per_week) "
                "VALUES (?, '2.1', ?, NULL, 540, 3)",
                [(pk, date(2026, 1, 5).isoformat()) for pk in range(1, clients + 1)])
            cursor.execute("COMMIT")
        finally:
            raw.close()
        with db.transaction():
            staff.add_user("cora", PASSWORD, "coordinator", "Cora Bench")
    db.database(app).engine.dispose()
    return database_url


def timed(http, url: str, count: int) -> dict:
    for _ in range(3):
        http.get(url, timeout=30).raise_for_status()
    times, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        response = http.get(url, timeout=30)
        response.raise_for_status()
        size = len(response.content)
        times.append(time.perf_counter() - started)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
            "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-clients-")))
        started = time.perf_counter()
        programs = {}
        for name, count in (("small", 100), ("large", args.clients)):
            instance = folder / name
            instance.mkdir()
            url = seed(instance, count)
            server = servers.WebProcess(f"web-{name}", servers.environment(instance, url, secret=SECRET),
                                        folder)
            server.start()
            stack.callback(server.stop)
            server.wait_healthy()
            programs[name] = (server, servers.staff_session(server.url, "cora", PASSWORD))
        print(f"seeded and started in {time.perf_counter() - started:.1f} s; {args.clients} clients "
              f"({args.clients // 10} discharged), pages of 100; {args.requests} requests each; "
              f"cores: {servers.os.cpu_count()}")

        small_server, small = programs["small"]
        large_server, large = programs["large"]
        active_pages = -(-(args.clients - args.clients // 10) // 100)
        baseline = timed(small, small_server.url + "/coordinator/clients?status=all", args.requests)
        runs = {
            "first page": timed(large, large_server.url + "/coordinator/clients", args.requests),
            f"middle page ({active_pages // 2})": timed(
                large, large_server.url + f"/coordinator/clients?page={active_pages // 2}", args.requests),
            f"last page ({active_pages}), status=all": timed(
                large, large_server.url + f"/coordinator/clients?status=all&page={-(-args.clients // 100)}",
                args.requests),
        }
        print(f"\nbaseline: the small program's list (100 clients, one page): p50 {baseline['p50'] * 1000:.1f} ms, "
              f"p95 {baseline['p95'] * 1000:.1f} ms, {baseline['bytes'] / 1024:.0f} KB")
        worst = 0.0
        for name, figures in runs.items():
            ratio = figures["p50"] / baseline["p50"]
            worst = max(worst, ratio)
            print(f"{args.clients} clients, {name}: p50 {figures['p50'] * 1000:.1f} ms, "
                  f"p95 {figures['p95'] * 1000:.1f} ms, {figures['bytes'] / 1024:.0f} KB = {ratio:.2f}x baseline")
        slowest = max(figures["p95"] for figures in runs.values())
        print(f"\ngoal: every page under 1 s (slowest p95 {slowest * 1000:.0f} ms: "
              f"{'met' if slowest < 1 else 'NOT met'}) and at most 1.5x the baseline "
              f"(worst {worst:.2f}x: {'met' if worst <= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()

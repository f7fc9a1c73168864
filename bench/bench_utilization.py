"""The utilization page and export on a large program, as a ratio to the week board in the same run.

    .venv/bin/python bench/bench_utilization.py [--clients 2000] [--repeat 5]

Seeds a temporary SQLite instance as bench/bench_board.py does (2,000 clients in 20 groups meeting
Mon-Thu, sequential 12-week plans, a third stepping down, a year of history, about 400,000
attendances), then gives every client payer authorizations: an H0015 day authorization of 40 days
around "now" (Wednesday 2 March 2026, 10:30), a 90853 session authorization over the same dates, and
an H0015 one of the quarter before (ended within the export's 30 days): 6,000 authorizations.

Measured in the same run, signed in as a coordinator through Flask's test client (best wall time of
--repeat runs; the pages render their templates and write their audit events):
- the week board page `/coordinator/` (the baseline: the page coordinators open every morning), and
  its authorization marks, which the board's script fetches once the board is shown;
- the utilization page `/coordinator/utilization` for this month so far (every authorization in force,
  its units counted from the attendance, status, forecast, and the days no authorization covers);
- the utilization export `iop export utilization --on DATE` as CSV (exports.export_to to a file).

Goals (bench/README.md: ratios bind, absolute times are for the README): page and export each under
1 s, and at most 3x the week board.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time as wall
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_board  # noqa: E402  (its program, seeded the same way)

LAST_MONDAY = bench_board.LAST_MONDAY


def add_authorizations(app, clients: int) -> int:
    from iop.store import db

    rng = random.Random(7)
    rows = []
    for pk in range(1, clients + 1):
        start = LAST_MONDAY - timedelta(weeks=8 + pk % 4)
        end = start + timedelta(weeks=13, days=-1)
        rows.append((pk, "Aetna" if pk % 2 else "Medicaid", f"A-{pk}", "H0015", "day", 40 + rng.randrange(-8, 8),
                     start.isoformat(), end.isoformat()))
        rows.append((pk, "Aetna" if pk % 2 else "Medicaid", f"G-{pk}", "90853", "session", 48,
                     start.isoformat(), end.isoformat()))
        before = start - timedelta(weeks=13)
        rows.append((pk, "Aetna" if pk % 2 else "Medicaid", f"P-{pk}", "H0015", "day", 36,
                     before.isoformat(), (start - timedelta(days=1)).isoformat()))
    with app.app_context():
        raw = db.database().engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.executemany(
                "INSERT INTO \"authorization\" (client_key, payer, number, service, unit, units, start_date, "
                "end_date, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '2026-01-01 00:00:00.000000')", rows)
            raw.commit()
        finally:
            raw.close()
    return len(rows)


def timed(run, repeat: int) -> dict:
    run()  # warm the page cache
    times = []
    for _ in range(repeat):
        started = wall.perf_counter()
        run()
        times.append(wall.perf_counter() - started)
    return {"best": min(times), "median": statistics.median(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"bench_utilization: {os.cpu_count()} cores, SQLite {sqlite3.sqlite_version}, {args.clients} clients, "
          f"best wall time of {args.repeat} runs (median beside)")
    from iop import clock
    from iop.clinic import staff
    from iop.files import exports
    from iop.store import db

    with tempfile.TemporaryDirectory(prefix="iop-bench-utilization-") as folder:
        app, counts = bench_board.seed(Path(folder), args.clients, 52)
        authorizations = add_authorizations(app, args.clients)
        print(f"seeded {counts['attendances']:,} attendances, {counts['sessions']:,} sessions, {counts['plans']:,} "
              f"plans, {authorizations:,} authorizations in {counts['seconds']:.1f} s")
        tz = app.config["PROGRAM_TZ"]
        now = datetime.combine(bench_board.NOW_LOCAL[0], bench_board.NOW_LOCAL[1], tzinfo=tz)
        with app.app_context():
            with db.transaction():
                staff.add_user("cora", "a coordinator password", "coordinator", "Cora", "")
        http = app.test_client()
        on = now.astimezone(tz).date()
        with clock.frozen(now):
            token = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/login").get_data(as_text=True))
            http.post("/login", data={"username": "cora", "password": "a coordinator password",
                                      "csrf_token": token.group(1)})

            def get(path):
                def run():
                    answer = http.get(path)
                    assert answer.status_code == 200, (path, answer.status_code)
                    return answer
                return run

            def export():
                with app.app_context():
                    return exports.export_to("utilization", on, on, "csv", Path(folder) / "utilization.csv")

            rows = get("/coordinator/utilization")().get_data(as_text=True).count('<tr class="auth-')
            exported = export()
            board = timed(get("/coordinator/"), args.repeat)
            page = timed(get("/coordinator/utilization"), args.repeat)
            spreadsheet = timed(export, args.repeat)
            marks = timed(get(f"/coordinator/authorization-marks?week={LAST_MONDAY.isoformat()}"), args.repeat)
        db.database(app).engine.dispose()
    print(f"the utilization page lists {rows:,} authorizations; the export on {on} has {exported:,} rows")
    for name, result in (("week board page /coordinator/ (baseline)", board),
                         ("  its authorization marks (fetched after it)", marks),
                         ("utilization page /coordinator/utilization", page),
                         ("utilization export (CSV file)", spreadsheet)):
        print(f"  {name:<45} {result['best'] * 1000:7.1f} ms ({result['median'] * 1000:7.1f} ms median)")
    page_ratio, export_ratio = page["best"] / board["best"], spreadsheet["best"] / board["best"]
    print(f"  ratios to the week board: page {page_ratio:.2f}x, export {export_ratio:.2f}x")
    goals = {
        "utilization page under 1 s": page["best"] < 1.0,
        "utilization export under 1 s": spreadsheet["best"] < 1.0,
        "page at most 3x the week board": page_ratio <= 3.0,
        "export at most 3x the week board": export_ratio <= 3.0,
    }
    for goal, met in goals.items():
        print(f"  {'met   ' if met else 'MISSED'}  {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

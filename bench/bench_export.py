"""Export a year of a large program and measure peak memory growth and time.

    /work/venv/bin/python bench/bench_export.py [--clients 2000] [--weeks 52]

Seeds a temporary SQLite instance (bulk inserts: 2,000 clients in 20 groups group_session Mon-Thu,
about 400,000 attendances over a year), then runs each measurement in a fresh subprocess so its
peak resident memory (ru_maxrss) is its own:

- baseline: a plain csv.writer over a raw sqlite3 cursor of the same attendance rows (the floor);
- naive: the same rows fetched all at once, then written (what not streaming costs);
- the attendance export in CSV and in XLSX through iop.exports (the code under test);
- the days and hours exports in CSV, for their time.

The goal that binds: the attendance exports grow memory by less than 100 MB. Times are printed
as ratios to the baseline measured in the same run (the machines are noisy).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time as wall
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_MONDAY = date(2025, 1, 6)
MEMORY_GOAL_MB = 100


def make_app(instance: Path):
    from iop import create_app

    return create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-" + "x" * 40, "SCHEDULER": False,
                       "TIMEZONE": "America/New_York"})


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---- seeding -------------------------------------------------------------------------------

def seed(instance: Path, clients: int, weeks: int) -> dict:
    from sqlalchemy import insert, select

    from iop.clock import local_to_utc
    from iop.store import db, migrate
    from iop.store.models import Attendance, Client, ClientGroup, Group, GroupSession, Plan

    app = make_app(instance)
    migrate.upgrade(app)
    rng = random.Random(6)
    tz = app.config["PROGRAM_TZ"]
    started = wall.perf_counter()
    with app.app_context():
        with db.transaction() as s:
            groups = []
            for number in range(20):
                morning = number % 2 == 0
                groups.append(Group(code=f"G{number:02d}", name=f"Group {number}",
                                    track="relapse-prevention" if morning else "twelve-step", room=f"Room {number}",
                                    weekdays="Mon Tue Wed Thu", start=time(9) if morning else time(18),
                                    end=time(12) if morning else time(21)))
            s.add_all(groups)
            s.flush()
            s.execute(insert(Client), [dict(client_id=f"C{n:05d}", first_name=f"First{n}", last_name=f"Last{n}",
                                            public_id=f"p{n:05d}") for n in range(clients)])
            client_keys = list(s.scalars(select(Client.id).where(Client.client_id.like("C%")).order_by(Client.id)))
            s.execute(insert(ClientGroup), [dict(client_key=pk, group_id=groups[i % 20].id)
                                            for i, pk in enumerate(client_keys)])
            s.execute(insert(Plan), [dict(client_key=pk, level_of_care="2.1", start_date=FIRST_MONDAY, end_date=None,
                                          weekly_minutes=540, days_per_week=3) for pk in client_keys])
            sessions = []
            for group in groups:
                for week in range(weeks):
                    for offset in range(4):
                        day = FIRST_MONDAY + timedelta(weeks=week, days=offset)
                        sessions.append(dict(group_id=group.id, date=day, status="closed",
                                             starts_at=local_to_utc(day, group.start, tz),
                                             ends_at=local_to_utc(day, group.end, tz), module_id="rp-01-triggers"))
            s.execute(insert(GroupSession), sessions)
        # Its own groups' sessions only: bench_backup.py loads this history beside a running program.
        group_sessions = db.session().execute(select(GroupSession.id, GroupSession.group_id, GroupSession.starts_at,
                                                     GroupSession.ends_at)
                                              .where(GroupSession.group_id.in_([g.id for g in groups]))).all()
        members: dict[int, list[int]] = {}
        for i, pk in enumerate(client_keys):
            members.setdefault(groups[i % 20].id, []).append(pk)
        made = 0
        pending = []
        now = datetime.now(timezone.utc)
        for session_id, group_id, starts, ends in group_sessions:
            for pk in members[group_id]:
                if rng.random() < 0.04:
                    continue  # absent
                check_in = starts + timedelta(minutes=rng.randint(-20, 25))
                check_out = ends - timedelta(minutes=rng.choice((0, 0, 0, 5, 30, 60)))
                pending.append(dict(session_id=session_id, client_key=pk, status="present", source="kiosk",
                                    check_in_at=check_in, check_out_at=check_out, check_out_source="kiosk",
                                    created_at=now))
                if len(pending) >= 20_000:
                    with db.transaction() as s:
                        s.execute(insert(Attendance), pending)
                    made += len(pending)
                    pending = []
        if pending:
            with db.transaction() as s:
                s.execute(insert(Attendance), pending)
            made += len(pending)
    return {"clients": clients, "sessions": len(sessions), "attendances": made,
            "seconds": wall.perf_counter() - started, "last_day": FIRST_MONDAY + timedelta(weeks=weeks) - timedelta(days=1)}


# ---- one measurement in this (child) process ------------------------------------------------

BASELINE_SQL = """
SELECT s.date, c.client_id, c.first_name || ' ' || c.last_name, g.code, g.track, s.module_id,
       a.check_in_at, a.check_out_at, a.status, a.source
FROM attendance a JOIN group_session s ON s.id = a.session_id JOIN program_group g ON g.id = s.group_id
JOIN client c ON c.id = a.client_key
WHERE s.date BETWEEN ? AND ? AND a.voided_at IS NULL
ORDER BY s.date, s.starts_at, g.code, c.client_id, a.id
"""


def child(mode: str, instance: Path, first: date, last: date, out: Path) -> dict:
    import sqlite3

    app = make_app(instance)
    before = peak_mb()
    started = wall.perf_counter()
    rows = 0
    if mode in ("baseline", "naive"):
        connection = sqlite3.connect(instance / "iop.sqlite3")
        cursor = connection.execute(BASELINE_SQL, (first.isoformat(), last.isoformat()))
        source = cursor.fetchall() if mode == "naive" else cursor
        with open(out, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            for row in source:
                writer.writerow(row)
                rows += 1
        connection.close()
    else:
        from iop.files import exports

        kind, fmt = mode.split(":")
        with app.app_context():
            rows = exports.export_to(kind, first, last, fmt, out)
    return {"mode": mode, "rows": rows, "seconds": wall.perf_counter() - started,
            "growth_mb": max(0.0, peak_mb() - before), "peak_mb": peak_mb(), "bytes": out.stat().st_size}


def measure(mode: str, instance: Path, first: date, last: date, work: Path, script: str = __file__) -> dict:
    """Run `mode` in a fresh `script --child` process (bench_fhir.py reuses this with its own children)."""
    out = work / f"{mode.replace(':', '-')}.out"
    done = subprocess.run([sys.executable, script, "--child", mode, "--instance", str(instance),
                           "--first", first.isoformat(), "--last", last.isoformat(), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def arguments(description: str) -> argparse.ArgumentParser:
    """The program's size, and the arguments of a --child measurement (this and bench_fhir.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=52)
    for name in ("--child", "--instance", "--first", "--last", "--out"):
        parser.add_argument(name)
    return parser


def answered_child(args, measurement) -> bool:
    """In a --child process: run the one measurement, print it as JSON for measure(), and say so."""
    if not args.child:
        return False
    print(json.dumps(measurement(args.child, Path(args.instance), date.fromisoformat(args.first),
                                 date.fromisoformat(args.last), Path(args.out))))
    return True


def seeded_program(work: Path, args) -> tuple[Path, dict]:
    """The program of --clients and --weeks in a new instance folder under `work`, said on stdout."""
    instance = work / "instance"
    print(f"cores: {os.cpu_count()}; seeding {args.clients} clients over {args.weeks} weeks on SQLite ...",
          flush=True)
    return instance, seed(instance, args.clients, args.weeks)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--skip-hours", action="store_true", help="leave out the (slower) hours export")
    args = parser.parse_args()
    if answered_child(args, child):
        return

    with tempfile.TemporaryDirectory(prefix="iop-bench-export-") as work_dir:
        work = Path(work_dir)
        instance, seeded = seeded_program(work, args)
        print(f"seeded {seeded['attendances']:,} attendances in {seeded['sessions']:,} sessions "
              f"({seeded['seconds']:.0f} s); database {(instance / 'iop.sqlite3').stat().st_size / 2**20:.0f} MB")
        first, last = FIRST_MONDAY, seeded["last_day"]
        modes = ["baseline", "naive", "attendance:csv", "attendance:xlsx", "days:csv"]
        if not args.skip_hours:
            modes.append("hours:csv")
        results = {}
        for mode in modes:
            results[mode] = result = measure(mode, instance, first, last, work)
            print(f"  {mode:<16} {result['rows']:>8,} rows  {result['seconds']:7.1f} s  "
                  f"peak memory growth {result['growth_mb']:6.1f} MB (peak {result['peak_mb']:.0f} MB)  "
                  f"file {result['bytes'] / 2**20:.1f} MB",
                  flush=True)
        base = results["baseline"]
        print("\nratios against the baseline (plain csv.writer over a raw sqlite3 cursor, same rows, same run):")
        ok = True
        for mode in modes[1:]:
            result = results[mode]
            grew = result["growth_mb"]
            verdict = ""
            if mode.startswith("attendance"):
                passed = grew < MEMORY_GOAL_MB
                ok &= passed
                verdict = f"   goal < {MEMORY_GOAL_MB} MB growth: {'met' if passed else 'MISSED'}"
            print(f"  {mode:<16} time x{result['seconds'] / base['seconds']:5.1f}   "
                  f"memory growth {grew:6.1f} MB vs {base['growth_mb']:.1f} MB{verdict}")
        if results["attendance:csv"]["rows"] != base["rows"]:
            print("  row counts differ between the export and the baseline!")
            ok = False
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

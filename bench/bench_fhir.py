"""The FHIR export of a year of a large program: memory growth and time, against the CSV attendance
export of the same range in the same run.

    .venv/bin/python bench/bench_fhir.py [--clients 2000] [--weeks 52] [--repeat 3]

Seeds bench_export.py's program on SQLite (2,000 clients in 20 groups group_session Mon-Thu, about 400,000
attendances in 4,160 sessions over a year; the same builder), then runs each export in a fresh
subprocess so its peak resident memory (ru_maxrss) is its own, --repeat times in turn:

- attendance:csv, the baseline: `iop export attendance` (iop.exports), the same rows;
- fhir: `iop export fhir` into a new folder (iop.files.fhir: the code under test), one Encounter per
  attendance and per session, one Patient per client, and the Groups and Practitioners;
- fhir:zip: the Exports page's download (the same files, zipped into a temporary file, read in chunks).

The goal that binds: the FHIR exports grow memory by less than 100 MB (they stream, like the others).
Times are printed as ratios to the CSV export's median in the same run (the machines are noisy).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time as wall
from datetime import date
from pathlib import Path

import bench_export  # the program builder and the one-process measurement (same folder)

MODES = ("attendance:csv", "fhir", "fhir:zip")


def add_facilitators(instance: Path) -> int:
    """A facilitator (name and credentials) for each group and its sessions: bench_export's program has none."""
    from sqlalchemy import insert, select, update

    from iop.store import db
    from iop.store.models import Group, GroupSession, StaffUser

    app = bench_export.make_app(instance)
    with app.app_context(), db.transaction() as s:
        groups = list(s.scalars(select(Group.id).order_by(Group.id)))
        for number, group_pk in enumerate(groups):
            staff_pk = s.execute(insert(StaffUser).values(
                username=f"staff{number}", display_name=f"Facilitator {number}", credentials="LCSW, CADC",
                role="facilitator", password_hash="-")).inserted_primary_key[0]
            s.execute(update(Group).where(Group.id == group_pk).values(facilitator_id=staff_pk))
            s.execute(update(GroupSession).where(GroupSession.group_id == group_pk).values(facilitator_id=staff_pk))
    return len(groups)


def child(mode: str, instance: Path, first: date, last: date, out: Path) -> dict:
    if not mode.startswith("fhir"):
        return bench_export.child(mode, instance, first, last, out)
    from sqlalchemy import select

    from iop.files import fhir
    from iop.store import db
    from iop.store.models import AuditEvent

    app = bench_export.make_app(instance)
    before = bench_export.peak_mb()
    started = wall.perf_counter()
    with app.app_context():
        if mode == "fhir":
            fhir.export_folder(first, last, out)
            size = sum(path.stat().st_size for path in out.iterdir())
        else:
            size = sum(len(chunk) for chunk in fhir.web_stream(first, last, None))
        seconds = wall.perf_counter() - started
        detail = db.session().scalars(select(AuditEvent.detail).where(AuditEvent.action == "export.fhir")
                                      .order_by(AuditEvent.id.desc()).limit(1)).one()
    return {"mode": mode, "rows": detail["rows"], "resources": detail["resources"], "seconds": seconds,
            "growth_mb": max(0.0, bench_export.peak_mb() - before), "peak_mb": bench_export.peak_mb(), "bytes": size}


def main() -> None:
    parser = bench_export.arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if bench_export.answered_child(args, child):
        return

    with tempfile.TemporaryDirectory(prefix="iop-bench-fhir-") as work_dir:
        work = Path(work_dir)
        instance, seeded = bench_export.seeded_program(work, args)
        facilitators = add_facilitators(instance)
        print(f"seeded {seeded['attendances']:,} attendances in {seeded['sessions']:,} sessions, "
              f"{facilitators} facilitators ({seeded['seconds']:.0f} s)", flush=True)
        first, last = bench_export.FIRST_MONDAY, seeded["last_day"]
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for round_number in range(args.repeat):
            for mode in MODES:
                runs_dir = work / f"round-{round_number}"
                runs_dir.mkdir(exist_ok=True)
                result = bench_export.measure(mode, instance, first, last, runs_dir, script=__file__)
                runs[mode].append(result)
                print(f"  {mode:<15} {result['rows']:>8,} rows/resources  {result['seconds']:6.1f} s  "
                      f"memory growth {result['growth_mb']:6.1f} MB (peak {result['peak_mb']:.0f} MB)  "
                      f"{result['bytes'] / 2**20:6.1f} MB written", flush=True)
        base = statistics.median(run["seconds"] for run in runs["attendance:csv"])
        print(f"\nmedians of {args.repeat} run(s); ratios against the CSV attendance export of the same range "
              f"({base:.1f} s):")
        ok = True
        for mode in MODES[1:]:
            times = [run["seconds"] / base for run in runs[mode]]
            grew = max(run["growth_mb"] for run in runs[mode])
            passed = grew < bench_export.MEMORY_GOAL_MB
            ok &= passed
            print(f"  {mode:<15} time x{statistics.median(times):4.2f} (runs x{min(times):.2f}-x{max(times):.2f})   "
                  f"memory growth at most {grew:6.1f} MB   goal < {bench_export.MEMORY_GOAL_MB} MB: "
                  f"{'met' if passed else 'MISSED'}")
        attendance_rows = runs["attendance:csv"][0]["rows"]
        resources = runs["fhir"][0]["resources"]
        print(f"  resources: {resources}; client Encounters "
              f"{resources['Encounter'] - seeded['sessions']:,} (if every session had someone) vs "
              f"{attendance_rows:,} attendance rows")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Backups of a large program: their time and size, and what a running backup does to kiosk scans.

    python bench/bench_backup.py [--database sqlite|postgres] [--rounds 2] [--skip-rush]

1. Time and size. bench_export.py's program (2,000 clients in 20 groups, a year of sessions Mon-Thu,
   about 400,000 attendances) is seeded, then backed up (plain and encrypted), verified (restored into
   a temporary database and counted) and restored into a new database. Baseline in the same run: a
   plain copy of the quiet database (SQLite: the file copied; PostgreSQL: a bare pg_dump to a file).
2. Scans during a backup. bench_scan.py's stand (a server the production way, 20 enrolled kiosks,
   each scan a new check-in) with the same year of history loaded into its database; the kiosks scan
   at a rush (open loop, each every --pace s) in rounds that alternate: the rush alone, then the rush
   while `iop backup` runs again and again in a process of its own (as an admin's command or the
   `iop scheduler` process would). Goal: the scans' p99 during backups at most 1.5x without (pooled).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_export  # noqa: E402
from bench_scan import KIOSKS, KioskStand  # noqa: E402  (puts tests/ on the path)

from helpers import servers  # noqa: E402

KEY = "bench-backup-key-" + "k" * 24
GOAL = 1.5


def app_for(instance: Path, database_url: str | None, **settings):
    from iop import create_app

    config = {"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench-" + "x" * 40, "SCHEDULER": False,
              "TIMEZONE": "America/New_York", **settings}
    if database_url:
        config["DATABASE_URL"] = database_url
    return create_app(config)


def seed(instance: Path, database_url: str | None, clients: int, weeks: int) -> dict:
    """bench_export.py's program, into `database_url` (its own SQLite file when None)."""
    bench_export.make_app = lambda folder: app_for(folder, database_url)
    return bench_export.seed(instance, clients, weeks)


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def mb(size: int) -> str:
    return f"{size / 2**20:7.1f} MB"


# ---- 1. time and size ------------------------------------------------------------------------------

def time_and_size(database: str, clients: int, weeks: int) -> dict:
    from iop.ops import backup
    from iop.store import db

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="iop-bench-backup-")))
        url = stack.enter_context(servers.fresh_schema(servers.required_postgres())) if database == "postgres" else None
        print(f"\n== 1. time and size, {database}: seeding {clients} clients over {weeks} weeks ...", flush=True)
        seeded = seed(work / "instance", url, clients, weeks)
        app = app_for(work / "instance", url)
        keyed = app_for(work / "instance", url, BACKUP_KEY=KEY)
        print(f"  seeded {seeded['attendances']:,} attendances in {seeded['sessions']:,} sessions "
              f"({seeded['seconds']:.0f} s); {os.cpu_count()} cores")
        if database == "sqlite":
            source = work / "instance" / "iop.sqlite3"
            base_seconds, _ = timed(lambda: shutil.copyfile(source, work / "copy.sqlite3"))
            base_size, base_name = source.stat().st_size, "file copy of the quiet database"
        else:
            dsn, env = backup._libpq(url)
            base_seconds, _ = timed(lambda: backup._run(["pg_dump", "--format=custom", f"--file={work / 'bare.dump'}",
                                                         f"--dbname={dsn}"], env, "pg_dump"))
            base_size, base_name = (work / "bare.dump").stat().st_size, "bare pg_dump -Fc"
        rows = {}
        plain, sealed = work / "plain.iopbak", work / "sealed.iopbak"
        with app.app_context():
            rows["backup"] = timed(lambda: backup.write_backup(app, plain))[0], plain.stat().st_size
            rows["verify"] = timed(lambda: backup.verify(app, plain))[0], plain.stat().st_size
        with keyed.app_context():
            rows["backup, encrypted"] = timed(lambda: backup.write_backup(keyed, sealed))[0], sealed.stat().st_size
        db.database(app).engine.dispose()
        db.database(keyed).engine.dispose()
        if database == "postgres":  # a new database server: the same schema name, empty
            from sqlalchemy import create_engine, text

            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                schema = connection.execute(text("SELECT current_schema()")).scalar()
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
        target = app_for(work / "restored", url)
        with target.app_context():
            rows["restore"] = timed(lambda: backup.restore(target, plain))[0], plain.stat().st_size
        db.database(target).engine.dispose()
        print(f"  {'baseline: ' + base_name:<44} {base_seconds:6.2f} s   {mb(base_size)}")
        for name, (seconds, size) in rows.items():
            print(f"  {name:<44} {seconds:6.2f} s   {mb(size)}   time x{seconds / base_seconds:5.1f} the baseline")
        return {"database": database, "attendances": seeded["attendances"], "baseline": (base_seconds, base_size),
                **rows}


# ---- 2. scans during a backup ----------------------------------------------------------------------

class BackingUp:
    """`iop backup` again and again, each in a process of its own, until stopped."""

    def __init__(self, env: dict, folder: Path):
        self.env, self.folder = env, folder
        self.stop = threading.Event()
        self.seconds: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            started = time.perf_counter()
            done = subprocess.run([str(servers.BIN / "iop"), "backup", "-o", str(self.folder / "rush.iopbak")],
                                  env=self.env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"iop backup failed: {done.stderr}")
            self.seconds.append(time.perf_counter() - started)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        self.thread.join()


def scans_during_backups(database: str, server_kind: str, clients: int, weeks: int, rush_scans: int, pace: float,
                         threads: int, rounds: int) -> dict:
    with ExitStack() as stack:
        stand = KioskStand(stack, database, server_kind, KIOSKS * rush_scans * rounds * 2, threads)
        url = stand.database_url
        instance = Path(stand.server.env["IOP_INSTANCE_PATH"])
        print(f"  loading a year of history ({clients} more clients) into the running server's database ...",
              flush=True)
        seeded = seed(instance, None if database == "sqlite" else url, clients, weeks)
        env = {**stand.server.env, "IOP_BACKUP_KEY": KEY}
        print(f"  {seeded['attendances']:,} attendances loaded; {KIOSKS} kiosks at a rush (each every {pace} s); "
              f"{os.cpu_count()} cores shared by the server, the kiosks and the backups")
        backups = []

        @contextmanager
        def backing_up():
            with BackingUp(env, instance.parent) as running:
                yield
            backups.extend(running.seconds)
            print(f"    {len(running.seconds)} backups finished in the rush "
                  f"({', '.join(f'{s:.1f} s' for s in running.seconds)} each, the command's start included)")

        base, loaded, ratio = stand.rush_alone_and_loaded(rounds, rush_scans, pace, backing_up,
                                                          "scans during backups")
        print(f"  RATIO scan p99 during/without backups: {ratio:.2f} (goal <= {GOAL}); p99 {loaded['p99_ms']:.1f} ms "
              f"vs {base['p99_ms']:.1f} ms; p50 {loaded['p50_ms']:.1f} vs {base['p50_ms']:.1f} ms")
        return {"ratio": ratio, "alone": base, "during": loaded, "backups": backups, "ok": ratio <= GOAL}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--server", choices=["gunicorn", "serve"], default="gunicorn")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--rush-scans", type=int, default=30, help="scans per kiosk in each rush")
    parser.add_argument("--pace", type=float, default=0.5, help="mean seconds between one kiosk's scans")
    parser.add_argument("--threads", type=int, default=128, help="gunicorn threads")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-rush", action="store_true", help="only the time and size")
    args = parser.parse_args()
    sizes = time_and_size(args.database, args.clients, args.weeks)
    if args.skip_rush:
        return 0
    print(f"\n== 2. scans during backups, {args.database} / {args.server}")
    rush = scans_during_backups(args.database, args.server, args.clients, args.weeks, args.rush_scans, args.pace,
                                args.threads, args.rounds)
    seconds, size = sizes["backup, encrypted"]
    print(f"\nsummary: {args.database}, {sizes['attendances']:,} attendances: backup {sizes['backup'][0]:.1f} s, "
          f"encrypted {seconds:.1f} s, {size / 2**20:.1f} MB; verify {sizes['verify'][0]:.1f} s; restore "
          f"{sizes['restore'][0]:.1f} s; scan p99 during backups {rush['ratio']:.2f}x without "
          f"({'MEETS' if rush['ok'] else 'MISSES'} the goal <= {GOAL}; {os.cpu_count()} cores)")
    return 0 if rush["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

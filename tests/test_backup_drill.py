"""The restore drill, with real processes: a server with kiosks scanning and a group running is backed up,
killed with SIGKILL, its instance folder deleted (on PostgreSQL its schema dropped too: the machine is
lost), restored from the backup and started again. The hours, attendance and days exports equal those
taken at the backup, the room display comes back on its step by itself, and the kiosks scan on.

On the embedded default (`iop serve`, SQLite) always; on gunicorn + PostgreSQL when
IOP_TEST_POSTGRES_URL is reachable (fails in CI without it, skips elsewhere)."""
from __future__ import annotations

import shutil
import threading
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta

import pytest
import requests
from sqlalchemy import create_engine, text

from helpers import servers
from iop import clock

pytestmark = pytest.mark.slow

KEY = "drill-backup-key-kept-elsewhere-0001"


@pytest.fixture(params=["sqlite-serve", "postgres-gunicorn"])
def stack(request, tmp_path):
    """(environment, database URL, process kind, lose the database) of the embedded default or the scale-out."""
    with ExitStack() as cleanup:
        database_url, kind = servers.stack_database(request.param, tmp_path, cleanup)
        if kind == "serve":
            def lose_database():
                pass  # it is in the instance folder
        else:
            def lose_database():
                engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
                try:
                    with engine.connect() as connection:
                        schema = connection.execute(text("SELECT current_schema()")).scalar()
                        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                finally:
                    engine.dispose()
        env = servers.environment(tmp_path / "instance", database_url)
        env["IOP_BACKUP_KEY"] = KEY
        yield env, kind, lose_database


class Scanning:
    """Kiosks scanning the given cards one after another in a background thread; each answer is kept."""

    def __init__(self, base_url: str, kiosk: requests.Session, codes: list[str]):
        self.answers: list[tuple[int, dict]] = []
        self.thread = threading.Thread(target=self._run, args=(base_url, kiosk.cookies, codes), daemon=True)

    def _run(self, base_url, cookies, codes):
        http = requests.Session()
        http.cookies.update(cookies)
        for code in codes:
            response = servers.scan(http, base_url, code)
            self.answers.append((response.status_code, response.json()))

    def start(self):
        self.thread.start()
        return self

    def join(self):
        self.thread.join(120)
        assert not self.thread.is_alive(), "the kiosk's scans were not all answered"
        return self.answers


def exports(program: servers.Program, at: datetime) -> dict[str, str]:
    """`iop export hours|attendance|days` as at `at`: an attendance still open is credited up to "now",
    so the exports taken at the backup and after the restore are compared at the same instant."""
    today = date.today()
    first, last = (today - timedelta(days=21)).isoformat(), (today + timedelta(days=1)).isoformat()
    with clock.frozen(at):
        return {kind: program.command("export", kind, "--from", first, "--to", last)
                for kind in ("hours", "attendance", "days")}


def test_backup_lose_the_machine_restore_and_carry_on(stack, tmp_path):
    env, kind, lose_database = stack
    program = servers.Program(env, tmp_path, clients=40)
    server = servers.WebProcess("server", env, tmp_path, kind=kind).start()
    group = None
    try:
        server.wait_healthy()
        group = servers.RunningGroup(server, program, step=2)
        kiosk = group.kiosk

        # A backup while kiosks scan: a consistent copy (it verifies: its rows are its manifest's).
        scanning = Scanning(server.url, kiosk, program.codes[1:20]).start()
        while not scanning.answers:
            time.sleep(0.01)
        servers.iop(env, "backup", "-o", str(tmp_path / "while-scanning.iopbak"))
        assert all(status == 200 for status, _body in scanning.join())
        assert servers.iop(env, "backup", "verify", str(tmp_path / "while-scanning.iopbak")).startswith("OK")

        # The backup the clinic will need, with the group running on step 2.
        backed_up_at = clock.now()
        at_backup = exports(program, backed_up_at)
        assert program.client_ids[5] in at_backup["attendance"]
        drill = tmp_path / "elsewhere" / "drill.iopbak"  # kept off the machine
        drill.parent.mkdir()
        servers.iop(env, "backup", "-o", str(drill))
        killed = time.monotonic()

        server.kill()  # SIGKILL
        shutil.rmtree(tmp_path / "instance")  # the machine is lost
        lose_database()

        restored = servers.iop(env, "restore", str(drill))
        assert "Restored" in restored
        assert exports(program, backed_up_at) == at_backup
        server.start()
        server.wait_healthy()
        # The room display and the control page reconnect by themselves and are back on step 2 (either may
        # come back first); the facilitator carries on.
        group.back_after(killed, step=2, timeout=30)
        group.press(3)
        # The kiosk scans on, with its enrollment and the clients' cards from before.
        after = Scanning(server.url, kiosk, program.codes[20:30]).start().join()
        assert [body["result"] for _status, body in after] == ["checked_in"] * 10, after
        again = servers.scan(kiosk, server.url, program.codes[5])
        assert again.status_code == 200 and again.json()["result"] != "checked_in", "scanned before the backup"
    finally:
        if group is not None:
            group.close()
        server.stop()

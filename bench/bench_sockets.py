"""Kiosk scans while strangers open 1,000 Socket.IO connections, against a real server.

    python bench/bench_sockets.py [--database sqlite|postgres] [--server gunicorn|serve] [--connections 1000]

The kiosks are bench_scan.py's (its KioskStand: 20 enrolled kiosks, each scan a new check-in), at a
rush (an open loop, each kiosk every --pace seconds). The strangers are --connections connections
without a sign-in or a display link (half raw WebSocket upgrades, half Engine.IO polling handshakes),
opened by --attackers threads as fast as they can at the start of the rush, each kept open at the
strangers' end until the rush is over (the finding: 400 such WebSockets were held, 1,600 server
threads). Each must be refused at the handshake and none held.

Rounds alternate: rush alone, rush with the strangers, rush alone, rush with the strangers. Goal:
the scans' p99 with the strangers at most 1.5x the p99 without them (pooled over the rounds).
"""
from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import KIOSKS, KioskStand  # noqa: E402  (bench_scan puts tests/ on the path)


class Strangers:
    """`connections` strangers that each open a Socket.IO connection at the start of the rush (as fast as
    `threads` threads can) and keep their end open until it is over, as the 400 held WebSockets of the
    finding did. The server must refuse each at the handshake and hold none of them."""

    def __init__(self, port: int, connections: int, threads: int):
        self.port, self.connections, self.threads = port, connections, threads
        self.lock = threading.Lock()
        self.opened = 0
        self.seconds = 0.0
        self.answers: dict[str, int] = {}
        self.held = 0  # connections the server accepted (101 Switching Protocols)
        self.sockets: list[socket.socket] = []
        self.workers: list[threading.Thread] = []

    def _attempt(self, number: int) -> None:
        websocket = number % 2 == 0
        query = "EIO=4&transport=websocket" if websocket else "EIO=4&transport=polling"
        request = f"GET /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if websocket:
            key = base64.b64encode(os.urandom(16)).decode()
            request += (f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n")
        status, connection = "error", None
        try:
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            connection.sendall((request + "\r\n").encode())
            reply = connection.recv(4096).decode(errors="replace")
            status = reply.split(" ", 2)[1] if reply.startswith("HTTP/") else "none"
        except OSError as exc:
            status = type(exc).__name__
        with self.lock:
            self.opened += 1
            self.answers[status] = self.answers.get(status, 0) + 1
            self.held += status == "101"
            if connection is not None:
                self.sockets.append(connection)  # our end stays open until the rush is over

    def _work(self, numbers: range) -> None:
        for number in numbers:
            self._attempt(number)

    def start(self) -> None:
        self.opened, self.held, self.answers, self.sockets = 0, 0, {}, []
        share = -(-self.connections // self.threads)
        self.workers = [threading.Thread(target=self._work, daemon=True,
                                         args=(range(t * share, min(self.connections, (t + 1) * share)),))
                        for t in range(self.threads)]
        self.began = time.perf_counter()
        for worker in self.workers:
            worker.start()

    def opened_all(self) -> None:
        for worker in self.workers:
            worker.join(120)
        self.seconds = time.perf_counter() - self.began

    def finish(self) -> None:
        self.opened_all()
        with self.lock:
            for connection in self.sockets:
                connection.close()
            self.sockets = []


def bench(database: str, server_kind: str, connections: int, attackers: int, rush_scans: int, pace: float,
          threads: int, rounds: int) -> dict:
    with ExitStack() as stack:
        stand = KioskStand(stack, database, server_kind, KIOSKS * rush_scans * rounds * 2, threads)
        strangers = Strangers(stand.server.port, connections, attackers)
        print(f"  {KIOSKS} kiosks at a rush (each every {pace} s); {connections} stranger connections a round, "
              f"opened by {attackers} threads; {os.cpu_count()} cores shared by all")
        @contextmanager
        def strangers_knocking():
            strangers.start()
            yield
            strangers.finish()
            print(f"    strangers: {strangers.opened} connections opened in {strangers.seconds:.1f} s at the "
                  f"rush's start, answers {strangers.answers}, held {strangers.held}")

        base, loaded, ratio = stand.rush_alone_and_loaded(rounds, rush_scans, pace, strangers_knocking,
                                                          "with the strangers")
        print(f"  RATIO scan p99 with/without strangers: {ratio:.2f} (goal <= 1.5); "
              f"p99 {loaded['p99_ms']:.1f} ms vs {base['p99_ms']:.1f} ms; p50 {loaded['p50_ms']:.1f} vs "
              f"{base['p50_ms']:.1f} ms; {strangers.opened} stranger connections, {strangers.held} held; "
              f"{os.cpu_count()} cores")
        return {"database": database, "server": server_kind, "ratio": ratio, "alone": base, "attacked": loaded,
                "opened": strangers.opened, "held": strangers.held, "cores": os.cpu_count(),
                "ok": ratio <= 1.5 and strangers.held == 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--server", choices=["gunicorn", "serve"], default="gunicorn")
    parser.add_argument("--connections", type=int, default=1000, help="stranger connections in a round")
    parser.add_argument("--attackers", type=int, default=50, help="threads opening them")
    parser.add_argument("--rush-scans", type=int, default=30, help="scans per kiosk in each rush")
    parser.add_argument("--pace", type=float, default=0.5, help="mean seconds between one kiosk's scans")
    parser.add_argument("--threads", type=int, default=128, help="gunicorn threads")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = bench(args.database, args.server, args.connections, args.attackers, args.rush_scans, args.pace,
                   args.threads, args.rounds)
    print(f"\nsummary: {result['database']} {result['server']}: scan p99 {result['attacked']['p99_ms']:.1f} ms with "
          f"{result['opened']} stranger connections vs {result['alone']['p99_ms']:.1f} ms without = "
          f"{result['ratio']:.2f}x; {result['held']} held; {'MEETS' if result['ok'] else 'MISSES'} the goal "
          f"({result['cores']} cores)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The scan writer: one thread a process writes the kiosks' scans, several to a transaction when they
arrive together; every kiosk still gets its answer only once its scan is committed.

Twenty kiosks scanning at once used to mean twenty request threads queueing for the database's one
writer, each with its own transaction: most of a scan's cost was the queue (threads woken and put
back to sleep, a BEGIN and COMMIT each). The writer knows nothing of what a scan decides: it is
given two functions (iop/clinic/scan.py),

- `together(items)`: the items written and committed in one transaction, their answers in order;
  None when one of them met what only a race produces (the transaction was rolled back);
- `alone(item)`: one item in a transaction of its own, with the retries it needs;

and it writes a batch together, or (a race, or the same item twice in it) each alone, so no
answer depends on another's. An exception from either (an unreachable database) is raised in
every waiting request, which answers the kiosk try_again (it keeps the scan and sends it again).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Waiting(Generic[Item, Answer]):
    """An item waiting for the writer; its request waits by acquiring `done`. (A plain lock: a
    threading.Event, made and waited on for every scan, cost a few percent of the server's time.)"""

    __slots__ = ("item", "answer", "error", "done")

    def __init__(self, item: Item):
        self.item = item
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()


class ScanWriter(Generic[Item, Answer]):
    """Per app: one thread writing the waiting items in arrival order, up to BATCH a transaction
    (measured on PostgreSQL too: a second or third writer thread only added contention)."""

    BATCH = 32
    IDLE_SECONDS = 2.0  # the thread ends after this long without scans (started again on demand)
    # Under load (the last batch had company), wait this long for more scans before writing: the
    # kiosks just answered are sending their next scans, and one transaction for them all costs
    # less than two (PostgreSQL's commit_delay, for the same reason). A lone scan never waits.
    LINGER_SECONDS = 0.002

    def __init__(self, app, together: Callable[[list[Item]], list[Answer] | None],
                 alone: Callable[[Item], Answer], key: Callable[[Item], Hashable]):
        self.app = app
        self.together, self.alone, self.key = together, alone, key
        self.lock = threading.Condition()
        self.pending: deque[Waiting] = deque()
        self.running = False

    def write(self, item: Item) -> Answer:
        """The item's answer once it is committed (from the writer's thread); its error raised here."""
        waiting = Waiting(item)
        with self.lock:
            self.pending.append(waiting)
            if self.running:
                self.lock.notify()
            else:
                self.running = True
                threading.Thread(target=self._run, name="iop-scan-writer", daemon=True).start()
        waiting.done.acquire()
        if waiting.error is not None:
            raise waiting.error
        return waiting.answer

    def _run(self) -> None:
        last = 0
        while True:
            with self.lock:
                if not self.pending:
                    self.lock.wait(self.IDLE_SECONDS)
                if not self.pending:
                    self.running = False
                    return
                if last > 1:
                    until = time.monotonic() + self.LINGER_SECONDS
                    while len(self.pending) < self.BATCH and (left := until - time.monotonic()) > 0:
                        self.lock.wait(left)
                batch = [self.pending.popleft() for _ in range(min(self.BATCH, len(self.pending)))]
                last = len(batch)
            try:
                with self.app.app_context():
                    self.write_batch(batch)
            except BaseException as exc:  # noqa: BLE001  (never leave a kiosk waiting)
                log.exception("scan writer failed")
                for waiting in batch:
                    if waiting.answer is None and waiting.error is None:
                        waiting.error = exc
            finally:
                for waiting in batch:
                    waiting.done.release()

    def write_batch(self, batch: list[Waiting]) -> None:
        """Write the batch (in the caller's app context) and set each one's answer or error."""
        items = [waiting.item for waiting in batch]
        if len(items) > 1 and len({self.key(item) for item in items}) == len(items):
            try:
                answers = self.together(items)
            except Exception as exc:  # noqa: BLE001  (unreachable database: every kiosk is told to retry)
                for waiting in batch:
                    waiting.error = exc
                return
            if answers is not None:
                for waiting, answer in zip(batch, answers):
                    waiting.answer = answer
                return
            # rolled back (a race): each again, alone (an item sent twice meanwhile goes alone too)
        for waiting in batch:
            try:
                waiting.answer = self.alone(waiting.item)
            except Exception as exc:  # noqa: BLE001  (told to the item's own request)
                waiting.error = exc


_LOCK = threading.Lock()


def writer(app, name: str, together, alone, key) -> ScanWriter:
    """The app's writer called `name`, made on first use."""
    found = app.extensions.get(name)
    if found is None:
        with _LOCK:
            found = app.extensions.setdefault(name, ScanWriter(app, together, alone, key))
    return found

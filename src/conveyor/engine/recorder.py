"""Batched writes of a Run's state changes and Events.

Jobs change state from many threads; writing each change in its own
transaction would put a database round-trip on the critical path of every
job. The Recorder queues changes and a background thread writes them in one
transaction per batch. `flush()` waits until everything queued is stored.
Once the writes pause for `quiet_s`, it checkpoints the store's write-ahead
log, so that closing the store at the end of a Run has little left to copy.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import StoreError
from conveyor.core.values import frozen
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database


@frozen
class Change:
    """One JobRun update and the Events that record it; `then`, done once they are stored
    (such as removing what they make stale), not when they could not be."""

    update: run_store.JobUpdate | None
    events: tuple[NewEvent, ...] = ()
    then: Callable[[], None] | None = None


class Recorder:
    """Writes queued Changes in batches from a thread of its own."""

    def __init__(self, db: Database, *, interval_s: float = 0.05, quiet_s: float = 0.02) -> None:
        self._db = db
        self._interval_s = interval_s
        self._quiet_s = quiet_s
        self._queue: list[Change] = []
        self._cond = threading.Condition()
        self._written = 0
        self._queued = 0
        self._closed = False
        self._flushing = 0
        self._error: BaseException | None = None
        # seq -> hash of every Event this Recorder appended, once committed.
        self.appended: dict[int, str] = {}
        self._thread = threading.Thread(target=self._loop, name="conveyor-recorder", daemon=True)
        self._thread.start()

    def record(self, change: Change) -> None:
        with self._cond:
            self._raise_if_failed()
            self._queue.append(change)
            self._queued += 1
            if len(self._queue) == 1:
                # Only the first change of a batch wakes the writer; the rest
                # ride along, so recording costs no thread switch.
                self._cond.notify_all()

    def flush(self) -> None:
        """Block until every Change recorded so far is stored."""
        with self._cond:
            target = self._queued
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._written < target and self._error is None:
                    self._cond.wait()
            finally:
                self._flushing -= 1
            self._raise_if_failed()

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError(f"cannot record the run: {self._error}") from self._error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                # Let a burst accumulate, unless someone is waiting on a flush.
                self._cond.wait_for(lambda: self._flushing > 0 or self._closed, self._interval_s)
                batch, self._queue = self._queue, []
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - surfaced on the run's thread
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
                # Tidy the store's log once the writes pause (between the bursts of a Run,
                # while its jobs run), so that its end finds little to copy.
                quiet = not self._cond.wait_for(self._busy, self._quiet_s)
            if quiet:
                with contextlib.suppress(Exception):  # only tidying: closing the store redoes it
                    self._db.checkpoint()

    def _busy(self) -> bool:
        """Whether there is more to write, or someone waits on the writer (under the lock)."""
        return bool(self._queue or self._flushing or self._closed)

    def _write(self, batch: list[Change]) -> None:
        with self._db.write() as tx:
            for change in batch:
                if change.update is not None:
                    run_store.apply_job_update(tx, change.update)
            appended = event_log.append(tx, [e for change in batch for e in change.events])
        self.appended.update((event.seq, event.hash) for event in appended)
        for change in batch:
            if change.then is not None:
                with contextlib.suppress(Exception):  # only tidying: what is stored stands
                    change.then()

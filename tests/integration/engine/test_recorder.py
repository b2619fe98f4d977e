"""Batched writes of JobRun changes and Events, from many threads, on real SQLite."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import StoreError
from conveyor.core.records import RunId
from conveyor.engine.recorder import Change, Recorder
from conveyor.engine.service import open_store
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database, Transaction

from .harness import Harness

pytestmark = pytest.mark.timeout(60)

THREADS = 8
PER_THREAD = 25


@dataclass
class CountingDatabase:
    """A real database that counts its write transactions."""

    inner: Database
    writes: int = 0
    checkpoints: int = 0
    broken: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dialect(self) -> str:
        return self.inner.dialect

    @property
    def url(self) -> str:
        return self.inner.url

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self.inner.read() as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._lock:
            self.writes += 1
        if self.broken:
            raise StoreError("the disk is full")
        with self.inner.write() as tx:
            yield tx

    def checkpoint(self) -> None:
        with self._lock:
            self.checkpoints += 1
        self.inner.checkpoint()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def store(harness: Harness) -> Iterator[tuple[CountingDatabase, RunId, dict[str, int]]]:
    db = open_store(harness.workspace)
    names = [f"job{i}" for i in range(THREADS)]
    run_id, job_ids = run_store.create_run(
        db,
        run=run_store.NewRun(
            project="p",
            pipeline_path="conveyor.yaml",
            spec_digest="sha256:" + "0" * 64,
            workspace=str(harness.root),
            branch=None,
            commit_sha=None,
            event="local",
            actor="tester",
            targets=(),
            options={},
            host="host",
            pid=1,
            created_at=0.0,
        ),
        jobs=[run_store.NewJob(i, name, name, (), False) for i, name in enumerate(names)],
    )
    counting = CountingDatabase(db)
    yield counting, run_id, job_ids
    db.close()


def change(job_id: int, run_id: RunId, job: str, n: int) -> Change:
    return Change(
        run_store.JobUpdate(job_id=job_id, status="running", attempts=n + 1),
        (NewEvent("job.progress", f"run/{run_id}/job/{job}", "tester", float(n), {"n": n}),),
    )


def record_from_threads(recorder: Recorder, run_id: RunId, job_ids: dict[str, int]) -> None:
    def work(job: str) -> None:
        for n in range(PER_THREAD):
            recorder.record(change(job_ids[job], run_id, job, n))

    threads = [threading.Thread(target=work, args=(job,)) for job in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def progress_events(db: Database, run_id: RunId) -> list[tuple[str, object]]:
    events = event_log.for_subject(db, f"run/{run_id}", limit=10_000)
    return [(e.subject.rsplit("/", 1)[-1], e.data["n"]) for e in events]


def test_changes_from_many_threads_are_all_written_after_flush(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=0.01)
    try:
        record_from_threads(recorder, run_id, job_ids)
        recorder.flush()
        events = progress_events(db, run_id)
        assert len(events) == THREADS * PER_THREAD
        for job in job_ids:
            # Each thread's changes keep their order.
            assert [n for name, n in events if name == job] == list(range(PER_THREAD))
        jobs = run_store.get_run(db, run_id=run_id).jobs
        assert {job.attempts for job in jobs} == {PER_THREAD}
    finally:
        recorder.close()


def test_close_writes_everything_recorded(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=0.01)
    record_from_threads(recorder, run_id, job_ids)
    recorder.close()
    assert len(progress_events(db, run_id)) == THREADS * PER_THREAD


def test_a_burst_is_written_in_one_transaction(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    # A long interval: the batch is cut by the flush, not by the clock.
    recorder = Recorder(db, interval_s=60)
    try:
        record_from_threads(recorder, run_id, job_ids)
        recorder.flush()
        assert db.writes == 1
        assert len(progress_events(db, run_id)) == THREADS * PER_THREAD
    finally:
        recorder.close()


def test_the_event_chain_stays_valid_across_batches(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=0.001)
    try:
        for n in range(3):
            record_from_threads(recorder, run_id, job_ids)
            recorder.flush()
            assert db.writes >= n + 1
    finally:
        recorder.close()
    stored = list(event_log.iter_all(db))
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    for previous, current in itertools.pairwise(stored):
        assert current.prev_hash == previous.hash


def test_a_failed_write_is_raised_on_the_next_flush_and_record(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    db.broken = True
    recorder = Recorder(db, interval_s=0.001)
    try:
        recorder.record(change(job_ids["job0"], run_id, "job0", 0))
        with pytest.raises(StoreError, match="cannot record the run: the disk is full"):
            recorder.flush()
        with pytest.raises(StoreError, match="the disk is full"):
            recorder.record(change(job_ids["job0"], run_id, "job0", 1))
    finally:
        with pytest.raises(StoreError):
            recorder.close()


def test_once_quiet_the_recorder_tidies_the_stores_log(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=0.001)
    try:
        recorder.record(change(job_ids["job0"], run_id, "job0", 0))
        give_up = time.monotonic() + 10
        while db.checkpoints == 0 and time.monotonic() < give_up:
            time.sleep(0.005)
        assert db.checkpoints == 1
        assert db.writes == 1
    finally:
        recorder.close()


def test_a_steady_stream_of_changes_is_not_interrupted_by_tidying(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=0.001, quiet_s=2.0)
    try:
        for n in range(30):  # a change every 10 ms: never a pause of 2 s
            recorder.record(change(job_ids["job0"], run_id, "job0", n))
            time.sleep(0.01)
        recorder.flush()
        assert db.writes > 1
        assert db.checkpoints == 0
    finally:
        recorder.close()


def test_a_flush_is_not_held_up_by_tidying(
    store: tuple[CountingDatabase, RunId, dict[str, int]],
) -> None:
    # The end of a Run flushes and goes on to record it: no checkpoint in its way.
    db, run_id, job_ids = store
    recorder = Recorder(db, interval_s=60)
    try:
        record_from_threads(recorder, run_id, job_ids)
        recorder.flush()
    finally:
        recorder.close()
    assert (db.writes, db.checkpoints) == (1, 0)

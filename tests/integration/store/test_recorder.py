"""The Recorder's batched writes on SQLite and PostgreSQL: durability and surfaced errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conveyor.audit.chain import NewEvent, verify
from conveyor.core.errors import StoreError
from conveyor.core.records import OutputRecord, RunId
from conveyor.engine.recorder import Change, Recorder
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database, open_database

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _finished(job_id: int, name: str, n: int) -> Change:
    return Change(
        run_store.JobUpdate(job_id, status="success", exit_code=0, duration_s=n + 0.5),
        (NewEvent("job.finished", f"run/1/job/{name}", "ada", T0 + n, {"job": name}),),
    )


def _broken() -> Change:
    """A change the database refuses: an output of a job that does not exist."""
    return Change(
        run_store.JobUpdate(10**6, outputs=(OutputRecord("a", "sha256:a", 1),)),
        (NewEvent("job.finished", "run/1/job/ghost", "ada", T0, {}),),
    )


def test_flush_makes_every_change_recorded_from_many_threads_durable(
    db: Database, database_url: str, make_run: MakeRun
) -> None:
    names = [f"job-{i}" for i in range(12)]
    run_id, ids = make_run(jobs=names)
    recorder = Recorder(db, interval_s=30.0)
    try:
        threads = [
            threading.Thread(target=recorder.record, args=(_finished(ids[name], name, n),))
            for n, name in enumerate(names)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        started = time.monotonic()

        recorder.flush()

        # A flush does not wait out the batching interval.
        assert time.monotonic() - started < 10
        other = open_database(database_url)
        try:
            run = run_store.get_run(other, run_id=run_id)
            stored = list(event_log.iter_all(other))
        finally:
            other.close()
    finally:
        recorder.close()

    assert [(job.name, job.status, job.exit_code) for job in run.jobs] == [
        (name, "success", 0) for name in names
    ]
    assert sorted(e.decode().data["job"] for e in stored) == sorted(names)  # type: ignore[type-var]
    assert verify(stored) is None


def test_close_stores_what_is_still_queued(db: Database, make_run: MakeRun) -> None:
    run_id, ids = make_run(jobs=("build",))
    recorder = Recorder(db, interval_s=30.0)

    recorder.record(_finished(ids["build"], "build", 0))
    recorder.record(Change(None, (NewEvent("run.finished", f"run/{run_id}", "ada", T0, {}),)))
    recorder.close()

    assert run_store.get_run(db, run_id=run_id).jobs[0].status == "success"
    assert [e.kind for e in event_log.iter_all(db)] == ["job.finished", "run.finished"]


def test_a_database_error_surfaces_as_store_error_on_the_next_flush_and_record(
    db: Database, make_run: MakeRun
) -> None:
    run_id, ids = make_run(jobs=("build",))
    recorder = Recorder(db, interval_s=30.0)
    recorder.record(_finished(ids["build"], "build", 0))
    recorder.record(_broken())

    with pytest.raises(StoreError, match="cannot record the run") as raised:
        recorder.flush()
    with pytest.raises(StoreError):
        recorder.record(_finished(ids["build"], "build", 1))
    with pytest.raises(StoreError):
        recorder.close()

    assert raised.value.__cause__ is not None
    # The batch was one transaction: nothing of it was stored.
    assert run_store.get_run(db, run_id=run_id).jobs[0].status == "pending"
    assert list(event_log.iter_all(db)) == []


def test_a_database_error_surfaces_on_a_later_record_without_a_flush(
    db: Database, make_run: MakeRun
) -> None:
    make_run(jobs=("build",))
    recorder = Recorder(db, interval_s=0.001)
    recorder.record(_broken())

    deadline = time.monotonic() + 20
    with pytest.raises(StoreError, match="cannot record the run"):
        while time.monotonic() < deadline:
            recorder.record(Change(None))
            time.sleep(0.005)
    with pytest.raises(StoreError):
        recorder.close()

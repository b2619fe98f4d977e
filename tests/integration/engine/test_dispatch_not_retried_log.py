"""The dispatch service, with the server's content store, on SQLite and on the real
PostgreSQL: a JobRun whose retry is not to come, the Run halted, gets its last attempt's
log ending as a local job's does, stored as a new blob; the attempt keeps its own."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.core.masking import Masker
from conveyor.engine.dispatch import DispatchService, LeaseSweeper
from conveyor.engine.logs import JobLog, decompress
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld
from .test_dispatch import FLAKY_BESIDE_BROKEN, both_running

LINES = (b"compiling\n", b"error: the flaky test failed\n")


@pytest.fixture
def cas(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "cas")


@pytest.fixture
def world(db: Database, cas: ContentStore) -> QueueWorld:  # noqa: F811 - the fixture above
    world = QueueWorld(db)
    world.dispatch = DispatchService(db=db, clock=world.clock, cas=cas)
    return world


def local_log(tmp_path: Path, *chunks: bytes, note: str | None = None) -> bytes:
    """The blob a local job's log would be: `chunks` from the job, then Conveyor's `note`."""
    log = JobLog(tmp_path / "live" / "job.log", Masker())
    for chunk in chunks:
        log.feed(chunk)
    if note is not None:
        log.note(note)
    log.close()
    blob = log.compressed().read()
    log.discard()
    return blob


def test_the_log_of_a_job_not_retried_is_the_blob_a_local_job_would_store(
    world: QueueWorld, cas: ContentStore, tmp_path: Path
) -> None:
    run, agent, flaky, broken = both_running(world)
    world.finish(broken, agent, "failed", exit_code=2)
    sent = cas.put_bytes(local_log(tmp_path, *LINES)).digest

    world.finish(flaky, agent, "failed", exit_code=1, reason="exited with code 1", log_digest=sent)

    job = world.job(run, "flaky")
    assert job.reason == "exited with code 1; not retried: 'broken' failed"
    assert job.log_digest is not None
    expected = local_log(tmp_path, *LINES, note="--- not retried: 'broken' failed ---")
    assert cas.read_bytes(job.log_digest) == expected
    assert world.kept_log(job) == sent
    assert decompress(cas.read_bytes(sent)) == b"".join(LINES).decode()


@pytest.mark.parametrize("handed_back", ["before the halt", "after the halt"])
def test_a_job_handed_back_after_a_failed_attempt_ends_with_that_attempts_log_and_the_note(
    world: QueueWorld, cas: ContentStore, tmp_path: Path, handed_back: str
) -> None:
    run, agent, flaky, broken = both_running(world)
    sent = cas.put_bytes(local_log(tmp_path, *LINES)).digest
    world.finish(flaky, agent, "failed", exit_code=1, reason="exited with code 1", log_digest=sent)
    world.clock.advance(30)
    again = world.claim(agent)

    if handed_back == "before the halt":
        assert world.dispatch.hand_back(again.attempt_id, agent_id=agent)
    world.finish(broken, agent, "failed", exit_code=2)
    if handed_back == "after the halt":
        assert world.dispatch.hand_back(again.attempt_id, agent_id=agent)

    job = world.job(run, "flaky")
    assert (job.status, job.attempts) == ("failed", 2)
    assert job.log_digest is not None and job.log_digest != sent
    expected = b"".join(LINES).decode() + "--- not retried: 'broken' failed ---\n"
    assert decompress(cas.read_bytes(job.log_digest)) == expected
    assert world.kept_log(job) == sent


def test_a_log_whose_last_line_is_unfinished_gets_the_note_on_a_line_of_its_own(
    world: QueueWorld, cas: ContentStore, tmp_path: Path
) -> None:
    run, agent, flaky, broken = both_running(world)
    world.finish(broken, agent, "failed", exit_code=2)
    sent = cas.put_bytes(gzip.compress(b"50% done", mtime=0)).digest

    world.finish(flaky, agent, "failed", exit_code=1, log_digest=sent)

    job = world.job(run, "flaky")
    assert job.log_digest is not None
    expected = local_log(tmp_path, b"50% done", note="--- not retried: 'broken' failed ---")
    assert cas.read_bytes(job.log_digest) == expected


def test_a_log_no_longer_in_the_store_is_left_as_its_runner_named_it(
    world: QueueWorld, cas: ContentStore
) -> None:
    run, agent, flaky, broken = both_running(world)
    pruned = "sha256:" + "3" * 64
    world.finish(flaky, agent, "failed", exit_code=1, log_digest=pruned)

    world.finish(broken, agent, "failed", exit_code=2)

    job = world.job(run, "flaky")
    assert (job.status, job.log_digest) == ("failed", pruned)  # `conveyor logs` says: pruned
    assert job.reason == "not retried: 'broken' failed"
    assert list(cas.iter_blobs()) == []


def test_a_stored_log_that_is_not_gzip_is_left_as_its_runner_stored_it(
    world: QueueWorld, cas: ContentStore
) -> None:
    run, agent, flaky, broken = both_running(world)
    sent = cas.put_bytes(b"plain text, not gzip\n").digest
    world.finish(flaky, agent, "failed", exit_code=1, log_digest=sent)

    world.finish(broken, agent, "failed", exit_code=2)  # the halt is not held up by it

    job = world.job(run, "flaky")
    assert (job.status, job.log_digest) == ("failed", sent)
    assert world.run(run).status == "failed"


def test_a_job_whose_runner_was_lost_before_storing_a_log_gets_no_log(
    world: QueueWorld, cas: ContentStore
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN)
    gone, agent = world.agent("gone"), world.agent("a")
    world.claim(gone)
    world.finish(world.claim(agent), agent, "failed", exit_code=2)
    world.clock.advance(31)

    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1

    job = world.job(run, "flaky")
    assert (job.status, job.log_digest) == ("runner_lost", None)
    assert job.reason == (
        "runner lost: its lease ran out without a heartbeat; not retried: 'broken' failed"
    )
    assert list(cas.iter_blobs()) == []

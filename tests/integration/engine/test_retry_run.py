"""Retrying a finished remote Run's failed jobs, on SQLite and on the real PostgreSQL: a new
Run where what succeeded is carried over as cached with its outputs and the rest runs again."""

from __future__ import annotations

import pytest

from conveyor.core.errors import Conflict, NotFound, UsageError
from conveyor.core.records import OutputRecord, RunId
from conveyor.engine.dispatch import LeaseSweeper
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld, new_run

PIPELINE = """\
version: 1
jobs:
  build: {run: make, outputs: [dist/app]}
  lint: {run: make lint}
  test: {run: make test, needs: build}
  deploy: {run: ./deploy, needs: test}
"""
OUTPUT = OutputRecord("dist/app", "sha256:" + "1" * 64, 3)


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    return QueueWorld(db)


def failed_run(world: QueueWorld) -> RunId:
    """PIPELINE run to its end: build and lint succeed, test fails, deploy is skipped."""
    run = world.submit(PIPELINE, keep_going=True)
    agent = world.agent("a", concurrency=2)
    for _ in range(2):
        claim = world.claim(agent)
        outputs = (OUTPUT,) if claim.job.name == "build" else ()
        world.finish(claim, agent, exit_code=0, outputs=outputs, log_digest="sha256:" + "2" * 64)
    world.finish(world.claim(agent), agent, "failed", exit_code=1, reason="exited with code 1")
    assert world.statuses(run)["deploy"] == "skipped"
    return run


def run_count(database: Database) -> int:
    with database.read() as tx:
        return int(tx.execute("SELECT count(*) FROM runs")[0][0])


def test_a_retry_carries_successes_over_as_cached_and_runs_the_failed_jobs_again(
    world: QueueWorld,
) -> None:
    old = failed_run(world)
    world.clock.advance(60)

    new = world.dispatch.retry(old, actor="grace")

    assert world.statuses(new) == {
        "build": "cached",
        "lint": "cached",
        "test": "queued",
        "deploy": "pending",
    }
    jobs = {job.name: job for job in world.run(new).jobs}
    assert jobs["build"].outputs == (OUTPUT,) and jobs["build"].cached
    assert jobs["build"].log_digest == "sha256:" + "2" * 64
    assert jobs["build"].reason == f"carried over from run {old}"
    assert world.run(new).actor == "grace" and world.run(old).status == "failed"
    agent = world.agent("b")
    test = world.claim(agent)
    assert test.job.name == "test" and test.upstream == (OUTPUT,)  # the carried output
    world.finish(test, agent)
    world.finish(world.claim(agent), agent)
    assert world.run(new).status == "success"


def test_a_retry_links_the_two_runs_in_their_events(world: QueueWorld) -> None:
    old = failed_run(world)

    new = world.dispatch.retry(old, actor="grace")

    started = event_log.for_subject(world.db, f"run/{new}", limit=100)[0]
    assert (started.kind, started.data["retry_of"], started.actor) == ("run.started", old, "grace")
    retried = [
        e
        for e in event_log.for_subject(world.db, f"run/{old}", limit=100)
        if e.kind == "run.retried"
    ]
    assert [(e.data["run"], e.data["retried"]) for e in retried] == [(new, ["test", "deploy"])]
    assert world.kinds(new, "build") == ["job.cached"]


def test_jobs_that_lost_their_runner_or_were_canceled_run_again(world: QueueWorld) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: 'true'}\n  b: {run: 'true'}\n")
    agent = world.agent("a", concurrency=2)
    world.claim(agent)
    world.claim(agent)
    world.clock.advance(31)
    LeaseSweeper(dispatch=world.dispatch).run_once()
    assert world.statuses(run) == {"a": "runner_lost", "b": "runner_lost"}

    new = world.dispatch.retry(run, actor="grace")
    assert world.statuses(new) == {"a": "queued", "b": "queued"}
    world.dispatch.cancel(new, actor="grace")

    again = world.dispatch.retry(new, actor="grace")
    assert world.statuses(again) == {"a": "queued", "b": "queued"}


def test_a_job_its_condition_skipped_stays_skipped_in_the_retry(world: QueueWorld) -> None:
    run = world.submit(
        "version: 1\njobs:\n  a: {run: 'true'}\n  docs: {run: 'true'}\n",
        skipped={"docs": "condition 'branch == \"docs\"' is false"},
    )
    agent = world.agent("a")
    world.finish(world.claim(agent), agent, "failed", exit_code=2)

    new = world.dispatch.retry(run, actor="grace")

    assert world.statuses(new) == {"a": "queued", "docs": "skipped"}
    assert world.reasons(new)["docs"] == "condition 'branch == \"docs\"' is false"


def test_a_run_still_running_is_not_retried_and_nothing_is_stored(world: QueueWorld) -> None:
    run = world.submit(PIPELINE)
    before = run_count(world.db)

    with pytest.raises(Conflict, match=f"run {run} is still running; wait for it to end"):
        world.dispatch.retry(run, actor="grace")

    assert run_count(world.db) == before
    assert "run.retried" not in world.kinds(run)


def test_a_run_where_nothing_failed_is_not_retried(world: QueueWorld) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: 'true'}\n")
    agent = world.agent("a")
    world.finish(world.claim(agent), agent)
    before = run_count(world.db)

    with pytest.raises(Conflict, match="has no failed job to retry"):
        world.dispatch.retry(run, actor="grace")

    assert run_count(world.db) == before


def test_a_run_that_ran_on_one_machine_is_not_retried_on_runners(world: QueueWorld) -> None:
    run, _ = run_store.create_run(
        world.db,
        run=new_run(),
        jobs=[run_store.NewJob(0, "a", "a", (), False, status="failed")],
    )
    with world.db.write() as tx:
        tx.execute("UPDATE runs SET status = 'failed' WHERE id = :id", {"id": run})

    with pytest.raises(UsageError, match=r"ran on one machine.*`conveyor run`"):
        world.dispatch.retry(run, actor="grace")


def test_retrying_an_unknown_run_says_there_is_none(world: QueueWorld) -> None:
    with pytest.raises(NotFound, match="there is no run 999"):
        world.dispatch.retry(RunId(999), actor="grace")

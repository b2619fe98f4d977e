"""Agent loops running real subprocesses against the dispatch service: labels, outputs through
the CAS, a killed runner's job retried by another, hand-back on stop, and cancel."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.core.records import RunId
from conveyor.engine.agent_loop import AgentLoop, InProcessSource
from conveyor.engine.dispatch import LeaseSweeper
from conveyor.engine.dispatch_rules import Source
from conveyor.executors.local import LocalExecutor
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .harness import UnreadableOutputs
from .queue_world import QueueWorld

Start = Callable[..., AgentLoop]


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    return QueueWorld(db)


@pytest.fixture
def cas(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "cas")


@pytest.fixture
def start(world: QueueWorld, cas: ContentStore, tmp_path: Path) -> Iterator[Start]:
    """Registers a runner and starts its loop on a thread; every loop is killed afterwards."""
    loops: list[tuple[AgentLoop, threading.Thread]] = []

    def make(name: str, labels: tuple[str, ...] = (), *, go: bool = True) -> AgentLoop:
        agent = world.agent(name, labels)
        loop = AgentLoop(
            source=InProcessSource(world.dispatch, agent),
            executor=LocalExecutor(kill_grace_s=1.0),
            cas=cas,
            work_dir=tmp_path / "agents" / name,
            heartbeat_s=0.05,
            poll_s=0.02,
        )
        thread = threading.Thread(target=loop.run, name=f"loop-{name}")
        loops.append((loop, thread))
        if go:
            thread.start()
        return loop

    yield make
    for loop, thread in loops:
        loop.kill()
        if thread.is_alive():
            thread.join(10)
        assert not loop.errors, loop.errors


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def finished(world: QueueWorld, run: RunId) -> Callable[[], bool]:
    return lambda: world.run(run).status != "running"


def checkout(tmp_path: Path) -> Source:
    src = tmp_path / "src"
    src.mkdir()
    (src / "input.txt").write_text("hello\n")
    return Source(path=str(src))


def test_two_runners_with_different_labels_run_a_pipeline_between_them(
    world: QueueWorld, start: Start, cas: ContentStore, tmp_path: Path
) -> None:
    run = world.submit(
        """\
        version: 1
        jobs:
          build:
            run: mkdir -p dist && tr a-z A-Z < input.txt > dist/app && echo built
            outputs: [dist/app]
            runs_on: linux
          train:
            needs: build
            run: cat dist/app > model.txt && echo trained
            outputs: [model.txt]
            runs_on: [cuda]
        """,
        source=checkout(tmp_path),
    )
    linux = start("linux-1", ("linux",))
    cuda = start("cuda-1", ("cuda",))

    wait_for(finished(world, run), "the run finished")

    record = world.run(run)
    assert record.status == "success", record
    jobs = {job.name: job for job in record.jobs}
    assert cas.read_bytes(jobs["train"].outputs[0].digest) == b"HELLO\n"
    assert b"trained" in gzip.decompress(cas.read_bytes(jobs["train"].log_digest or ""))
    agents = [a.agent_id for a in world.attempts(run)]
    assert len(set(agents)) == 2  # each job went to the runner with its label
    wait_for(lambda: linux.running == cuda.running == [], "both runners are idle")


def test_a_killed_runners_job_is_retried_by_another_after_its_lease(
    world: QueueWorld, start: Start, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt-started"
    run = world.submit(
        f"""\
        version: 1
        jobs:
          slow:
            run: if [ -e {marker} ]; then echo second; else touch {marker}; sleep 30; fi
            retry: 1
        """,
        source=checkout(tmp_path),
    )
    doomed = start("doomed")
    wait_for(marker.exists, "the first attempt started")

    doomed.kill()
    doomed.join(10)
    world.clock.advance(31)
    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1
    start("rescuer")

    wait_for(finished(world, run), "the run finished")
    assert world.run(run).status == "success"
    attempts = world.attempts(run)
    assert [a.status for a in attempts] == ["runner_lost", "success"]
    assert attempts[0].agent_id != attempts[1].agent_id


def test_a_stopping_runner_hands_its_job_back_to_be_taken_at_once(
    world: QueueWorld, start: Start, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run = world.submit(
        f"version: 1\njobs:\n  a: {{run: 'if [ -e {marker} ]; then exit 0; fi; "
        f"touch {marker}; sleep 30'}}\n",
        source=checkout(tmp_path),
    )
    leaving = start("leaving")
    wait_for(marker.exists, "the job started")

    leaving.stop()
    leaving.join(10)
    start("staying")

    wait_for(finished(world, run), "the run finished")
    assert [a.status for a in world.attempts(run)] == ["handed_back", "success"]


def test_a_canceled_run_stops_the_job_at_its_next_heartbeat(
    world: QueueWorld, start: Start, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    run = world.submit(
        f"version: 1\njobs:\n  a: {{run: 'touch {marker}; sleep 30'}}\n"
        "  b: {run: 'true', needs: a}\n",
        source=checkout(tmp_path),
    )
    start("runner")
    wait_for(marker.exists, "the job started")

    world.dispatch.cancel(run, actor="ada")

    wait_for(finished(world, run), "the run finished", timeout_s=10)
    assert world.statuses(run) == {"a": "canceled", "b": "canceled"}
    assert world.run(run).status == "canceled"


def test_an_output_the_runner_cannot_read_fails_the_job_not_the_runner(
    world: QueueWorld, tmp_path: Path
) -> None:
    run = world.submit(
        "version: 1\njobs:\n  build: {run: 'echo x > out.bin', outputs: [out.bin]}\n",
        source=checkout(tmp_path),
    )
    loop = AgentLoop(
        source=InProcessSource(world.dispatch, world.agent("runner")),
        executor=LocalExecutor(kill_grace_s=1.0),
        cas=UnreadableOutputs(tmp_path / "cas"),
        work_dir=tmp_path / "agents" / "runner",
        heartbeat_s=0.05,
        poll_s=0.02,
    )
    thread = threading.Thread(target=loop.run, name="loop-runner")
    thread.start()
    try:
        wait_for(finished(world, run), "the run finished")
    finally:
        loop.kill()
        thread.join(10)

    (job,) = world.run(run).jobs
    assert job.status == "failed"
    assert job.reason == "output out.bin cannot be read: Permission denied"
    assert not loop.errors

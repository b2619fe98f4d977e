"""Telling a running Run from one whose process died, through its lock file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.core.records import RunId
from conveyor.engine.locks import RunLock, is_abandoned, lock_path
from conveyor.engine.service import RunService
from conveyor.store import events as event_log
from conveyor.store import runs as run_store

from .harness import Harness

pytestmark = pytest.mark.timeout(60)

RUN = RunId(7)

HOLDER = """\
import os, sys
from pathlib import Path
from conveyor.core.records import RunId
from conveyor.engine.locks import RunLock
lock = RunLock(Path(sys.argv[1]), RunId(7))
print("locked", flush=True)
if sys.argv[2] == "exit":
    os._exit(0)
sys.stdin.read()
"""


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def holder(locks: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the Run's lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(locks), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_a_lock_held_by_this_process_is_not_abandoned(locks: Path) -> None:
    lock = RunLock(locks, RUN)
    try:
        assert lock.path == lock_path(locks, RUN)
        assert lock.path.exists()
        assert not is_abandoned(locks, RUN, os.getpid())
        assert lock.path.exists()
    finally:
        lock.release()
    assert not lock.path.exists()


def test_release_is_idempotent(locks: Path) -> None:
    lock = RunLock(locks, RUN)
    lock.release()
    lock.release()


def test_a_lock_held_by_a_live_process_is_not_abandoned(
    locks: Path, holder: subprocess.Popen[str]
) -> None:
    assert not is_abandoned(locks, RUN, holder.pid)


def test_a_lock_left_by_a_killed_process_is_abandoned(
    locks: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(locks, RUN).exists()
    # The pid does not decide: the lock does.
    assert is_abandoned(locks, RUN, os.getpid())
    assert not lock_path(locks, RUN).exists()


def test_a_lock_left_by_a_process_that_exited_without_releasing_is_abandoned(
    locks: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HOLDER, str(locks), "exit"], check=True, capture_output=True
    )
    assert done.stdout == b"locked\n"
    assert lock_path(locks, RUN).exists()
    assert is_abandoned(locks, RUN, os.getpid())


def test_without_a_lock_file_a_live_pid_is_not_abandoned(locks: Path) -> None:
    locks.mkdir()
    assert not is_abandoned(locks, RUN, os.getpid())


def test_without_a_lock_file_a_dead_pid_is_abandoned(locks: Path) -> None:
    locks.mkdir()
    assert is_abandoned(locks, RUN, dead_pid())


def test_a_lock_of_another_run_says_nothing_about_this_one(locks: Path) -> None:
    other = RunLock(locks, RunId(8))
    try:
        assert is_abandoned(locks, RUN, dead_pid())
        assert not is_abandoned(locks, RunId(8), dead_pid())
    finally:
        other.release()


def record_running_run(service: RunService, pid: int) -> RunId:
    run_id, _ = run_store.create_run(
        service.db,
        run=run_store.NewRun(
            project=service.workspace.project,
            pipeline_path="conveyor.yaml",
            spec_digest="sha256:" + "0" * 64,
            workspace=str(service.workspace.root),
            branch=None,
            commit_sha=None,
            event="local",
            actor="tester",
            targets=(),
            options={},
            host=service.host,
            pid=pid,
            created_at=0.0,
        ),
        jobs=[run_store.NewJob(0, "a", "a", (), False)],
    )
    return run_id


def test_a_run_whose_process_died_reads_as_interrupted(harness: Harness) -> None:
    service = harness.service()
    run_id = record_running_run(service, dead_pid())
    run = harness.history().get_run(run_id)
    assert run.status == "interrupted"
    assert run.error == "the conveyor process running it stopped without finishing"
    kinds = [e.kind for e in event_log.for_subject(service.db, f"run/{run_id}")]
    assert kinds[-1] == "run.interrupted"


def test_a_run_whose_process_holds_its_lock_stays_running(harness: Harness) -> None:
    service = harness.service()
    run_id = record_running_run(service, dead_pid())
    lock = RunLock(harness.workspace.locks_dir, run_id)
    try:
        assert harness.history().get_run(run_id).status == "running"
    finally:
        lock.release()

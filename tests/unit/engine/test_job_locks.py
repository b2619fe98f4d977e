"""A job runs in one Run of a workspace at a time: the locks that say which."""

from __future__ import annotations

import threading
from pathlib import Path

from conveyor.engine.locks import JobLocks


def _locks(locks_dir: Path, workspace: str = "ws") -> JobLocks:
    return JobLocks(locks_dir, workspace=locks_dir.parent / workspace)


def test_a_job_one_run_holds_is_refused_to_another_until_released(tmp_path: Path) -> None:
    locks_dir = tmp_path / "locks"  # made on first use
    mine, theirs = _locks(locks_dir), _locks(locks_dir)

    assert mine.take("test (python=3.12)")
    assert mine.take("test (python=3.12)")  # held already
    assert not theirs.take("test (python=3.12)")
    assert theirs.take("lint")  # other jobs are free

    mine.release("test (python=3.12)")
    assert theirs.take("test (python=3.12)")
    assert not mine.take("test (python=3.12)")


def test_releasing_everything_frees_every_job_and_twice_is_harmless(tmp_path: Path) -> None:
    mine, theirs = _locks(tmp_path), _locks(tmp_path)
    assert mine.take("a") and mine.take("b")

    releaser = threading.Thread(target=mine.release_all)  # from another thread, as workers do
    releaser.start()
    releaser.join()
    mine.release_all()
    mine.release("a")

    assert theirs.take("a") and theirs.take("b")


def test_another_workspace_has_jobs_of_its_own(tmp_path: Path) -> None:
    # Projects sharing a state directory must not wait on each other.
    locks_dir = tmp_path / "locks"
    assert _locks(locks_dir).take("build")

    assert _locks(locks_dir, workspace="other").take("build")
    assert not _locks(locks_dir).take("build")

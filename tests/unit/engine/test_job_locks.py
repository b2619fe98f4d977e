"""A job runs in one Run of a workspace at a time: the locks that say which."""

from __future__ import annotations

import threading
from pathlib import Path

from conveyor.engine.locks import JobLocks


def _locks(locks_dir: Path, workspace: str = "ws", pipeline: str = "conveyor.yaml") -> JobLocks:
    root = locks_dir.parent / workspace
    return JobLocks(locks_dir, workspace=root, pipeline=root / pipeline)


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


def test_another_workspace_or_pipeline_file_has_jobs_of_its_own(tmp_path: Path) -> None:
    # Projects sharing a state directory, and a job running another pipeline of its
    # workspace (`conveyor run -f inner.yaml` inside `build`), must not wait on each other.
    locks_dir = tmp_path / "locks"
    outer = _locks(locks_dir)
    assert outer.take("build")

    assert _locks(locks_dir, pipeline="inner.yaml").take("build")
    assert _locks(locks_dir, workspace="other").take("build")
    assert not _locks(locks_dir).take("build")

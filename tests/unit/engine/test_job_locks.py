"""A job runs in one Run of a workspace at a time: the locks that say which."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conveyor.engine.locks import JobLocks


def _locks(locks_dir: Path, workspace: str = "ws") -> JobLocks:
    return JobLocks(locks_dir, workspace=locks_dir.parent / workspace)


def test_a_job_one_run_holds_is_refused_to_another_until_released(tmp_path: Path) -> None:
    locks_dir = tmp_path / "locks"  # made on first use
    mine, theirs = _locks(locks_dir), _locks(locks_dir)

    assert mine.take("test (python=3.12)")
    assert not theirs.take("test (python=3.12)")
    assert theirs.take("lint")  # other jobs are free

    mine.release("test (python=3.12)")
    assert theirs.take("test (python=3.12)")
    assert not mine.take("test (python=3.12)")


def test_a_lock_taken_twice_by_one_run_is_let_go_after_both_releases(tmp_path: Path) -> None:
    # A file two jobs of one Run write, one after the other: the second may take it before
    # the first lets go, and must keep it after.
    mine, theirs = _locks(tmp_path), _locks(tmp_path)
    assert mine.take("\0file\0dist/app") and mine.take("\0file\0dist/app")

    mine.release("\0file\0dist/app")
    assert not theirs.take("\0file\0dist/app")
    mine.release("\0file\0dist/app")
    assert theirs.take("\0file\0dist/app")


def test_take_all_holds_every_lock_or_none_and_names_the_one_held_elsewhere(
    tmp_path: Path,
) -> None:
    mine, theirs = _locks(tmp_path), _locks(tmp_path)
    assert theirs.take("\0file\0shared.txt")

    assert mine.take_all(["b", "\0file\0shared.txt"]) == "\0file\0shared.txt"
    assert theirs.take("b")  # the job's own lock was let go with the refusal
    theirs.release("b")
    theirs.release("\0file\0shared.txt")
    assert mine.take_all(["b", "\0file\0shared.txt"]) is None
    assert not theirs.take("b") and not theirs.take("\0file\0shared.txt")


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


def test_releasing_one_job_keeps_the_others(tmp_path: Path) -> None:
    mine, theirs = _locks(tmp_path), _locks(tmp_path)
    assert mine.take("a") and mine.take("b")

    mine.release("a")

    assert theirs.take("a")
    assert not theirs.take("b")


HOLDER = """\
import sys
from pathlib import Path

import pytest
from conveyor.engine.locks import JobLocks
locks = JobLocks(Path(sys.argv[1]), workspace=Path(sys.argv[2]))
print(locks.take("build"), flush=True)
sys.stdin.read()  # held until the test closes our stdin, then the process ends
"""


def test_a_job_another_process_holds_is_refused_until_that_process_ends(tmp_path: Path) -> None:
    locks_dir = tmp_path / "locks"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(locks_dir), str(tmp_path / "ws")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "True"

        assert not _locks(locks_dir).take("build")
        assert _locks(locks_dir).take("lint")

        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert _locks(locks_dir).take("build")  # the kernel let go when the holder ended


@pytest.mark.skipif(sys.platform != "linux", reason="byte locks of one file are Linux's")
def test_a_run_locks_its_jobs_in_one_file(tmp_path: Path) -> None:
    # Creating a file per job cost a first Run about a millisecond per job.
    locks = _locks(tmp_path / "locks")
    assert all(locks.take(f"job {n}") for n in range(50))

    assert [p.name for p in (tmp_path / "locks").iterdir()] == ["jobs.lock"]

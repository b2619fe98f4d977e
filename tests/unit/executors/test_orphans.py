"""Stopping the processes a killed run left behind, and only those."""

from __future__ import annotations

import os
import subprocess
import time

from conveyor.executors.local import stop_orphaned_group


def _group(env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sleep", "60"], env={**os.environ, **env_extra}, start_new_session=True
    )


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.02)
    return False


def test_a_group_carrying_the_runs_marks_is_killed() -> None:
    proc = _group({"CONVEYOR_RUN_ID": "41", "CONVEYOR_WORKSPACE": "/w"})
    try:
        assert stop_orphaned_group(proc.pid, ["CONVEYOR_RUN_ID=41", "CONVEYOR_WORKSPACE=/w"])
        assert _gone(proc)
    finally:
        proc.kill()
        proc.wait()


def test_a_group_of_another_run_with_a_similar_id_is_left_alone() -> None:
    proc = _group({"CONVEYOR_RUN_ID": "410", "CONVEYOR_WORKSPACE": "/w"})
    try:
        assert not stop_orphaned_group(proc.pid, ["CONVEYOR_RUN_ID=41", "CONVEYOR_WORKSPACE=/w"])
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_group_id_without_the_marks_is_left_alone() -> None:
    proc = _group({})
    try:
        assert not stop_orphaned_group(proc.pid, ["CONVEYOR_RUN_ID=41"])
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()

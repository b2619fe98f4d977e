"""Stopping the processes a killed run left behind, and only those."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

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


# Execs itself until its count runs out: every exec is a moment in which /proc
# shows the process with an empty environment.
REEXEC = 'n=$1; if [ "$n" -gt 0 ]; then exec /bin/sh "$0" $((n - 1)); fi; sleep 60\n'


def test_a_group_whose_only_process_is_in_the_middle_of_an_exec_is_still_found(
    tmp_path: Path,
) -> None:
    script = tmp_path / "reexec.sh"
    script.write_text(REEXEC)
    missed = 0
    for _ in range(30):
        proc = subprocess.Popen(
            ["/bin/sh", str(script), "100000"],
            env={**os.environ, "CONVEYOR_RUN_ID": "41"},
            start_new_session=True,
        )
        try:
            time.sleep(0.005)  # well into its execs
            if not stop_orphaned_group(proc.pid, ["CONVEYOR_RUN_ID=41"]):
                missed += 1
        finally:
            proc.kill()
            proc.wait()

    assert missed == 0, f"{missed} of 30 groups were taken for someone else's"


def test_members_with_an_empty_environment_share_one_short_wait() -> None:
    # The group's leader and 20 of its members have no environment at all; the
    # member carrying the run's marks starts last.
    script = (
        "for i in $(seq 20); do /usr/bin/env -i /bin/sleep 30 & done; "
        "/usr/bin/env CONVEYOR_RUN_ID=41 /bin/sleep 30 & wait"
    )
    argv = ["/usr/bin/env", "-i", "/bin/bash", "-c", script]
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        time.sleep(0.3)  # every member started
        started = time.monotonic()
        assert stop_orphaned_group(proc.pid, ["CONVEYOR_RUN_ID=41"])
        assert time.monotonic() - started < 0.5
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


def test_a_script_too_long_for_one_argument_runs_from_a_file_with_the_same_options(
    tmp_path: Path,
) -> None:
    from conveyor.executors.base import ExecRequest
    from conveyor.executors.local import LocalExecutor

    body = "\n".join(f"v{i}=1" for i in range(30_000))
    script = f"{body}\necho reached $v29999\nfalse\necho not reached\n"
    assert len(script) > 200_000
    out: list[bytes] = []
    result = (
        LocalExecutor()
        .start(ExecRequest("long", script, dict(os.environ), tmp_path), out.append)
        .wait()
    )
    assert (result.outcome, result.exit_code) == ("exited", 1)
    assert b"".join(out) == b"reached 1\n"
    leftovers = [
        p
        for p in Path(tempfile.gettempdir()).glob("conveyor-job-*.sh")
        if "v29999" in p.read_text()
    ]
    assert leftovers == []

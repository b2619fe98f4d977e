"""/proc read as the local target reads it, with real processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conveyor.targets import procfs

pytestmark = pytest.mark.timeout(60)

# Execs itself until its count runs out. Every exec is a moment in which /proc
# shows the process with an empty environment, and every start of bash one in
# which it shows each variable split in place (`NAME\0value`) while bash reads it.
REEXEC = (
    'n=$1; if [ "$n" -gt 0 ]; then exec bash --noprofile --norc "$0" $((n - 1)); fi; sleep 0.3\n'
)


def test_a_process_in_the_middle_of_an_exec_still_carries_its_markers(tmp_path: Path) -> None:
    script = tmp_path / "reexec.sh"
    script.write_text(REEXEC)
    marker = "CONVEYOR_INSTANCE=shop.dev.1.1"
    missed = checks = 0
    for _ in range(4):
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(script), "200"],
            env={"PATH": os.environ["PATH"], "CONVEYOR_INSTANCE": "shop.dev.1.1"},
        )
        try:
            while process.poll() is None:
                running = procfs.is_running(process.pid)
                carried = procfs.carries(process.pid, [marker])
                if running and not carried and process.poll() is None:
                    missed += 1
                checks += 1
        finally:
            process.kill()
            process.wait()

    assert checks > 100
    assert missed == 0, f"{missed} of {checks} reads took a running process for another"


def test_a_process_without_the_markers_or_gone_does_not_carry_them() -> None:
    process = subprocess.Popen(["sleep", "5"], env={"PATH": os.environ["PATH"], "OTHER": "1"})
    try:
        assert procfs.carries(process.pid, ["OTHER=1"])
        assert not procfs.carries(process.pid, ["CONVEYOR_INSTANCE=shop.dev.1.1"])
    finally:
        process.kill()
        process.wait()
    started = time.monotonic()
    assert not procfs.carries(process.pid, ["OTHER=1"])
    assert time.monotonic() - started < 0.5  # a process that is gone is not waited for


def test_a_process_whose_environment_is_really_empty_is_not_waited_on_for_long() -> None:
    process = subprocess.Popen(["env", "-i", "sleep", "5"])
    try:
        time.sleep(0.1)  # well past its exec
        started = time.monotonic()
        assert not procfs.carries(process.pid, ["CONVEYOR_INSTANCE=shop.dev.1.1"])
        assert time.monotonic() - started < 0.5
    finally:
        process.kill()
        process.wait()

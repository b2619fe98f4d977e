"""Knowing whether the process that started a Run is still alive.

A running `conveyor run` holds an exclusive lock on a file named after its
Run. If another process can take that lock, the owner is gone (SIGKILL, a
crash, a reboot) and the Run is `interrupted`.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from conveyor.core.records import RunId


class RunLock:
    """Held by the process executing a Run, for as long as it runs."""

    def __init__(self, locks_dir: Path, run_id: RunId) -> None:
        locks_dir.mkdir(parents=True, exist_ok=True)
        self.path = lock_path(locks_dir, run_id)
        # Lock a private file, then move it into place: a reader never finds
        # the lock file unlocked while its owner lives.
        staging = self.path.with_suffix(f".{os.getpid()}.tmp")
        self._handle: IO[str] | None = open(staging, "w")  # noqa: SIM115 - held until release
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        staging.replace(self.path)

    def release(self) -> None:
        if self._handle is None:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def lock_path(locks_dir: Path, run_id: RunId) -> Path:
    return locks_dir / f"run-{run_id}.lock"


def is_abandoned(locks_dir: Path, run_id: RunId, pid: int) -> bool:
    """Whether the Run's owner on this host is gone."""
    path = lock_path(locks_dir, run_id)
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return not _pid_alive(pid)
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path.unlink(missing_ok=True)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

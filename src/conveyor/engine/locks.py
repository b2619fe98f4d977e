"""Locks in a workspace: whether a Run's process lives, and which Run runs a job.

A running `conveyor run` holds an exclusive lock on a file named after its
Run. If another process can take that lock, the owner is gone (SIGKILL, a
crash, a reboot) and the Run is `interrupted`.

A job runs in one Run of a workspace at a time (`JobLocks`): two Runs writing
one job's outputs at once would tear them, and the cache would keep what
either saw. The kernel lets go of a lock its process holds when it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
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


class JobLocks:
    """The jobs one Run holds in its workspace; `take` never waits, `release` from any thread.

    A job is named by the workspace it writes in and its name, whatever
    pipeline file holds it: projects sharing a state directory do not wait
    on each other. (A Run started by a job of a Run in the same workspace
    takes no job locks: the outer Run holds them.) A lock lasts as long as
    the Run holding it: a Run killed with SIGKILL lets go of it while its
    job's processes may still run (the next `conveyor runs` stops them).
    """

    def __init__(self, locks_dir: Path, *, workspace: Path) -> None:
        self._dir = locks_dir
        self._scope = f"{workspace.resolve()}\0"
        self._held: dict[str, int] = {}  # job -> the descriptor holding its lock
        self._mutex = threading.Lock()

    def take(self, job: str) -> bool:
        """Hold `job`'s lock; False while another Run (or another holder) has it."""
        key = hashlib.sha256((self._scope + job).encode()).hexdigest()[:32]
        path = self._dir / f"job-{key}.lock"
        with self._mutex:
            if job in self._held:
                return True
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                self._dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._held[job] = fd
            return True

    def release(self, job: str) -> None:
        with self._mutex:
            fd = self._held.pop(job, None)
        if fd is not None:
            os.close(fd)  # the file stays: removing it would race with another taker

    def release_all(self) -> None:
        with self._mutex:
            held, self._held = list(self._held.values()), {}
        for fd in held:
            with contextlib.suppress(OSError):
                os.close(fd)

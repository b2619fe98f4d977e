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
import errno
import fcntl
import hashlib
import os
import struct
import sys
import threading
from collections.abc import Sequence
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
    job's processes may still run. The next `conveyor run` (or `runs`,
    `show`) in the workspace stops them before it starts a job; a Run that
    was already running when the other was killed may take the lock first.

    On Linux every job is one byte of one file, locked with an open file
    description lock (`F_OFD_SETLK`): locks of two Runs conflict even within
    one process, and go with the Run's descriptor. Making a file per job,
    as elsewhere (`flock`), cost a first Run about a millisecond per job.
    """

    def __init__(self, locks_dir: Path, *, workspace: Path) -> None:
        self._dir = locks_dir
        self._scope = f"{workspace.resolve()}\0"
        self._held: dict[str, int] = {}  # job -> its descriptor, or its byte in the shared file
        self._takers: dict[str, int] = {}  # job -> how many of this Run's takes hold it
        self._mutex = threading.Lock()
        self._shared: int | None = None  # the descriptor of `jobs.lock`, once opened

    def take_all(self, jobs: Sequence[str]) -> str | None:
        """Hold every lock of `jobs`, or none: the first that another Run has, else None."""
        for index, job in enumerate(jobs):
            if not self.take(job):
                for taken in jobs[:index]:
                    self.release(taken)
                return job
        return None

    def take(self, job: str) -> bool:
        """Hold `job`'s lock; False while another Run (or another holder) has it.

        This Run may take a lock it holds (a file two of its jobs write, one
        after the other): it is let go once every take is released.
        """
        key = hashlib.sha256((self._scope + job).encode()).hexdigest()
        with self._mutex:
            if job in self._held:
                self._takers[job] += 1
                return True
            if _OFD_LOCKS:
                offset = int(key[:15], 16)  # 60 bits: a byte far below the largest offset
                if not _byte_lock(self._shared_fd(), offset, fcntl.F_WRLCK):
                    return False
                self._held[job], self._takers[job] = offset, 1
                return True
            fd = self._open(f"job-{key[:32]}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._held[job], self._takers[job] = fd, 1
            return True

    def release(self, job: str) -> None:
        with self._mutex:
            if job not in self._held:
                return
            self._takers[job] -= 1
            if self._takers[job] > 0:
                return
            del self._takers[job]
            held = self._held.pop(job)
            if _OFD_LOCKS:
                assert self._shared is not None  # a byte is held only through it
                _byte_lock(self._shared, held, fcntl.F_UNLCK)
                return
        os.close(held)  # the file stays: removing it would race with another taker

    def release_all(self) -> None:
        with self._mutex:
            held, self._held = list(self._held.values()), {}
            self._takers.clear()
            shared, self._shared = self._shared, None
        if shared is not None:
            with contextlib.suppress(OSError):
                os.close(shared)  # lets go of every byte it locked
        if not _OFD_LOCKS:
            for fd in held:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _shared_fd(self) -> int:
        if self._shared is None:
            self._shared = self._open("jobs.lock")
        return self._shared

    def _open(self, name: str) -> int:
        path = self._dir / name
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            self._dir.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


# `struct flock` on Linux with a 64-bit off_t: type, whence, start, len, pid.
_FLOCK = "hhxxxxqqixxxx"
_OFD_LOCKS = hasattr(fcntl, "F_OFD_SETLK") and struct.calcsize(_FLOCK) == 32 and sys.maxsize > 2**32


def _byte_lock(fd: int, offset: int, kind: int) -> bool:
    """Lock (F_WRLCK) or unlock (F_UNLCK) one byte without waiting; False when another has it."""
    request = struct.pack(_FLOCK, kind, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True

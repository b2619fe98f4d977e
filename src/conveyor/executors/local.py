"""Jobs as local processes, each in its own process group.

The script runs under `bash -eo pipefail` in a new session, so a timeout or
a cancel can signal the whole tree the job started (SIGTERM, then SIGKILL
after a grace period). Output is read from one pipe (stdout and stderr
merged, in order) by the thread that waits.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.executors.base import ExecRequest, ExecResult, OutputSink

_READ = 65536
# A single argument may hold 128 KiB on Linux; longer scripts go through a file.
_INLINE_LIMIT = 100_000


def _shell() -> list[str]:
    bash = shutil.which("bash")
    if bash:
        return [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c"]
    return ["/bin/sh", "-e", "-c"]


class LocalExecutor:
    """Runs each attempt as a local subprocess tree."""

    def __init__(self, *, kill_grace_s: float = 5.0, orphan_grace_s: float = 1.0) -> None:
        self.kill_grace_s = kill_grace_s
        self.orphan_grace_s = orphan_grace_s
        self._shell = _shell()

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        return stop_orphaned_group(pgid, markers)

    def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
        return LocalExecution(self, request, output)


class LocalExecution:
    """One running attempt."""

    def __init__(self, executor: LocalExecutor, request: ExecRequest, output: OutputSink) -> None:
        self._executor = executor
        self._request = request
        self._output = output
        self._canceled = threading.Event()
        self._started = time.monotonic()
        self._proc: subprocess.Popen[bytes] | None = None
        self._start_error = ""
        self._script_file: str | None = None
        try:
            self._proc = subprocess.Popen(
                self._command(request.script),
                cwd=request.cwd,
                env=dict(request.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._start_error = f"cannot start the job's shell in {request.cwd}: {exc.strerror}"
            self._remove_script_file()

    def _command(self, script: str) -> list[str]:
        """The shell with the script: inline, or from a private file when too long for argv."""
        if len(script.encode()) <= _INLINE_LIMIT:
            return [*self._executor._shell, script]
        fd, self._script_file = tempfile.mkstemp(prefix="conveyor-job-", suffix=".sh")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script)
        # `bash -c SCRIPT` becomes `bash FILE`: the same options, the script read from the file.
        return [*self._executor._shell[:-1], self._script_file]

    def _remove_script_file(self) -> None:
        if self._script_file is not None:
            with contextlib.suppress(OSError):
                Path(self._script_file).unlink()
            self._script_file = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def cancel(self) -> None:
        self._canceled.set()
        self._signal(signal.SIGTERM)

    def wait(self) -> ExecResult:
        proc = self._proc
        if proc is None:
            return ExecResult("failed_to_start", None, 0.0, self._start_error)
        assert proc.stdout is not None
        deadline = None
        if self._request.timeout_s is not None:
            deadline = self._started + self._request.timeout_s
        timed_out = self._pump(proc, deadline)
        if timed_out or self._canceled.is_set():
            self._terminate(proc)
        exit_code = proc.wait()
        # Whatever the script left behind in its group goes with it.
        self._signal(signal.SIGKILL)
        proc.stdout.close()
        self._remove_script_file()
        duration = time.monotonic() - self._started
        if timed_out:
            return ExecResult(
                "timed_out", None, duration, f"timed out after {self._request.timeout_s:g}s"
            )
        if self._canceled.is_set():
            return ExecResult("canceled", None, duration, "canceled")
        return ExecResult("exited", exit_code, duration)

    def _pump(self, proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
        """Forward output until the script has exited and its output has closed.

        True when the deadline passed first. The script's exit is watched
        through a pidfd where the kernel offers one, so the job's end is
        noticed the moment it happens rather than at the next poll. Processes
        the script left in the background may hold the output open: they get
        `orphan_grace_s`, then are killed with the group.
        """
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
        pidfd = _open_pidfd(proc.pid)
        watch = _Watch(out_open=True, exited_at=None)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(out_fd, selectors.EVENT_READ, "out")
                if pidfd is not None:
                    sel.register(pidfd, selectors.EVENT_READ, "exit")
                while watch.out_open or watch.exited_at is None:
                    now = time.monotonic()
                    if pidfd is None and watch.exited_at is None and proc.poll() is not None:
                        watch.exited_at = now
                    stop = self._stop_reason(now, deadline, watch)
                    if stop is not None:
                        return stop == "deadline"
                    if not watch.out_open and pidfd is None:
                        return self._await_exit(proc, deadline)
                    for key, _ in sel.select(self._wait_time(now, deadline, watch.exited_at)):
                        if key.data == "exit":
                            watch.exited_at = time.monotonic()
                            sel.unregister(key.fileobj)
                        elif chunk := os.read(out_fd, _READ):
                            self._output(chunk)
                        else:
                            watch.out_open = False
                            sel.unregister(out_fd)
                return False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _stop_reason(self, now: float, deadline: float | None, watch: _Watch) -> str | None:
        """Why to stop pumping now: the deadline, a cancel, orphans holding the output."""
        if deadline is not None and now >= deadline:
            return "deadline"
        if self._canceled.is_set():
            return "canceled"
        if watch.exited_at is not None and now - watch.exited_at > self._executor.orphan_grace_s:
            return "orphans"  # background processes hold the output; killed with the group
        return None

    def _wait_time(self, now: float, deadline: float | None, exited_at: float | None) -> float:
        wait = 0.5
        if deadline is not None:
            wait = min(wait, deadline - now)
        if exited_at is not None:
            wait = min(wait, exited_at + self._executor.orphan_grace_s - now)
        return max(wait, 0.0)

    def _await_exit(self, proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
        """Wait for the script after its output closed; True when the deadline passed first.

        A script may close or redirect its output and keep running, so the
        end of the output is not the end of the job.
        """
        while not self._canceled.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return True
            wait = 0.25 if deadline is None else min(0.25, deadline - now)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            return False
        return False

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        self._signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self._executor.kill_grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


@dataclass
class _Watch:
    """What `_pump` has seen of a running script."""

    out_open: bool
    exited_at: float | None


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def stop_orphaned_group(pgid: int, markers: Sequence[str]) -> bool:
    """SIGKILL process group `pgid` if a member's environment holds every marker.

    After the `conveyor` process that ran a job was killed, the job's
    processes may live on. A group id alone is no proof (ids are reused), so
    a member must carry the job's own variables, such as
    `CONVEYOR_RUN_ID=7`. Linux only (reads /proc); elsewhere nothing is stopped.
    """
    needles = [b"\0" + marker.encode() + b"\0" for marker in markers]
    proc = Path("/proc")
    if not needles or not proc.is_dir():
        return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The fields after the command name (which may hold spaces) follow its ')'.
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp != pgid:
                continue
            environ = b"\0" + (entry / "environ").read_bytes() + b"\0"
        except (OSError, ValueError, IndexError):
            continue
        if all(needle in environ for needle in needles):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            return True
    return False

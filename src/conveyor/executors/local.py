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
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from conveyor.executors.base import ExecRequest, ExecResult, OutputSink

_READ = 65536


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
        try:
            self._proc = subprocess.Popen(
                [*executor._shell, request.script],
                cwd=request.cwd,
                env=dict(request.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._start_error = f"cannot start the job's shell in {request.cwd}: {exc.strerror}"

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
        timed_out = self._pump(proc, deadline) or self._await_exit(proc, deadline)
        if timed_out or self._canceled.is_set():
            self._terminate(proc)
        exit_code = proc.wait()
        # Whatever the script left behind in its group goes with it.
        self._signal(signal.SIGKILL)
        proc.stdout.close()
        duration = time.monotonic() - self._started
        if timed_out:
            return ExecResult(
                "timed_out", None, duration, f"timed out after {self._request.timeout_s:g}s"
            )
        if self._canceled.is_set():
            return ExecResult("canceled", None, duration, "canceled")
        return ExecResult("exited", exit_code, duration)

    def _pump(self, proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
        """Forward output until the pipe closes; True when the deadline passed first."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        exited_at: float | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return True
                if self._canceled.is_set():
                    return False
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > self._executor.orphan_grace_s:
                    return False  # background processes hold the pipe; they are killed next
                wait = 0.5 if deadline is None else min(0.5, deadline - now)
                if not sel.select(wait):
                    continue
                chunk = os.read(fd, _READ)
                if not chunk:
                    return False
                self._output(chunk)

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

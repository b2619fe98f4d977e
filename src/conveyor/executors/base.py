"""The Executor port: the strict point where a job's script meets a process.

An Executor starts one script and returns an `Execution` that the engine
waits on (in a thread of its own) and may cancel from any thread. Output is
handed over as raw chunks as it arrives; splitting lines, masking secrets
and storing logs are the engine's business, not the executor's. Whatever the
outcome, `wait()` returns only when no process of the job is left running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Outcome = Literal["exited", "timed_out", "canceled", "failed_to_start"]
OutputSink = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """One attempt at running a job's script."""

    job: str
    script: str
    env: Mapping[str, str]
    cwd: Path
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How an attempt ended. `exit_code` is set when the script exited by itself."""

    outcome: Outcome
    exit_code: int | None
    duration_s: float
    detail: str = ""


class Execution(Protocol):
    """A started attempt."""

    @property
    def pid(self) -> int | None:
        """The id of the attempt's process (and process group), when it has one."""
        ...

    def wait(self) -> ExecResult:
        """Block until the attempt is over and its processes are gone."""
        ...

    def cancel(self) -> None:
        """Stop the attempt (idempotent, any thread); `wait()` then reports `canceled`."""
        ...


class Executor(Protocol):
    """Starts attempts."""

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        """Stop what a job left running when the process that ran it died.

        `pgid` is the process group recorded for the job; only processes that
        carry every marker (`NAME=value` of the job's environment) may be
        stopped, since ids are reused. True when something was stopped.
        """
        ...

    def start(self, request: ExecRequest, output: OutputSink) -> Execution:
        """Start `request` and return at once; output goes to `output` from the waiting thread.

        Called on the scheduler's thread, so it must not wait for the job.
        """
        ...

"""The Executor port: the strict point where a job's script meets a process.

An Executor starts one script and returns an `Execution` that the engine
waits on and may cancel from any thread. Output is handed over as raw chunks
as it arrives; splitting lines, masking secrets and storing logs are the
engine's business, not the executor's. Whatever the outcome, the result
comes only when no process of the job is left running.

An Execution that is also `Watchable` can be waited on from the engine's own
event loop, many at once on one thread, instead of a thread blocked in
`wait()` for each: the engine then starts the next job the moment one ends,
with no hand-off between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from conveyor.core.values import frozen

if TYPE_CHECKING:
    import selectors

Outcome = Literal["exited", "timed_out", "canceled", "failed_to_start"]
OutputSink = Callable[[bytes], None]


@frozen
class ExecRequest:
    """One attempt at running a job's script."""

    job: str
    script: str
    env: Mapping[str, str]
    cwd: Path
    timeout_s: float | None = None


@frozen
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


@runtime_checkable
class Watchable(Protocol):
    """An Execution that a caller's event loop drives, in place of `wait()`.

    The loop registers nothing itself: `attach` registers the execution's
    descriptors, with the execution as their data, and the execution removes
    them as they close. The loop calls `advance(())` once after `attach` (an
    attempt that could not start has no descriptors and ends there), then
    `advance` with the descriptors found ready, and with none once `wake_at()`
    has come (a timeout, a grace period running out). A cancel is acted on at
    the next `advance`, which `wake_at()` asks for at once.
    """

    def attach(self, selector: selectors.BaseSelector) -> None:
        """Register the descriptors to wait on in `selector`, each with this execution as data."""
        ...

    def advance(self, ready: Iterable[int]) -> ExecResult | None:
        """Take in what is ready without blocking; the result once the attempt is over."""
        ...

    def wake_at(self) -> float | None:
        """The `time.monotonic()` at which to call `advance` even if nothing is ready.

        The same until `advance` acts on it, so it may be asked again after sleeping.
        """
        ...

    def abandon(self) -> None:
        """Give the attempt up after a fault of the caller: kill it, reap it, release it.

        Returns once no process of the job is left and its descriptors are
        closed (and out of the selector); no result follows.
        """
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
        """Start `request` and return at once; output goes to `output` as the attempt is advanced.

        Called on the scheduler's thread, so it must not wait for the job.
        """
        ...

"""The rules of a Run that every way of running it shares.

When a finished need lets its dependents start, why a job is skipped or
never started, and what the Run's status is: the local scheduler
(`engine/runner.py`) and the dispatch of jobs to runners
(`engine/dispatch_rules.py`) decide the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.core.records import SATISFIED_JOB_STATES, JobState, RunStatus

if TYPE_CHECKING:
    from conveyor.engine.jobrun import JobOutcome
    from conveyor.engine.plan import Plan


def need_satisfied(status: JobState, *, allow_failure: bool) -> bool:
    """Whether a need that ended in `status` lets the jobs that need it start."""
    if status in SATISFIED_JOB_STATES:
        return True
    return allow_failure and status in ("failed", "timed_out")


def skip_reason(need: str, status: JobState) -> str:
    """Why a job is skipped when its need `need` ended in `status` without satisfying it."""
    word = "was skipped" if status == "skipped" else status
    return f"need '{need}' {word}".replace("_", " ")


def stop_reason(name: str, status: JobState) -> str:
    """What stops a Run without --keep-going: a job that ended in `status`."""
    return f"'{name}' {status.replace('_', ' ')}"


def shared_output(path: str, other: str) -> str:
    """Why a job fails that produced `path`, which job `other` of the Run (not among the ones
    it needs) produced too: each would keep its own copy, and a cache hit of one would put
    it back over the other's."""
    return (
        f"output {path} is also an output of job '{other}', which it does not need: "
        "a file has one producer (narrow a glob, or add a need)"
    )


def not_retried(reason: str | None, stop: str) -> str:
    """Why a failed job's retry did not come: its attempt's `reason`, then the Run's `stop`."""
    why = f"not retried: {stop}"
    return f"{reason}; {why}" if reason else why


def not_retried_note(stop: str) -> str:
    """The line a job's log ends with when its retry is not to come, the Run stopped."""
    return f"--- not retried: {stop} ---"


def not_started(reason: str | None, *, keep_going_helps: bool = True, again: bool = False) -> str:
    """Why a job was never started (`again`: after a runner handed it back) once the Run
    stopped for `reason`."""
    said = f"not started{' again' if again else ''}: {reason}"
    if not keep_going_helps:  # an infrastructure fault stops the Run all the same
        return said
    return f"{said} (--keep-going runs independent jobs)"


def run_status(plan: Plan, outcomes: Mapping[str, JobOutcome], *, canceled: bool) -> RunStatus:
    """`canceled`, `failed` when a job failed that may not, else `success`."""
    if canceled:
        return "canceled"
    for job in plan.jobs:
        outcome = outcomes[job.name]
        if outcome.status in ("failed", "timed_out") and not job.allow_failure:
            return "failed"
    return "success"

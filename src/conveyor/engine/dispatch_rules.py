"""What the dispatch service hands out and decides, as values (pure).

`advance` applies the local Scheduler's rules to a remote Run's JobRuns:
which pending ones become claimable, which are skipped and why. `halt_of`
says whether the Run halted (everything that would queue a JobRun again asks
it first) and `halted` what becomes of such a JobRun then. `outcome_of`
says how the Run ends once nothing is left. The Events recording each change
are built here too, so the service only reads, decides and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal, cast

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import Conflict, StoreError, UsageError
from conveyor.core.records import (
    SATISFIED_JOB_STATES,
    TERMINAL_JOB_STATES,
    AttemptOutcome,
    JobRecord,
    JobState,
    OutputRecord,
    RunId,
    RunRecord,
    RunStatus,
    TestCounts,
)
from conveyor.core.values import field, frozen, replace
from conveyor.engine import run_rules
from conveyor.engine.plan import Plan
from conveyor.engine.run_rules import (
    need_satisfied,
    not_retried_note,
    not_started,
    skip_reason,
    stop_reason,
)
from conveyor.spec.pipeline import Concurrency, Job
from conveyor.spec.serialize import job_from_dict, job_to_dict
from conveyor.store.queue import QueuedJob, QueueJob, Taken
from conveyor.store.runs import JobUpdate, NewRun

Beat = Literal["ok", "cancel", "lost"]


@frozen
class Source:
    """Where a runner finds a Run's files: a directory, a source bundle in the CAS, or a
    commit of a git repository (`git` is its URL, `commit` the full commit id).

    `subdir` is the directory of the pipeline file inside the checkout (a
    project's `spec_path` such as `services/api/conveyor.yaml`): the workspace
    its jobs run in, as `conveyor run` there would use; None for the top.
    """

    path: str | None = None
    bundle: str | None = None
    git: str | None = None
    commit: str | None = None
    subdir: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "bundle": self.bundle,
            "git": self.git,
            "commit": self.commit,
            "subdir": self.subdir,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> Source:
        """The Source `to_json` wrote (keys it lacks are None, as older rows lack `git`)."""

        def text(key: str) -> str | None:
            value = doc.get(key)
            return None if value is None else str(value)

        return cls(
            path=text("path"),
            bundle=text("bundle"),
            git=text("git"),
            commit=text("commit"),
            subdir=text("subdir"),
        )

    def workspace(self, checkout: Path) -> Path:
        """Where the jobs run in a checkout of this source; ValueError for a subdir leading out."""
        if self.subdir is None:
            return checkout
        sub = PurePosixPath(self.subdir)
        if sub.is_absolute() or ".." in sub.parts:
            raise ValueError(f"the pipeline's directory '{self.subdir}' leads out of the checkout")
        return checkout / sub


@frozen
class Submission:
    """A planned Run to hand to runners."""

    run: NewRun
    plan: Plan
    source: Source
    concurrency: Concurrency | None = None
    keep_going: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # The names of the Pipeline's `secrets:`. Their values are never stored: they are read
    # from the secret store when a runner claims a job, and a value `env` gives them is dropped.
    secrets: tuple[str, ...] = ()


@frozen
class Claim:
    """A JobRun handed to a runner: what to run, where from, and until when it is held."""

    attempt_id: int
    number: int
    run_id: RunId
    job_run_id: int
    job: Job
    source: Source
    env: Mapping[str, str]
    upstream: tuple[OutputRecord, ...]
    lease_until: float
    queued_s: float
    # Values of the declared secrets, held in memory and in the answer to the runner only.
    secrets: Mapping[str, str] = field(default_factory=dict)
    unset_secrets: tuple[str, ...] = ()  # declared, but stored nowhere: the job sees them unset


@frozen
class AttemptResult:
    """How a runner's attempt ended, with what it stored in the CAS."""

    status: JobState
    exit_code: int | None = None
    duration_s: float = 0.0
    reason: str | None = None
    log_digest: str | None = None
    tests: TestCounts | None = None
    outputs: tuple[OutputRecord, ...] = ()


@frozen
class Step:
    """One JobRun moving on: queued, skipped or canceled, and why; or ended with `result`,
    its last attempt's, when a retry it waited for is not to come, and `note` the line
    its log then ends with."""

    job: QueueJob
    status: JobState
    reason: str | None = None
    result: AttemptResult | None = None
    note: str | None = None


def advance(
    jobs: Sequence[QueueJob], *, halt: str | None, last: Mapping[int, AttemptOutcome]
) -> list[Step]:
    """Which pending JobRuns become queued or skipped, by the local Scheduler's rules.

    `halt` is why the Run halted (`halt_of`), or None. Once it has, queued ones are
    not started (again): see `halted`; `last` is, by id, the last attempt with a
    result of each one queued again after one.
    """
    state = {job.name: job.status for job in jobs}
    by_name = {job.name: job for job in jobs}
    steps: list[Step] = []
    for job in jobs:  # pipeline order: needs come first, so one pass settles chains
        if state[job.name] == "queued" and halt is not None:
            step = halted(job, last.get(job.id), halt)
            state[job.name] = step.status
            steps.append(step)
        if state[job.name] != "pending":
            continue
        needs = [(n, state[n]) for n in job.needs]
        if any(s not in TERMINAL_JOB_STATES for _, s in needs):
            continue
        broken = [(n, s) for n, s in needs if _spoils(by_name[n], s)]
        if broken:
            step = Step(job, "skipped", skip_reason(*broken[0]))
        elif halt is not None:
            step = Step(job, "skipped", not_started(halt))
        else:
            step = Step(job, "queued")
        state[job.name] = step.status
        steps.append(step)
    return steps


def halt_of(jobs: Sequence[QueueJob], *, keep_going: bool) -> str | None:
    """Why a Run halts: without keep_going, the first of its JobRuns that ended so that
    its dependents cannot follow; None while it goes on. Every JobRun that would be
    queued (again) asks this first."""
    if keep_going:
        return None
    for job in jobs:
        if job.status != "skipped" and _spoils(job, job.status):
            return stop_reason(job.name, job.status)
    return None


def halted(job: QueueJob, last: AttemptOutcome | None, halt: str) -> Step:
    """A JobRun that would be queued (again) once the Run halted for `halt`.

    When an attempt of it failed, timed out or lost its runner, the last such
    attempt's result stands (`last`), as a local job's does; else it is skipped:
    never started, or handed back by its runner and not started again.
    """
    if last is not None:
        result = not_retried(
            AttemptResult(
                status=cast(JobState, last.status),  # failed, timed_out or runner_lost
                exit_code=last.exit_code,
                duration_s=last.duration_s or 0.0,
                reason=last.reason,
                log_digest=last.log_digest,
                tests=last.tests,
            ),
            halt,
        )
        return Step(job, result.status, result.reason, result, not_retried_note(halt))
    if job.attempts:  # every attempt was handed back
        return Step(job, "skipped", f"handed back by its runner; {not_started(halt, again=True)}")
    return Step(job, "skipped", not_started(halt))


def not_retried(result: AttemptResult, halt: str) -> AttemptResult:
    """An attempt's result that ends its JobRun: its retry is not to come, the Run halted."""
    return replace(result, reason=run_rules.not_retried(result.reason, halt))


def _spoils(job: QueueJob, status: JobState) -> bool:
    """A finished JobRun its dependents cannot follow."""
    if status not in TERMINAL_JOB_STATES:
        return False
    return not need_satisfied(status, allow_failure=job.allow_failure)


def outcome_of(jobs: Sequence[QueueJob]) -> RunStatus | None:
    """The Run's status once every JobRun is terminal; None while work is left."""
    if any(job.status not in TERMINAL_JOB_STATES for job in jobs):
        return None
    if any(job.status == "canceled" for job in jobs):
        return "canceled"
    for job in jobs:
        if job.status == "runner_lost":
            return "failed"
        if job.status in ("failed", "timed_out") and not job.allow_failure:
            return "failed"
    return "success"


def retry_delay(job: QueueJob, failures: int, status: JobState) -> float | None:
    """Seconds until a JobRun that failed `failures` times is tried again; None: never.

    A lost runner is not the job's fault: it is retried at once, without backoff.
    """
    if job.cancel_requested or failures > job.retry_max:
        return None
    if status == "runner_lost":
        return 0.0
    return job.retry_backoff_s * (2.0 ** max(0, failures - 1))


def upstream_names(jobs: Sequence[QueueJob], name: str) -> list[str]:
    """Every job `name` needs, directly or further up."""
    by_name = {job.name: job for job in jobs}
    seen: list[str] = []
    stack = list(by_name[name].needs)
    while stack:
        need = stack.pop()
        if need not in seen:
            seen.append(need)
            stack.extend(by_name[need].needs)
    return seen


# --- what is stored and handed out ---------------------------------------------------


def queued_jobs(submission: Submission) -> list[QueuedJob]:
    """The JobRuns of a submission as the queue stores them."""
    run_group = submission.concurrency.group if submission.concurrency else None
    source = submission.source
    secrets = submission.secrets
    env = {name: value for name, value in submission.env.items() if name not in secrets}
    return [
        QueuedJob(
            position=i,
            name=job.name,
            base_name=job.base_name,
            needs=job.needs,
            allow_failure=job.allow_failure,
            runs_on=job.runs_on,
            concurrency_group=job.concurrency.group if job.concurrency else None,
            run_group=run_group,
            retry_max=job.retry.max,
            retry_backoff_s=job.retry.backoff_s,
            payload={
                "job": job_to_dict(job),
                "source": source.to_json(),
                "env": env,
                "secrets": list(secrets),
                "skip": submission.plan.skipped.get(job.name),
            },
        )
        for i, job in enumerate(submission.plan.jobs)
    ]


def claim_of(
    taken: Taken,
    *,
    attempt_id: int,
    upstream: tuple[OutputRecord, ...],
    lease_until: float,
    queued_s: float,
) -> Claim:
    """What a runner is handed for a JobRun it took."""
    payload = taken.payload
    source = payload["source"]
    env = payload.get("env")
    if not isinstance(source, dict) or not isinstance(env, dict):
        raise StoreError(f"job run {taken.id} has a damaged payload")
    return Claim(
        attempt_id=attempt_id,
        number=taken.attempts,
        run_id=taken.run_id,
        job_run_id=taken.id,
        job=job_from_dict(payload["job"]),
        source=Source.from_json(source),
        env={str(k): str(v) for k, v in env.items()},
        upstream=upstream,
        lease_until=lease_until,
        queued_s=queued_s,
    )


def secret_names(taken: Taken) -> tuple[str, ...]:
    """The secrets a taken JobRun's Pipeline declares (names only: values are never stored)."""
    names = taken.payload.get("secrets")
    return tuple(str(name) for name in names) if isinstance(names, list) else ()


def started_event(run_id: RunId, submission: Submission, now: float) -> NewEvent:
    run = submission.run
    data: dict[str, object] = {
        "pipeline": run.pipeline_path,
        "spec_digest": run.spec_digest,
        "branch": run.branch,
        "commit": run.commit_sha,
        "jobs": len(submission.plan.jobs),
        "targets": list(run.targets),
        "remote": True,
    }
    return NewEvent("run.started", f"run/{run_id}", run.actor, now, data)


def job_event(job: QueueJob, kind: str, actor: str, now: float, **data: object) -> NewEvent:
    """`job.<kind>` about one JobRun; data that is None is left out."""
    body = {k: v for k, v in data.items() if v is not None}
    return NewEvent(f"job.{kind}", f"run/{job.run_id}/job/{job.name}", actor, now, body)


def final_event(job: QueueJob, result: AttemptResult, actor: str, now: float) -> NewEvent:
    """The Event of a JobRun's end, with the fields a local run records."""
    data: dict[str, object] = {
        "status": result.status,
        "cached": result.status == "cached",
        "exit_code": result.exit_code,
        "duration_s": result.duration_s,
        "reason": result.reason,
        "attempts": job.attempts,
    }
    if result.outputs:
        data["outputs"] = {o.path: o.digest for o in result.outputs}
    return job_event(job, result.status, actor, now, **data)


# --- retrying a finished run ---------------------------------------------------------


@frozen
class RetryPlan:
    """What a retry of a finished Run does with each of its jobs."""

    carried: tuple[JobRecord, ...]  # succeeded or cached: carried over as cached
    skipped: Mapping[str, str]  # skipped by the plan (an `if:`), so skipped again, with why
    queued: tuple[str, ...]  # everything else: run again


def retry_plan(run: RunRecord, status: RunStatus, skips: Mapping[str, str | None]) -> RetryPlan:
    """How a retry of `run` (now `status`) treats each job; `skips` are the plan's skips.

    Conflict when the Run is still running or nothing in it failed; UsageError
    when it ran on one machine (`skips` names none of its jobs).
    """
    if status == "running":
        raise Conflict(
            f"run {run.id} is still running; wait for it to end, or cancel it, "
            "before retrying its failed jobs"
        )
    if run.jobs and not skips:
        raise UsageError(
            f"run {run.id} ran on one machine, not on runners; "
            "run the pipeline again with `conveyor run`"
        )
    carried = tuple(job for job in run.jobs if job.status in SATISFIED_JOB_STATES)
    skipped = {
        job.name: reason
        for job in run.jobs
        if job.status == "skipped" and (reason := skips.get(job.name)) is not None
    }
    done = {job.name for job in carried} | set(skipped)
    queued = tuple(job.name for job in run.jobs if job.name not in done)
    if not queued:
        raise Conflict(
            f"run {run.id} has no failed job to retry: every job succeeded "
            "or was skipped by its condition"
        )
    return RetryPlan(carried, skipped, queued)


def carried_update(job_id: int, record: JobRecord, old: RunId, now: float) -> JobUpdate:
    """A job that succeeded in Run `old`, carried over as cached with its outputs."""
    return JobUpdate(
        job_id=job_id,
        status="cached",
        cached=True,
        exit_code=record.exit_code,
        reason=f"carried over from run {old}",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        cache_key=record.cache_key,
        fingerprint=record.fingerprint,
        log_digest=record.log_digest,
        tests=record.tests,
        outputs=record.outputs,
    )


def carried_event(job: QueueJob, record: JobRecord, old: RunId, actor: str, now: float) -> NewEvent:
    data: dict[str, object] = {
        "status": "cached",
        "cached": True,
        "exit_code": record.exit_code,
        "duration_s": 0.0,
        "from_run": old,
    }
    if record.outputs:
        data["outputs"] = {o.path: o.digest for o in record.outputs}
    return job_event(job, "cached", actor, now, **data)


def retry_events(
    old: RunRecord, new: RunId, plan: RetryPlan, actor: str, now: float
) -> list[NewEvent]:
    """The new Run's start, naming the old one, and `run.retried` on the old one, naming it."""
    started: dict[str, object] = {
        "pipeline": old.pipeline_path,
        "spec_digest": old.spec_digest,
        "branch": old.branch,
        "commit": old.commit_sha,
        "jobs": len(old.jobs),
        "targets": list(old.targets),
        "remote": True,
        "retry_of": old.id,
    }
    retried = {"run": new, "retried": list(plan.queued), "carried": len(plan.carried)}
    return [
        NewEvent("run.started", f"run/{new}", actor, now, started),
        NewEvent("run.retried", f"run/{old.id}", actor, now, retried),
    ]

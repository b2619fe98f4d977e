"""What is known about a Run and its JobRuns: values every layer passes around."""

from __future__ import annotations

from typing import ClassVar, Literal, NewType, get_args

from conveyor.core.values import field, frozen

RunId = NewType("RunId", int)

# `queued` (its needs are done; a remote runner may claim it) and `runner_lost` (the runner
# that held it stopped answering, and no retry was left) occur in remote runs only.
JobState = Literal[
    "pending",
    "running",
    "success",
    "failed",
    "timed_out",
    "skipped",
    "canceled",
    "cached",
    "queued",
    "runner_lost",
]
RunStatus = Literal["running", "success", "failed", "canceled", "interrupted"]

JOB_STATES: tuple[JobState, ...] = get_args(JobState)
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
TERMINAL_JOB_STATES: frozenset[JobState] = frozenset(
    {"success", "failed", "timed_out", "skipped", "canceled", "cached", "runner_lost"}
)
# States whose outputs downstream jobs can use.
SATISFIED_JOB_STATES: frozenset[JobState] = frozenset({"success", "cached"})


@frozen
class OutputRecord:
    """One Artifact a job produced: its workspace path and content digest."""

    path: str
    digest: str
    size: int


@frozen
class TestCounts:
    """Test results parsed from a job's JUnit reports."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite its name

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()


@frozen
class AttemptOutcome:
    """One attempt of a JobRun: which runner held it (None: this machine), how it ended.

    `status` is a job state, or `handed_back` (its runner stopped and gave the
    job back: not a failure), or `running` while it is held. Every attempt a
    runner held is kept. A JobRun run by `conveyor run` on this machine keeps
    its attempts only once it is retried, each as it ends, with its part of
    the job's log (where each is marked `--- attempt N of M ---`); a job that
    ran once keeps none: it is its one attempt.
    """

    number: int
    status: str
    runner: str | None
    started_at: float
    finished_at: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_digest: str | None = None
    tests: TestCounts | None = None


@frozen
class JobRecord:
    """One JobRun as stored; `attempt_results` for a JobRun dispatched to runners or retried."""

    id: int
    run_id: RunId
    position: int
    name: str
    base_name: str
    needs: tuple[str, ...]
    status: JobState
    cached: bool
    allow_failure: bool
    exit_code: int | None
    attempts: int
    reason: str | None
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    cache_key: str | None
    fingerprint: dict[str, str] | None
    log_digest: str | None
    tests: TestCounts | None
    outputs: tuple[OutputRecord, ...] = ()
    attempt_results: tuple[AttemptOutcome, ...] = ()


@frozen
class RunRecord:
    """One Run as stored, with its jobs in pipeline order."""

    id: RunId
    project: str
    status: RunStatus
    pipeline_path: str
    spec_digest: str
    workspace: str
    branch: str | None
    commit_sha: str | None
    event: str
    actor: str
    targets: tuple[str, ...]
    host: str
    pid: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    error: str | None
    jobs: tuple[JobRecord, ...] = field(default=())

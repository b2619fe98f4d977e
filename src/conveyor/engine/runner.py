"""The scheduler: starts each job the moment its needs are done, up to N at once.

The scheduler's state lives in this thread only. Jobs run in worker threads
(`JobAttempt`) and report back through one queue; a cancel request (Ctrl-C,
SIGTERM) arrives through the same queue, so it is safe to send from a signal
handler. Every state change is recorded as a JobRun update and an Event.
"""

from __future__ import annotations

import contextlib
import heapq
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import ArtifactError, ConveyorError, ExecutorError, StoreError
from conveyor.core.records import (
    SATISFIED_JOB_STATES,
    JobRecord,
    JobState,
    RunStatus,
)
from conveyor.engine.jobrun import JobAttempt, JobOutcome, RunContext
from conveyor.engine.plan import Plan, upstream_outputs
from conveyor.engine.recorder import Change, Recorder
from conveyor.engine.reporting import Reporter
from conveyor.spec.pipeline import Job
from conveyor.store.runs import JobUpdate

_CANCEL = object()


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    max_parallel: int
    keep_going: bool


class Scheduler:
    """Drives one Run's jobs to terminal states."""

    def __init__(
        self,
        *,
        plan: Plan,
        job_ids: Mapping[str, int],
        ctx: RunContext,
        recorder: Recorder,
        reporter: Reporter,
        clock: Clock,
        actor: str,
        options: SchedulerOptions,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        self._plan = plan
        self._warm_up = warm_up
        self._job_ids = job_ids
        self._ctx = ctx
        self._recorder = recorder
        self._reporter = reporter
        self._clock = clock
        self._actor = actor
        self._options = options
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Set while this thread waits with nothing to do: workers store their
        # results in the cache only then, so that their work does not delay
        # the start of the jobs a finished job lets go (a hint, not a lock).
        self._quiet = threading.Event()
        self._quiet_lock = threading.Lock()  # a report and the scheduler's idle check in turn
        self._by_name = {job.name: job for job in plan.jobs}
        self._position = {job.name: i for i, job in enumerate(plan.jobs)}
        self._waiting = {job.name: set(job.needs) for job in plan.jobs}
        self._state: dict[str, JobState] = {job.name: "pending" for job in plan.jobs}
        self._outcomes: dict[str, JobOutcome] = {}
        self._running: dict[str, JobAttempt] = {}
        self._ready: list[tuple[int, str]] = []
        self._stop_reason: str | None = None
        self._cancel_requested = False
        self.canceled = False
        self.fault: ConveyorError | None = None

    def request_cancel(self) -> None:
        """Ask the Run to stop; safe from a signal handler or any thread."""
        self._cancel_requested = True  # seen before the next job starts
        self._inbox.put(_CANCEL)

    def run(self) -> dict[str, JobOutcome]:
        for job in self._plan.jobs:
            reason = self._plan.skipped.get(job.name)
            if reason is not None and self._state[job.name] == "pending":
                self._settle(job.name, JobOutcome(status="skipped", reason=reason))
        for job in self._plan.jobs:
            if self._state[job.name] == "pending" and not self._waiting[job.name]:
                heapq.heappush(self._ready, (self._position[job.name], job.name))
        # Threads are reused across jobs: starting one per job costs a GIL
        # hand-off on the critical path of every job. A short switch interval
        # lets a thread that was woken by a finished job take the GIL sooner.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            with ThreadPoolExecutor(self._options.max_parallel, thread_name_prefix="job") as pool:
                self._pool = pool
                try:
                    self._loop()
                finally:
                    self._quiet.set()  # no worker may wait on a scheduler that stopped
        finally:
            sys.setswitchinterval(interval)
        self._settle_leftovers()
        return self._outcomes

    def _loop(self) -> None:
        while True:
            self._launch_ready()
            if not self._running:
                return
            self._start_warm_up()
            with self._quiet_lock:
                if self._inbox.empty():
                    self._quiet.set()
            self._handle(self._inbox.get())

    def _start_warm_up(self) -> None:
        """Once the first jobs are started, prepare in the background what the Run ends with.

        The scheduler's thread is idle while jobs run; work done then (such
        as importing what signs the event log) is off the Run's critical path.
        """
        if self._warm_up is not None:
            threading.Thread(
                target=_quietly, args=(self._warm_up,), name="warm-up", daemon=True
            ).start()
            self._warm_up = None

    def _launch_ready(self) -> None:
        """Start every job that can start, then hand their waiting to worker threads.

        Handing a job over wakes a worker (or makes one); done between two
        starts, that worker would compete with the next start for the GIL.
        """
        started: list[tuple[str, JobAttempt]] = []
        try:
            self._start_ready(started)
        finally:
            for name, attempt in started:
                self._pool.submit(self._work, name, attempt)

    def _start_ready(self, started: list[tuple[str, JobAttempt]]) -> None:
        if self._cancel_requested:
            self._handle(_CANCEL)
        while self._ready and self._stop_reason is None:
            if len(self._running) >= self._options.max_parallel:
                return
            _, name = heapq.heappop(self._ready)
            job = self._by_name[name]
            upstream = upstream_outputs(self._plan, job, lambda n: self._outcomes[n].outputs)
            attempt = JobAttempt(self._ctx, job, self._position[name], upstream)
            try:
                hit = attempt.restore()
            except Exception as exc:  # noqa: BLE001 - a fault in one job must not hang the run
                hit = self._fault_outcome(exc)
            if hit is not None:
                self._settle(name, hit)
                continue
            self._running[name] = attempt
            try:
                attempt.begin()
            except Exception as exc:  # noqa: BLE001 - reported like any fault of the job
                self._running.pop(name)
                self._settle(name, self._fault_outcome(exc))
                continue
            started.append((name, attempt))

    def _work(self, name: str, attempt: JobAttempt) -> None:
        reported = False

        def report(outcome: JobOutcome) -> None:
            nonlocal reported
            reported = True
            with self._quiet_lock:
                self._quiet.clear()
                self._inbox.put((name, outcome))

        try:
            attempt.run(report, self._quiet.wait)
        except Exception as exc:  # noqa: BLE001 - a fault in one job must not hang the run
            if not reported:
                report(self._fault_outcome(exc))
            else:
                self._ctx.warn(f"{name}: internal error after it finished: {exc!r}")

    def _fault_outcome(self, exc: Exception) -> JobOutcome:
        """A job that could not be handled: the store, the artifacts or the executor failed.

        Such a fault stops the Run and is raised once it is recorded, so the
        command exits 3 (infrastructure) rather than 1 (the work failed).
        """
        if isinstance(exc, ArtifactError | StoreError | ExecutorError):
            if self.fault is None:
                self.fault = exc
                self._stop_reason = f"an infrastructure fault: {exc}"
            return JobOutcome(status="failed", reason=str(exc))
        return JobOutcome(status="failed", reason=f"internal error: {exc!r}")

    def _handle(self, message: object) -> None:
        if message is _CANCEL:
            if not self.canceled:
                self.canceled = True
                self._stop_reason = "the run was canceled"
                self._ctx.canceled.set()
                for attempt in self._running.values():
                    attempt.cancel()
            return
        assert isinstance(message, tuple)
        name, outcome = message
        del self._running[name]
        self._settle(name, outcome)

    def _settle(self, name: str, outcome: JobOutcome) -> None:
        """Record a terminal outcome and let dependents proceed or skip."""
        job = self._by_name[name]
        self._state[name] = outcome.status
        self._outcomes[name] = outcome
        self._record_final(job, outcome)
        stops = not self._options.keep_going and outcome.status != "skipped"
        if stops and not self._satisfies(job, outcome):
            self._stop_reason = stop_reason(name, outcome.status)
        for dependent in self._plan.dependents.get(name, ()):
            if self._state[dependent] != "pending" or self.canceled:
                continue  # after a cancel, what is left pending ends `canceled`
            if not self._satisfies(job, outcome):
                reason = skip_reason(name, outcome.status)
                self._settle(dependent, JobOutcome(status="skipped", reason=reason))
                continue
            self._waiting[dependent].discard(name)
            if not self._waiting[dependent]:
                heapq.heappush(self._ready, (self._position[dependent], dependent))

    @staticmethod
    def _satisfies(job: Job, outcome: JobOutcome) -> bool:
        return need_satisfied(outcome.status, allow_failure=job.allow_failure)

    def _settle_leftovers(self) -> None:
        for job in self._plan.jobs:
            if self._state[job.name] != "pending":
                continue
            if self.canceled:
                outcome = JobOutcome(status="canceled", reason="the run was canceled")
            else:
                outcome = JobOutcome(status="skipped", reason=not_started(self._stop_reason))
            self._state[job.name] = outcome.status
            self._outcomes[job.name] = outcome
            self._record_final(job, outcome)

    def _record_final(self, job: Job, outcome: JobOutcome) -> None:
        now = self._clock.now()
        if outcome.finished_at is None:
            outcome = replace(outcome, finished_at=now)
            self._outcomes[job.name] = outcome
        data: dict[str, object] = {"status": outcome.status, "cached": outcome.cached}
        for key in ("exit_code", "duration_s", "reason", "cache_key", "attempts"):
            value = getattr(outcome, key)
            if value is not None:
                data[key] = value
        if outcome.outputs:
            data["outputs"] = {o.path: o.digest for o in outcome.outputs}
        record = self.record_of(job, outcome)
        event = NewEvent(f"job.{outcome.status}", self._subject(job), self._actor, now, data)
        self._recorder.record(Change(JobUpdate.final(record), (event,)))
        self._reporter.job_finished(record)

    def record_running(self, job: Job, started_at: float) -> None:
        """Called from a worker thread when a job's script starts."""
        update = JobUpdate(job_id=self._job_ids[job.name], status="running", started_at=started_at)
        event = NewEvent("job.running", self._subject(job), self._actor, started_at, {})
        self._recorder.record(Change(update, (event,)))
        self._reporter.job_started(job.name)

    def record_process(self, job: Job, pid: int) -> None:
        """Called from a worker thread with the process group of a job's attempt."""
        self._recorder.record(Change(JobUpdate(job_id=self._job_ids[job.name], pid=pid)))

    def _subject(self, job: Job) -> str:
        return f"run/{self._ctx.run_id}/job/{job.name}"

    def record_of(self, job: Job, outcome: JobOutcome) -> JobRecord:
        return JobRecord(
            id=self._job_ids[job.name],
            run_id=self._ctx.run_id,
            position=self._position[job.name],
            name=job.name,
            base_name=job.base_name,
            needs=job.needs,
            status=outcome.status,
            cached=outcome.cached,
            allow_failure=job.allow_failure,
            exit_code=outcome.exit_code,
            attempts=outcome.attempts,
            reason=outcome.reason,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            duration_s=outcome.duration_s,
            cache_key=outcome.cache_key,
            fingerprint=outcome.fingerprint,
            log_digest=outcome.log_digest,
            tests=outcome.tests,
            outputs=outcome.outputs,
        )


def _quietly(work: Callable[[], None]) -> None:
    """Warm-up work: what fails here fails again, and is reported, where it is needed."""
    with contextlib.suppress(Exception):
        work()


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


def not_started(reason: str | None) -> str:
    """Why a job was never started once the Run stopped for `reason`."""
    return f"not started: {reason} (--keep-going runs independent jobs)"


def run_status(plan: Plan, outcomes: Mapping[str, JobOutcome], *, canceled: bool) -> RunStatus:
    """`canceled`, `failed` when a job failed that may not, else `success`."""
    if canceled:
        return "canceled"
    for job in plan.jobs:
        outcome = outcomes[job.name]
        if outcome.status in ("failed", "timed_out") and not job.allow_failure:
            return "failed"
    return "success"

"""The scheduler: starts each job the moment its needs are done, up to N at once.

The scheduler's state lives in the thread that calls `run()`, which turns
the Run's event loop (`engine/job_loop.py`): it waits on the running jobs
themselves, so a job that ends lets its dependents start without a hand-off
between threads. Work that may take long (reading test reports, hashing
outputs, writing cache entries) goes to worker threads, which post what the
scheduler is to do next to the loop; so does a cancel request (Ctrl-C,
SIGTERM), which is safe to send from a signal handler. Every state change is
recorded as a JobRun update and an Event.
"""

from __future__ import annotations

import contextlib
import heapq
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import ParamSpec

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import ArtifactError, ConveyorError, ExecutorError, StoreError
from conveyor.core.records import AttemptOutcome, JobRecord, JobState
from conveyor.core.values import compile_pending, frozen, replace
from conveyor.engine.job_loop import JobLoop, import_workers
from conveyor.engine.jobrun import JobAttempt, JobOutcome, RunContext
from conveyor.engine.locks import JobLocks
from conveyor.engine.plan import Plan, upstream_outputs
from conveyor.engine.recorder import Change, Recorder
from conveyor.engine.reporting import Reporter
from conveyor.engine.run_rules import (
    need_satisfied,
    not_started,
    shared_output,
    skip_reason,
    stop_reason,
)
from conveyor.executors.base import ExecResult
from conveyor.spec.paths import named_file
from conveyor.spec.pipeline import Job
from conveyor.store.runs import JobUpdate

_P = ParamSpec("_P")
# Cache entries are written once no job has ended for _QUIET_S, or at the
# latest _STORE_WITHIN_S after the oldest one waiting was made.
_QUIET_S, _STORE_WITHIN_S = 0.005, 0.25
# How often a job another Run of the workspace holds is tried again.
_BLOCKED_POLL_S = 0.05
# The lock of a file a job names as an output, beside the jobs' own (job names hold no NUL).
_FILE = "\0file\0"


@frozen
class SchedulerOptions:
    """How many jobs may run at once, and whether a failure stops the Run."""

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
        job_locks: JobLocks | None = None,
    ) -> None:
        self._plan = plan
        # A job runs in one Run of the workspace at a time; one that another Run holds
        # waits (blocked), then most likely restores that Run's result from the cache.
        self._locks = job_locks
        self._blocked: dict[str, None] = {}
        self._blocked_said: set[str] = set()
        self._blocked_since = 0.0
        self._produced: dict[str, list[str]] = {}  # an output's path -> the jobs that made it
        # In order: what the first jobs' ends need, then what the Run's end needs.
        self._warm_up: list[Callable[[], None]] | None = [compile_pending, import_workers]
        if warm_up is not None:
            self._warm_up.append(warm_up)
        self._warm_up.append(compile_pending)  # the classes of what was imported since
        self._job_ids = job_ids
        self._ctx = ctx
        self._recorder = recorder
        self._reporter = reporter
        self._clock = clock
        self._actor = actor
        self._options = options
        self._jobs = JobLoop(
            max_workers=options.max_parallel,
            on_result=lambda name, result: self._guarded(name, self._ended, name, result),
            on_fault=lambda name, exc: self._guarded(name, self._fault, name, exc),
        )
        self._by_name = {job.name: job for job in plan.jobs}
        self._position = {job.name: i for i, job in enumerate(plan.jobs)}
        self._waiting = {job.name: set(job.needs) for job in plan.jobs}
        self._state: dict[str, JobState] = {job.name: "pending" for job in plan.jobs}
        self._outcomes: dict[str, JobOutcome] = {}
        # Each settled job as recorded, and the attempts of each retried job kept so far:
        # the Run's record at its end, without reading back what was just written.
        self._records: dict[str, JobRecord] = {}
        self._kept: dict[str, list[AttemptOutcome]] = {}
        self._unrecorded: deque[tuple[str, Callable[[], object]]] = deque()  # see _later
        # Started and not yet settled: running, waiting to retry, or being judged.
        self._running: dict[str, JobAttempt] = {}
        self._retries: list[tuple[float, str]] = []  # (monotonic time, job), a heap
        # Retries whose time came while every slot was taken: first to start when one frees.
        # A job waiting out its backoff holds no slot (`_executing`).
        self._due: deque[str] = deque()
        self._locked: dict[str, tuple[str, ...]] = {}  # see _lock_names
        self._to_store: list[tuple[str, JobAttempt, JobOutcome]] = []
        self._to_store_since = 0.0
        self._last_end = 0.0
        self._ready: list[tuple[int, str]] = []
        self._stop_reason: str | None = None
        self._cancel_requested = False
        self.canceled = False
        self.fault: ConveyorError | None = None

    def request_cancel(self) -> None:
        """Ask the Run to stop; safe from a signal handler or any thread."""
        self._cancel_requested = True  # seen before the next job starts
        self._jobs.post(self._cancel)

    def run(self) -> dict[str, JobOutcome]:
        for job in self._plan.jobs:
            reason = self._plan.skipped.get(job.name)
            if reason is not None and self._state[job.name] == "pending":
                self._settle(job.name, JobOutcome(status="skipped", reason=reason))
        for job in self._plan.jobs:
            if self._state[job.name] == "pending" and not self._waiting[job.name]:
                heapq.heappush(self._ready, (self._position[job.name], job.name))
        # A worker thread that holds the GIL delays the loop by up to this interval.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            with self._jobs:
                try:
                    self._loop()
                except BaseException:
                    for attempt in self._running.values():  # the loop abandons what it watches
                        with contextlib.suppress(Exception):
                            attempt.cancel()
                    raise
        finally:
            sys.setswitchinterval(interval)
            if self._locks is not None:
                self._locks.release_all()  # the workers storing cache entries are done
        self._settle_leftovers()
        self._record_pending()
        return self._outcomes

    def _loop(self) -> None:
        try:
            while True:
                self._start_ready()
                self._record_pending()
                if not self._running and not self._still_blocked():
                    self._write_cache_entries()
                    return
                self._start_warm_up()
                self._jobs.turn(self._idle)
                self._on_time()
        finally:
            self._record_pending()  # what happened before the loop was left, however

    def _idle(self) -> float | None:
        """Nothing to act on: write cache entries if the jobs went quiet; when to look again.

        Jobs tend to end in bursts (a layer of the graph). Cache entries are
        written in a worker thread once no job has ended for a moment, so
        that this work does not compete with starting the jobs of the burst;
        at once when every job has started (no start to compete with: the
        last jobs' entries are written while the others still run).
        """
        wakes = [when for when, _ in self._retries[:1]]
        if self._still_blocked():
            wakes.append(self._blocked_since + _BLOCKED_POLL_S)
        if self._to_store:
            quiet_at = min(self._last_end + _QUIET_S, self._to_store_since + _STORE_WITHIN_S)
            all_started = len(self._outcomes) + len(self._running) == len(self._state)
            if all_started or time.monotonic() >= quiet_at:
                self._write_cache_entries()
            else:
                wakes.append(quiet_at)
        return min(wakes, default=None)

    def _on_time(self) -> None:
        """Write cache entries that waited too long, and start the retries that are due."""
        now = time.monotonic()
        if self._to_store and now >= self._to_store_since + _STORE_WITHIN_S:
            self._write_cache_entries()  # jobs that never pause their output do not hold it up
        while self._retries and self._retries[0][0] <= now:
            self._due.append(heapq.heappop(self._retries)[1])
        self._start_due()
        if self._blocked and now >= self._blocked_since + _BLOCKED_POLL_S:
            for name in self._blocked:  # ready again: each tries its lock anew
                heapq.heappush(self._ready, (self._position[name], name))
            self._blocked.clear()

    def _still_blocked(self) -> bool:
        """Whether jobs wait for another Run's, and this Run would still start them."""
        return bool(self._blocked) and self._stop_reason is None and not self._cancel_requested

    def _take(self, name: str) -> bool:
        """Hold the job's lock, and those of the files it names as outputs, or note it
        blocked (said once) until another Run lets go.

        Two Runs writing one file at once would tear it, and each would cache
        what it saw: a Run that names a file another Run's job is writing waits
        for it, as for a job the other Run is running.
        """
        if self._locks is None:
            return True
        holder = self._locks.take_all(self._lock_names(name))
        if holder is None:
            return True
        if not self._blocked:
            self._blocked_since = time.monotonic()
        self._blocked[name] = None
        if name not in self._blocked_said:
            self._blocked_said.add(name)
            what = "running it" if holder == name else f"writing {holder.removeprefix(_FILE)}"
            self._ctx.warn(
                f"{name}: another run in this workspace is {what}; waiting for it to end"
            )
        return False

    def _release(self, name: str) -> None:
        if self._locks is not None:
            for held in self._lock_names(name):
                self._locks.release(held)

    def _lock_names(self, name: str) -> tuple[str, ...]:
        """The locks a job takes: its own, and one for each file it names as an output."""
        names = self._locked.get(name)
        if names is None:
            job = self._by_name[name]
            files = (named_file(job.workdir, pattern) for pattern in job.outputs)
            names = self._locked[name] = (name, *(_FILE + f for f in dict.fromkeys(files) if f))
        return names

    def _start_warm_up(self) -> None:
        """Once the first jobs are started, prepare in the background what the Run ends with.

        The scheduler's thread is idle while jobs run; work done then (such
        as importing what signs the event log) is off the Run's critical path.
        """
        if self._warm_up is not None:
            threading.Thread(
                target=_quietly, args=self._warm_up, name="warm-up", daemon=True
            ).start()
            self._warm_up = None

    def _executing(self) -> int:
        """The jobs that take a slot of --jobs: started, and not waiting to retry."""
        return len(self._running) - len(self._retries) - len(self._due)

    def _start_due(self) -> None:
        """Start the retries whose time has come, while a slot is free."""
        while self._due and self._stop_reason is None and not self._cancel_requested:
            if self._executing() >= self._options.max_parallel:
                return
            name = self._due.popleft()
            attempt = self._running[name]
            self._guarded(name, self._begin, name, attempt, attempt.retry)

    def _start_ready(self) -> None:
        """Start every job that can start: from the cache, or as an execution to watch."""
        if self._cancel_requested:
            self._cancel()
        self._start_due()
        while self._ready and self._stop_reason is None and not self._cancel_requested:
            if self._executing() >= self._options.max_parallel:
                return
            _, name = heapq.heappop(self._ready)
            job = self._by_name[name]
            upstream = upstream_outputs(self._plan, job, lambda n: self._outcomes[n].outputs)
            attempt = JobAttempt(self._ctx, job, self._position[name], upstream)
            try:
                # A hit of a job with outputs writes them: not while another Run's runs, so
                # its lock comes first; a job without only needs it to run.
                locked_first = bool(job.outputs)
                if locked_first and not self._take(name):
                    continue
                refuse = partial(self._shared_output, name)  # checked before a file is written
                hit = attempt.restore(refuse)
                if hit is None and not locked_first:
                    if not self._take(name):
                        continue
                    hit = attempt.restore_again(refuse)  # another Run may have just stored it
            except Exception as exc:  # noqa: BLE001 - a fault in one job must not hang the run
                hit = self._fault_outcome(exc)
            if hit is not None:
                self._release(name)
                self._register_outputs(name, hit)  # `refuse` checked them before the restore
                self._settle(name, hit)
                # A hit starts no process to hurry, and may take a while (its outputs
                # written): what happened so far is shown, and recorded, as it goes.
                self._record_pending()
                continue
            self._running[name] = attempt
            self._guarded(name, self._begin, name, attempt, attempt.begin)

    def _begin(self, name: str, attempt: JobAttempt, start: Callable[[], None]) -> None:
        """Start an attempt with `start`, then wait on it: in this loop, or in a worker thread."""
        start()
        execution = attempt.execution
        if execution is None:  # canceled before it began
            self._ended(name, ExecResult("canceled", None, 0.0, "canceled"))
        else:
            self._jobs.watch(name, execution)

    def _ended(self, name: str, result: ExecResult) -> None:
        """An attempt ended: judge it here when that is cheap, else in a worker thread."""
        self._last_end = time.monotonic()
        attempt = self._running[name]
        if attempt.light:
            self._guarded(name, lambda: self._judged(name, attempt.ended(result)))
        else:
            self._jobs.in_worker(self._judge_in_worker, name, attempt, result)

    def _judge_in_worker(self, name: str, attempt: JobAttempt, result: ExecResult) -> None:
        try:
            verdict = attempt.ended(result)
        except Exception as exc:  # noqa: BLE001 - reported like any fault of the job
            self._jobs.post(partial(self._guarded, name, self._fault, name, exc))
        else:
            self._jobs.post(partial(self._guarded, name, self._judged, name, verdict))

    def _fault(self, name: str, exc: Exception) -> None:
        outcome = self._fault_outcome(exc)
        attempt = self._running.get(name)
        if attempt is None:  # a job waiting to retry: the fault stopped the Run, which gave it up
            return
        if attempt.execution is not None:  # a fault while it ran: nothing of it may be left
            self._jobs.abandon(attempt.execution)
        self._finish(name, attempt.faulted(outcome))

    def _judged(self, name: str, verdict: JobOutcome | float) -> None:
        attempt = self._running[name]
        if isinstance(verdict, JobOutcome):
            verdict = self._one_producer(name, verdict)
            self._finish(name, verdict)
            if self._stores(name, verdict):
                if not self._to_store:
                    self._to_store_since = time.monotonic()
                self._to_store.append((name, attempt, verdict))
        elif self.canceled or self._stop_reason is not None:
            self._guarded(name, self._give_up, name, attempt)
        else:
            self._record_retrying(self._by_name[name], attempt, verdict)
            heapq.heappush(self._retries, (time.monotonic() + verdict, name))

    def _give_up(self, name: str, attempt: JobAttempt) -> None:
        """End a job whose next attempt is not to come: the Run was canceled or stops."""
        self._finish(name, attempt.give_up(None if self.canceled else self._stop_reason))

    def _stop(self, reason: str) -> None:
        """Start no more jobs, nor attempts: those waiting to retry end now."""
        if self._stop_reason is None:
            self._stop_reason = reason
        waiting = [name for _, name in self._retries] + list(self._due)
        self._retries.clear()
        self._due.clear()
        for name in waiting:
            self._guarded(name, self._give_up, name, self._running[name])

    def _guarded(
        self, name: str, step: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs
    ) -> None:
        """Run one step of a job's handling; a fault in it ends that job, not the loop."""
        try:
            step(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a fault in one job must not hang the run
            if name in self._running:
                self._fault(name, exc)
            else:  # its outcome is settled; an infrastructure fault still stops the Run
                self._fault_outcome(exc)
                self._ctx.warn(f"{name}: internal error after it finished: {exc!r}")

    def _one_producer(self, name: str, outcome: JobOutcome) -> JobOutcome:
        """`outcome`, failed when one of its outputs is another job's it does not need.

        Each would keep its own copy of the file, and a cache hit of one would
        put it back over the other's: a file has one producer. (Along `needs`
        a job may rewrite a file a job it needs wrote.)
        """
        if not outcome.outputs or outcome.status != "success":
            return outcome
        reason = self._shared_output(name, [output.path for output in outcome.outputs])
        if reason is not None:  # failed, it has no artifacts: the file is the other job's
            return replace(outcome, status="failed", reason=reason, outputs=())
        self._register_outputs(name, outcome)
        return outcome

    def _register_outputs(self, name: str, outcome: JobOutcome) -> None:
        """Note the files a job that succeeded (or was restored) produced."""
        if outcome.status in ("success", "cached"):
            for output in outcome.outputs:
                self._produced.setdefault(output.path, []).append(name)

    def _shared_output(self, name: str, paths: Iterable[str]) -> str | None:
        """Why `name` may not have these outputs: another job of the Run made one, and
        `name` does not need it; None when it may."""
        above = self._plan.producers[name]
        for path in paths:
            for other in self._produced.get(path, ()):
                if other != name and other not in above:
                    return shared_output(path, other)
        return None

    def _stores(self, name: str, outcome: JobOutcome) -> bool:
        """Whether the job's outcome goes to the cache (its lock is held until it has)."""
        return outcome.status == "success" and self._by_name[name].cache

    def _finish(self, name: str, outcome: JobOutcome) -> None:
        attempt = self._running.pop(name)
        if attempt.execution is not None:  # a fault while it ran: nothing of it may be left
            self._jobs.abandon(attempt.execution)
        if not self._stores(name, outcome):
            self._release(name)
        # A log that could not be stored (a fault) stays live.
        self._settle(name, outcome, then=attempt.forget_live_log if outcome.log_digest else None)

    def _write_cache_entries(self) -> None:
        """Hand the finished jobs' cache entries to one worker thread, to write in turn."""
        if self._to_store:
            self._jobs.in_worker(self._store_in_worker, self._to_store)
            self._to_store = []

    def _store_in_worker(self, entries: list[tuple[str, JobAttempt, JobOutcome]]) -> None:
        for name, attempt, outcome in entries:
            try:
                attempt.store(outcome)
            except Exception as exc:  # noqa: BLE001 - the job's outcome is already recorded
                self._ctx.warn(f"internal error while caching a job's result: {exc!r}")
            finally:
                self._release(name)  # a Run waiting for the job finds the entry

    def _cancel(self) -> None:
        if self.canceled:
            return
        self.canceled = True
        for attempt in self._running.values():
            attempt.cancel()
        self._stop("the run was canceled")

    def _fault_outcome(self, exc: Exception) -> JobOutcome:
        """A job that could not be handled: the store, the artifacts or the executor failed.

        Such a fault stops the Run, even with --keep-going: the jobs still
        running are canceled, as their results could not be kept either. It
        is raised once the Run is recorded, so the command exits 3
        (infrastructure) rather than 1 (the work failed).
        """
        if isinstance(exc, ArtifactError | StoreError | ExecutorError):
            if self.fault is None:
                self.fault = exc
                for attempt in self._running.values():
                    attempt.cancel("canceled: an infrastructure fault stopped the run")
                self._stop(f"an infrastructure fault: {exc}")
            return JobOutcome(status="failed", reason=self._ctx.masker.mask(str(exc)))
        # Its text may hold anything the job was given: a secret is masked, as in its log.
        return JobOutcome(status="failed", reason=self._ctx.masker.mask(f"internal error: {exc!r}"))

    def _settle(
        self, name: str, outcome: JobOutcome, *, then: Callable[[], None] | None = None
    ) -> None:
        """Record a terminal outcome (and do `then` once it is stored); let dependents proceed
        or skip."""
        job = self._by_name[name]
        self._state[name] = outcome.status
        self._outcomes[name] = outcome
        self._record_final(job, outcome, then)
        stops = not self._options.keep_going and outcome.status != "skipped"
        stops = stops and not self._satisfies(job, outcome)
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
        if stops:  # after its dependents: they are skipped for this job, not for one given up
            self._stop(stop_reason(name, outcome.status))

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
                reason = not_started(self._stop_reason, keep_going_helps=self.fault is None)
                outcome = JobOutcome(status="skipped", reason=reason)
            self._state[job.name] = outcome.status
            self._outcomes[job.name] = outcome
            self._record_final(job, outcome)

    def _record_final(
        self, job: Job, outcome: JobOutcome, then: Callable[[], None] | None = None
    ) -> None:
        now = self._clock.now()
        if outcome.finished_at is None:
            outcome = replace(outcome, finished_at=now)
            self._outcomes[job.name] = outcome
        self._later(job.name, partial(self._write_final, job, outcome, now, then))

    def _write_final(
        self, job: Job, outcome: JobOutcome, now: float, then: Callable[[], None] | None
    ) -> None:
        data: dict[str, object] = {"status": outcome.status, "cached": outcome.cached}
        for key in ("exit_code", "duration_s", "reason", "cache_key", "attempts"):
            value = getattr(outcome, key)
            if value is not None:
                data[key] = value
        if outcome.outputs:
            data["outputs"] = {o.path: o.digest for o in outcome.outputs}
        record = self.record_of(job, outcome)
        event = NewEvent(f"job.{outcome.status}", self._subject(job), self._actor, now, data)
        self._recorder.record(Change(JobUpdate.final(record, outcome.attempt), (event,), then))
        kept = self._kept.pop(job.name, [])
        if outcome.attempt is not None:
            kept.append(outcome.attempt)
        self._records[job.name] = replace(record, attempt_results=tuple(kept)) if kept else record
        self._reporter.job_finished(record)

    def records(self) -> tuple[JobRecord, ...]:
        """Every job of the Run as recorded, in pipeline order (once `run()` returned).

        The same records the store holds once the Recorder has written them;
        tests/integration/engine/harness.py checks so after every Run.
        """
        return tuple(self._records[job.name] for job in self._plan.jobs)

    def _later(self, name: str, step: Callable[[], object]) -> None:
        """Record a state change of job `name` once the jobs that can start now have started.

        A job that ends lets its dependents start: building its record and
        Event, queueing them for the Recorder and telling the Reporter (about
        0.1 ms a job) would delay each start in a burst of ends by that much
        for every job ahead of it. Changes are recorded in the order they
        happened, so a job's end still comes before its dependents' starts.
        """
        self._unrecorded.append((name, step))

    def _record_pending(self) -> None:
        """Record the state changes `_later` kept, in order (a fault in one faults its job)."""
        # One at a time: what an interruption leaves is still here for the next call. A
        # job faulted here is settled, and its end recorded, after what came before.
        while self._unrecorded:
            name, step = self._unrecorded.popleft()
            self._guarded(name, step)

    def record_running(self, job: Job, started_at: float, pid: int | None) -> None:
        """Called on the loop's thread once a job's first attempt started (as process `pid`)."""
        self._later(job.name, partial(self._write_running, job, started_at, pid))

    def _write_running(self, job: Job, started_at: float, pid: int | None) -> None:
        job_id = self._job_ids[job.name]
        update = JobUpdate(
            job_id=job_id, status="running", attempts=1, started_at=started_at, pid=pid
        )
        event = NewEvent("job.running", self._subject(job), self._actor, started_at, {})
        self._recorder.record(Change(update, (event,)))
        self._reporter.job_started(job.name)

    def _record_retrying(self, job: Job, attempt: JobAttempt, delay_s: float) -> None:
        """An attempt ended and the job is to be retried: keep the attempt, say so in an Event."""
        ended = attempt.take_retried()
        self._kept.setdefault(job.name, []).append(ended)
        self._later(job.name, partial(self._write_retrying, job, ended, delay_s, self._clock.now()))

    def _write_retrying(self, job: Job, ended: AttemptOutcome, delay_s: float, now: float) -> None:
        data: dict[str, object] = {
            "status": "retrying",
            "attempt": ended.number,
            "after": ended.status,
            "delay_s": delay_s,
        }
        event = NewEvent("job.retrying", self._subject(job), self._actor, now, data)
        update = JobUpdate(job_id=self._job_ids[job.name], attempt=ended)
        self._recorder.record(Change(update, (event,)))
        self._reporter.job_retrying(job.name, ended, delay_s)

    def record_retry(self, job: Job, number: int, pid: int | None) -> None:
        """Called on the loop's thread once attempt `number` of a job started (as `pid`)."""
        update = JobUpdate(job_id=self._job_ids[job.name], attempts=number, pid=pid)
        self._later(job.name, partial(self._recorder.record, Change(update)))

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


def _quietly(*works: Callable[[], None]) -> None:
    """Warm-up work: what fails here fails again, and is reported, where it is needed."""
    for work in works:
        with contextlib.suppress(Exception):
            work()

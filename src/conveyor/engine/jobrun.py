"""One job of a Run, from cache key to stored result, in steps the scheduler drives.

A JobAttempt computes the job's fingerprint, restores it from the cache when
it can, else starts its script; when an attempt ends it judges it (exit
code, test reports, declared outputs) and either asks for a retry after a
delay or concludes with an outcome value, its log stored. The scheduler
alone decides what that outcome means for the rest of the Run, and when the
result is written to the cache.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.artifacts.cache import CachedOutput, CacheEntry, Corrupt, JobCache
from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock
from conveyor.core.errors import ArtifactError
from conveyor.core.masking import Masker
from conveyor.core.records import AttemptOutcome, JobState, OutputRecord, RunId, TestCounts
from conveyor.core.values import frozen, mutable, replace
from conveyor.engine import fingerprint as fp_module
from conveyor.engine.keys import KeyMaker
from conveyor.engine.logs import JobLog, attempt_marker
from conveyor.engine.outputs import Expanded, expand, output_problem, store_outputs
from conveyor.engine.run_rules import not_retried, not_retried_note
from conveyor.executors.base import ExecRequest, ExecResult, Execution, Executor
from conveyor.spec.pipeline import Job

if TYPE_CHECKING:
    from conveyor.reports.junit import TestSummary


@frozen
class JobOutcome:
    """How a job ended, with everything to store about it."""

    status: JobState
    cached: bool = False
    exit_code: int | None = None
    attempts: int = 0
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    cache_key: str | None = None
    fingerprint: dict[str, str] | None = None
    log_digest: str | None = None
    tests: TestCounts | None = None
    outputs: tuple[OutputRecord, ...] = ()
    explanation: tuple[str, ...] = ()
    # The last attempt of a retried job, kept as its own (earlier ones were, as they ended).
    attempt: AttemptOutcome | None = None


@frozen
class _Verdict:
    """How one attempt ended, judged: its status and why, with its tests and outputs."""

    status: JobState
    reason: str | None
    exit_code: int | None = None
    tests: TestCounts | None = None
    outputs: tuple[OutputRecord, ...] = ()


PreviousFingerprint = Callable[[str], dict[str, str] | None]

# A log larger than this is compressed and stored in a thread of its own.
_LIGHT_LOG_BYTES = 256 << 10


# Why a cached entry's outputs (their paths) must not be restored, or None.
Refusal = Callable[[list[str]], str | None]


@mutable
class RunContext:
    """What every job of one Run shares."""

    root: Path
    logs_dir: Path
    run_id: RunId
    keys: KeyMaker
    cas: ContentStore
    cache: JobCache
    executor: Executor
    masker: Masker
    clock: Clock
    base_env: Mapping[str, str]
    use_cache: bool
    explain: bool
    previous: PreviousFingerprint
    on_line: Callable[[str, str], None]
    warn: Callable[[str], None]
    state_dir: Path | None = None  # Conveyor's own, when not the workspace's .conveyor/
    on_running: Callable[[Job, float, int | None], None] = lambda _job, _at, _pid: None
    on_retry: Callable[[Job, int, int | None], None] = lambda _job, _number, _pid: None


class JobAttempt:
    """Runs one job to an outcome; `cancel()` may be called from any thread."""

    def __init__(
        self,
        ctx: RunContext,
        job: Job,
        position: int,
        upstream: Mapping[str, tuple[OutputRecord, ...]],
    ) -> None:
        self._ctx = ctx
        self._job = job
        self._position = position
        self._upstream = upstream
        self._lock = threading.Lock()
        self._execution: Execution | None = None
        self._canceled = False
        self._cancel_reason: str | None = None
        self._fingerprint: dict[str, str] = {}
        self._key = ""
        self._log: JobLog | None = None
        self._started_at = 0.0
        self._attempts = 0
        self._delay = 0.0  # before the next attempt, as `ended()` decided it
        self._last: _Verdict | None = None  # the attempt that ended, while a retry waits
        self._attempt_started = 0.0
        self._attempt_mark = 0  # where the running attempt's part of the log begins
        # The attempt that ended asking for a retry, kept (its part of the log stored where
        # it was judged, off the scheduler's thread for a heavy job) until it is recorded.
        self._retried: AttemptOutcome | None = None
        self._recorded = 0  # the last attempt recorded as retried
        self._before: dict[str, tuple[int, int, int]] = {}
        self._modes: dict[str, int] = {}  # of the outputs, as the job left them

    def cancel(self, reason: str | None = None) -> None:
        """Stop the job: no further attempt; the running one ends `canceled` (with `reason`)."""
        with self._lock:
            self._canceled = True
            self._cancel_reason = reason
            if self._execution is not None:
                self._execution.cancel()

    def restore(self, refuse: Refusal | None = None) -> JobOutcome | None:
        """Compute the cache key; the cached outcome when the cache has it.

        `refuse(paths)` may say why the entry's outputs must not be written
        (before any is): the outcome is then that failure, restored nothing.
        Called on the scheduler's thread: a hit costs well under a
        millisecond, less than handing the job to a thread of its own.
        """
        job, ctx = self._job, self._ctx
        self._fingerprint = ctx.keys.fingerprint(job, self._upstream)
        self._key = fp_module.cache_key(self._fingerprint)
        if job.cache and ctx.use_cache:
            return self._from_cache(self._key, refuse)
        return None

    def restore_again(self, refuse: Refusal | None = None) -> JobOutcome | None:
        """The cached outcome another Run stored since `restore()` missed, if it did."""
        if self._job.cache and self._ctx.use_cache:
            return self._from_cache(self._key, refuse)
        return None

    def begin(self) -> None:
        """Start the job's first attempt (after a `restore()` that missed)."""
        job, ctx = self._job, self._ctx
        assert self._key, "restore() computes the key before begin()"
        self._log = JobLog(
            ctx.logs_dir / f"{self._position:04d}.log",
            ctx.masker,
            lambda line: ctx.on_line(job.name, line),
        )
        pid = self._spawn(self._log)
        self._started_at = self._attempt_started  # the job's start is its first attempt's
        # Recorded once started: one state change per job carries the state and the process.
        ctx.on_running(job, self._started_at, pid)

    @property
    def execution(self) -> Execution | None:
        """The attempt running now; None once it ended, or when it was canceled before it began."""
        return self._execution

    @property
    def light(self) -> bool:
        """Whether judging and concluding this job costs next to nothing.

        Such a job is concluded on the scheduler's thread; one with test
        reports or outputs to read and hash, a large log to compress, or an
        explanation to work out, in a thread of its own.
        """
        job, log = self._job, self._log
        return not (
            job.outputs
            or job.reports_junit
            or self._ctx.explain
            or (log is not None and log.size > _LIGHT_LOG_BYTES)
        )

    def ended(self, result: ExecResult) -> JobOutcome | float:
        """Judge the attempt that ended with `result`.

        Returns the job's outcome, or the delay in seconds before its next
        attempt (then call `retry()`, or `give_up()` if the Run was canceled).
        Each attempt of a job that is retried is kept as its own, with its part
        of the log: the one to be retried by `take_retried()` (or with the
        outcome, if the retry is not to come), the last one in the outcome.
        """
        log = self._log
        assert log is not None, "begin() comes first"
        with self._lock:
            self._execution = None
        if result.detail and result.outcome != "exited":
            log.note(f"--- {result.detail} ---")
        verdict = self._judge(result, log)
        if verdict.status == "canceled" and self._cancel_reason:
            verdict = replace(verdict, reason=self._cancel_reason)
        retry = self._job.retry
        last = verdict.status in ("success", "canceled") or self._canceled
        if last or self._attempts > retry.max:
            return self._conclude(verdict, self._kept(verdict, log) if self._attempts > 1 else None)
        if verdict.reason and result.outcome == "exited":  # a timeout's detail is noted above
            # Said when the attempt ends: the next one may be a long backoff away.
            log.note(f"--- attempt {self._attempts} failed: {verdict.reason} ---")
        self._last = verdict
        self._retried = self._kept(verdict, log)
        self._delay = retry.delay_before(self._attempts + 1)
        return self._delay

    def take_retried(self) -> AttemptOutcome:
        """The attempt that ended, to record with its retry (once)."""
        taken, self._retried = self._retried, None
        assert taken is not None, "ended() asked for a retry"
        self._recorded = taken.number
        return taken

    def retry(self) -> None:
        """Start the next attempt, once the delay `ended()` asked for is over."""
        log = self._log
        assert log is not None, "begin() comes first"
        log.note(attempt_marker(self._attempts + 1, self._job.retry.max + 1, self._delay))
        pid = self._spawn(log)
        # Counted as it starts: a JobRun's attempts, and its process group, read while it runs.
        self._ctx.on_retry(self._job, self._attempts, pid)

    def give_up(self, stopped: str | None = None) -> JobOutcome:
        """The outcome of a job whose retry is not to come, as it waits for it.

        Canceled when the Run was; when the Run stops for `stopped` (another
        job failed, without --keep-going), the attempt that ended stands.
        """
        last = self._last
        # Not recorded as retried (the Run stopped as it ended): kept with the end, unless
        # it is the job's only attempt.
        ended = self._retried if self._attempts > 1 else None
        if stopped is None or last is None:
            return self._conclude(_Verdict("canceled", "canceled while waiting to retry"), ended)
        assert self._log is not None, "an attempt ended before"
        self._log.note(not_retried_note(stopped))
        return self._conclude(replace(last, reason=not_retried(last.reason, stopped)), ended)

    def faulted(self, outcome: JobOutcome) -> JobOutcome:
        """`outcome` (a fault in handling this job), with the job's log stored when it can be.

        Its execution is abandoned by the caller. The fault is noted at the
        end of the log; when the store cannot take the log either, the live
        file stays, and `conveyor logs` reads that.
        """
        with self._lock:
            self._execution = None
        log = self._log
        if log is None:  # it never started
            return outcome
        kept = replace(outcome, attempts=self._attempts, started_at=self._started_at)
        try:
            log.note(f"--- stopped by a fault: {outcome.reason} ---")
            log.close()
            if self._attempts > max(1, self._recorded):  # a retried job's last attempt
                # As it ended, if it did; else as the fault stopped it.
                last = self._retried or self._kept(_Verdict("failed", outcome.reason), log)
                kept = replace(kept, attempt=last)
            blob = self._ctx.cas.put_stream(log.compressed())
        except Exception:  # noqa: BLE001 - already a fault; the live log is what is left
            return kept
        return replace(kept, log_digest=blob.digest)

    def forget_live_log(self) -> None:
        """Remove the live log, once the JobRun naming its stored copy is recorded.

        Until then a reader (`conveyor logs --follow`, from another process)
        finds the live file; after, the stored log.
        """
        if self._log is not None:
            self._log.discard()

    def store(self, outcome: JobOutcome) -> None:
        """Write a successful outcome to the cache; a failure to do so is a warning."""
        try:
            self._store(outcome, self._key, self._fingerprint)
        except (ArtifactError, OSError) as exc:
            self._ctx.warn(f"{self._job.name}: could not store its result in the cache: {exc}")

    def _from_cache(self, key: str, refuse: Refusal | None = None) -> JobOutcome | None:
        ctx = self._ctx
        found = ctx.cache.lookup(key)
        if isinstance(found, Corrupt):
            ctx.warn(f"{self._job.name}: cache entry was corrupt ({found.reason}); removed it")
            return None
        if found is None:
            return None
        if found.log_digest is not None and not ctx.cas.has(found.log_digest):
            return None
        why = None if refuse is None else refuse([out.path for out in found.outputs])
        if why is not None:
            return JobOutcome(status="failed", reason=why, cache_key=key)
        try:
            ctx.cache.restore(found, ctx.root)
        except ArtifactError as exc:
            ctx.warn(f"{self._job.name}: cached output was corrupt ({exc}); running the job")
            return None
        now = ctx.clock.now()
        tests = found.tests
        return JobOutcome(
            status="cached",
            cached=True,
            exit_code=found.exit_code,
            started_at=now,
            finished_at=now,
            duration_s=0.0,
            cache_key=key,
            fingerprint=dict(found.fingerprint),
            log_digest=found.log_digest,
            tests=tests,
            outputs=tuple(OutputRecord(o.path, o.digest, o.size) for o in found.outputs),
        )

    def _explain(self, fingerprint: dict[str, str]) -> tuple[str, ...]:
        if not self._job.cache:  # it runs whatever changed, as `--dry-run` says
            return ("the job opts out of the cache (cache: false)",)
        previous = self._ctx.previous(self._job.name)
        if previous is None:
            return ("no earlier cached execution of this job",)
        if fp_module.cache_key(previous) == fp_module.cache_key(fingerprint):
            if not self._ctx.use_cache:
                return ("nothing changed; --no-cache forced it to run",)
            return ("nothing changed, but the cache entry is gone (pruned or corrupt)",)
        changes = fp_module.diff(previous, fingerprint, self._ctx.keys.load_listing)
        # A file's name may hold a secret's value.
        return tuple(self._ctx.masker.mask(change.text) for change in changes)

    def _kept(self, verdict: _Verdict, log: JobLog) -> AttemptOutcome:
        """The attempt that just ended, as its own record, with its part of the log stored."""
        ctx = self._ctx
        finished = ctx.clock.now()
        blob = ctx.cas.put_stream(log.compressed(self._attempt_mark))
        return AttemptOutcome(
            number=self._attempts,
            status=verdict.status,
            runner=None,
            started_at=self._attempt_started,
            finished_at=finished,
            duration_s=finished - self._attempt_started,
            exit_code=verdict.exit_code,
            reason=ctx.masker.mask(verdict.reason) if verdict.reason else None,
            log_digest=blob.digest,
            tests=verdict.tests,
        )

    def _conclude(self, verdict: _Verdict, attempt: AttemptOutcome | None = None) -> JobOutcome:
        """The job's outcome after its last attempt (`attempt`, when kept), with its log stored."""
        ctx, log = self._ctx, self._log
        assert log is not None
        finished = ctx.clock.now()
        log.close()
        log_blob = ctx.cas.put_stream(log.compressed())  # the live file goes once this is recorded
        explanation = self._explain(self._fingerprint) if ctx.explain else ()
        return JobOutcome(
            status=verdict.status,
            exit_code=verdict.exit_code,
            attempts=self._attempts,
            reason=ctx.masker.mask(verdict.reason) if verdict.reason else None,
            started_at=self._started_at,
            finished_at=finished,
            duration_s=finished - self._started_at,
            cache_key=self._key,
            fingerprint=self._fingerprint,
            log_digest=log_blob.digest,
            tests=verdict.tests,
            outputs=verdict.outputs,
            explanation=explanation,
            attempt=attempt,
        )

    def _judge(self, result: ExecResult, log: JobLog) -> _Verdict:
        """One attempt's status, taking test reports and declared outputs into account."""
        status, reason = status_of(result)
        tests: TestCounts | None = None
        if result.outcome == "exited" and (status == "success" or self._job.reports_junit):
            tests, problem = self._reports(log)
            if problem and status == "success":
                status, reason = "failed", problem
        outputs: tuple[OutputRecord, ...] = ()
        if status == "success":
            outputs, problem = self._outputs()
            if problem:
                status, reason = "failed", problem
        return _Verdict(status, reason, result.exit_code, tests, outputs)

    def _spawn(self, log: JobLog) -> int | None:
        """Start an attempt; the id of its process group, when it has one."""
        job, ctx = self._job, self._ctx
        self._attempts += 1
        self._attempt_started = ctx.clock.now()
        self._attempt_mark = log.mark()
        self._before = self._output_stamps()
        request = ExecRequest(
            job=job.name,
            script=job.run,
            env={**ctx.base_env, **job.env, **job.matrix, "CONVEYOR_JOB": job.name},
            cwd=ctx.root / job.workdir,
            timeout_s=job.timeout_s,
        )
        with self._lock:
            if self._canceled:
                return None
            self._execution = ctx.executor.start(request, log.feed)
        return self._execution.pid

    def _output_stamps(self) -> dict[str, tuple[int, int, int]]:
        """What the outputs and reports name before an attempt: inode, change time and size
        of each file.

        Files are not removed before a job runs: another Run in the same
        workspace may be reading them. Instead a file the attempt did not touch
        (its change time cannot be set back) is reported as left over.
        """
        patterns = (*self._job.outputs, *self._job.reports_junit)
        if not patterns:
            return {}
        stamps = {}
        for path in self._expand(patterns).files:
            with contextlib.suppress(OSError):
                stamps[path] = _stamp(self._ctx.root / path)
        return stamps

    def _expand(self, patterns: Iterable[str]) -> Expanded:
        return expand(self._ctx.root, self._job.workdir, patterns, state_dir=self._ctx.state_dir)

    def _reports(self, log: JobLog) -> tuple[TestCounts | None, str | None]:
        found = self._expand(self._job.reports_junit)
        for pattern in found.missing:
            log.note(f"--- warning: report pattern '{pattern}' matched no files ---")
        for path in found.outside:
            log.note(f"--- warning: report {path} leads outside the workspace; not read ---")
        paths = found.files
        if not paths:
            return None, None
        for path in self._left_over(paths):
            self._ctx.warn(
                f"{self._job.name}: report {path} was not written by this run; it is left "
                "from an earlier one, and counted"
            )
        from conveyor.reports.junit import ReportError, parse_junit_files  # XML only when needed

        try:
            summary = parse_junit_files([self._ctx.root / p for p in paths])
        except ReportError as exc:
            return None, str(exc)
        counts = _counts(summary, self._ctx.masker)
        if counts.failed:
            return counts, f"{counts.failed} test(s) failed"
        return counts, None

    def _outputs(self) -> tuple[tuple[OutputRecord, ...], str | None]:
        root = self._ctx.root
        found = self._expand(self._job.outputs)
        if (why := output_problem(found, self._ctx.masker)) is not None:
            return (), why
        for path in self._left_over(found.files):
            self._ctx.warn(
                f"{self._job.name}: output {path} was not written by this run; "
                "it is left from an earlier one"
            )
        records, why = store_outputs(root, found.files, self._ctx.cas)
        for record in records:
            # Read now: by the time the cache entry is written a dependent may have changed it.
            self._modes[record.path] = (root / record.path).stat().st_mode & 0o777
        return records, why

    def _left_over(self, paths: Iterable[str]) -> list[str]:
        """The files of `paths` this attempt did not touch (as `_output_stamps` saw them)."""
        left = []
        for path in paths:
            with contextlib.suppress(OSError):
                if path in self._before and self._before[path] == _stamp(self._ctx.root / path):
                    left.append(path)
        return left

    def _store(self, outcome: JobOutcome, key: str, fingerprint: dict[str, str]) -> None:
        entry = CacheEntry(
            key=key,
            job=self._job.name,
            outputs=tuple(
                CachedOutput(o.path, o.digest, o.size, self._modes[o.path]) for o in outcome.outputs
            ),
            log_digest=outcome.log_digest,
            exit_code=outcome.exit_code or 0,
            tests=outcome.tests,
            fingerprint=fingerprint,
            created_at=self._ctx.clock.now(),
            duration_s=outcome.duration_s or 0.0,
        )
        self._ctx.cache.store(entry)


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_ctime_ns, st.st_size)


def status_of(result: ExecResult) -> tuple[JobState, str | None]:
    """A job's status after one execution, and why when it did not succeed."""
    if result.outcome == "exited":
        if result.exit_code == 0:
            return "success", None
        return "failed", f"exited with code {result.exit_code}"
    if result.outcome == "timed_out":
        return "timed_out", result.detail
    if result.outcome == "canceled":
        return "canceled", "canceled"
    return "failed", result.detail


def _counts(summary: TestSummary, masker: Masker) -> TestCounts:
    """Test counts and failed test names (which come from the job, so may hold secrets)."""
    return TestCounts(
        passed=summary.passed,
        failed=summary.failed,
        skipped=summary.skipped,
        failures=tuple(
            masker.mask(f"{f.classname}::{f.name}" if f.classname else f.name)
            for f in summary.failures
        ),
    )

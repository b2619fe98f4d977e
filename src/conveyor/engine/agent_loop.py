"""The runner's side of the work queue: claim a job, run it, keep its lease, report it.

An `AgentLoop` claims JobRuns from a `WorkSource` while it has free slots,
and runs each one on a thread of its own: it checks the source out into a
fresh directory (a copy of a local directory, a source bundle from the CAS,
or a commit fetched with git; a source that cannot be checked out fails the
job with the reason), restores the outputs of the jobs it needs from the
CAS, runs the script with the Executor, stores the log and the outputs in
the CAS by digest, and completes the attempt. A heartbeat thread extends the
lease meanwhile and stops the job when the server answers `cancel` or `lost`.
The secrets a claim carries reach the job's environment only, and are masked
as `***` in its log and in whatever it reports, as in a local run.

`stop()` is what SIGTERM does: claim nothing more, and hand running jobs back
so another runner takes them at once (or, with `hand_back=False`, let them
finish). `kill()` stands for a runner that dies: its jobs stop and nothing is
reported, so only the lease running out returns them to the queue.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from conveyor.artifacts.cas import ContentStore
from conveyor.core.errors import ConveyorError
from conveyor.core.masking import Masker
from conveyor.core.records import JobState, OutputRecord, TestCounts
from conveyor.core.values import field, mutable, replace
from conveyor.engine import agent_cache
from conveyor.engine.dispatch import DEFAULT_HEARTBEAT_S, DispatchService
from conveyor.engine.dispatch_rules import AttemptResult, Beat, Claim
from conveyor.engine.git_fetch import checkout_commit
from conveyor.engine.jobrun import status_of
from conveyor.engine.logs import JobLog
from conveyor.engine.outputs import expand, output_problem, store_outputs
from conveyor.executors.base import ExecRequest, ExecResult, Execution, Executor


class WorkSource(Protocol):
    """The server as a runner sees it: work to claim, leases to keep, results to report.

    The in-process implementation calls the dispatch service; the HTTP one
    calls the server's agent endpoints. Every method may be called from any
    thread.
    """

    def claim(self) -> Claim | None:
        """A JobRun to run under a new lease, or None when nothing fits."""
        ...

    def heartbeat(self, attempt_id: int) -> Beat:
        """Extend the lease: `ok`, `cancel` (stop the job) or `lost` (stop; it is not ours)."""
        ...

    def complete(self, attempt_id: int, result: AttemptResult) -> JobState | None:
        """Report how the attempt ended; the status the server recorded for it (a success
        may be judged a failure there), or None when it was no longer held."""
        ...

    def hand_back(self, attempt_id: int) -> bool:
        """Give a JobRun back unfinished, so another runner takes it at once."""
        ...


@mutable
class InProcessSource:
    """A WorkSource that calls the dispatch service directly, as one registered runner."""

    dispatch: DispatchService
    agent_id: int

    def claim(self) -> Claim | None:
        return self.dispatch.claim(self.agent_id)

    def heartbeat(self, attempt_id: int) -> Beat:
        return self.dispatch.heartbeat(attempt_id, agent_id=self.agent_id)

    def complete(self, attempt_id: int, result: AttemptResult) -> JobState | None:
        return self.dispatch.complete(attempt_id, agent_id=self.agent_id, result=result)

    def hand_back(self, attempt_id: int) -> bool:
        return self.dispatch.hand_back(attempt_id, agent_id=self.agent_id)


@mutable
class _Held:
    """One job this runner is running."""

    claim: Claim
    stopped: threading.Event = field(default_factory=threading.Event)
    execution: Execution | None = None
    why: str | None = None  # what stopped it: cancel, lost, hand_back, kill


class AgentLoop:
    """Claims and runs jobs until stopped."""

    def __init__(
        self,
        *,
        source: WorkSource,
        executor: Executor,
        cas: ContentStore,
        work_dir: Path,
        concurrency: int = 1,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        poll_s: float = 0.5,
        environ: Mapping[str, str] | None = None,
        cache: agent_cache.CachePort | None = None,
    ) -> None:
        self._source = source
        self._cache = cache  # the server's shared job cache; None: every job runs
        self._executor = executor
        self._cas = cas
        self._work_dir = work_dir
        self._concurrency = concurrency
        self._heartbeat_s = heartbeat_s
        self._poll_s = poll_s
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        """Claim and start jobs until `stop()` or `kill()`; then wait for the jobs."""
        while not self._stopping.is_set():
            if not self.run_once():
                self._wake.wait(self._poll_s)
                self._wake.clear()
        self.join()

    def run_once(self) -> bool:
        """Claim one job if a slot is free and start it; whether one was started."""
        with self._lock:
            if len(self._held) >= self._concurrency or self._stopping.is_set():
                return False
        claim = self._source.claim()
        if claim is None:
            return False
        held = _Held(claim)
        with self._lock:
            self._held[claim.attempt_id] = held
        thread = threading.Thread(
            target=self._guarded, args=(held,), name=f"agent-job-{claim.attempt_id}"
        )
        self._threads.append(thread)
        thread.start()
        return True

    def stop(self, *, hand_back: bool = True) -> None:
        """Claim nothing more; hand running jobs back (or let them finish)."""
        self._stopping.set()
        self._wake.set()
        if hand_back:
            self._stop_all("hand_back")

    def kill(self) -> None:
        """Stop every job and report nothing, as a runner that died would."""
        self._stopping.set()
        self._wake.set()
        self._stop_all("kill")

    def join(self, timeout_s: float | None = None) -> None:
        for thread in list(self._threads):
            thread.join(timeout_s)

    @property
    def running(self) -> list[Claim]:
        with self._lock:
            return [held.claim for held in self._held.values()]

    def _stop_all(self, why: str) -> None:
        with self._lock:
            held = list(self._held.values())
        for job in held:
            self._halt(job, why)

    def _halt(self, held: _Held, why: str) -> None:
        with self._lock:
            if held.why is None:
                held.why = why
            execution = held.execution
        held.stopped.set()
        if execution is not None:
            execution.cancel()

    def _guarded(self, held: _Held) -> None:
        try:
            self._work(held)
        except BaseException as exc:  # noqa: BLE001 - kept for the caller; the lease runs out
            self.errors.append(exc)
        finally:
            with self._lock:
                self._held.pop(held.claim.attempt_id, None)
            self._wake.set()

    def _work(self, held: _Held) -> None:
        claim = held.claim
        checkout = self._work_dir / f"attempt-{claim.attempt_id}"
        beats = threading.Thread(target=self._beat, args=(held,), daemon=True)
        beats.start()
        try:
            try:
                root = self._checkout(claim, checkout)
            except (ConveyorError, ValueError) as exc:
                reason = f"its source could not be checked out: {exc}"
                self._source.complete(claim.attempt_id, AttemptResult("failed", reason=reason))
                return
            masker = Masker(claim.secrets.values())
            log = JobLog(self._work_dir / f"attempt-{claim.attempt_id}.log", masker)
            for name in claim.unset_secrets:
                log.note(
                    f"--- warning: secret {name} is stored neither for this project nor for "
                    f"every project; the job sees it unset (`conveyor secret set {name}`) ---"
                )
            found = self._restore(claim, root, log)
            if found.hit is not None:
                return
            result = self._execute(held, root, log)
            if held.why == "kill":
                return
            if held.why == "hand_back":
                self._source.hand_back(claim.attempt_id)
                return
            outcome = _masked(self._judge(claim, root, result, log, masker), masker)
            recorded = self._source.complete(claim.attempt_id, outcome)
            # Shared only as the server judged it: not a result it failed, as a local Run
            # does not cache a job that took another job's file.
            if self._cache is not None and recorded == "success":
                agent_cache.save(self._cache, found, claim, outcome, root=root, cas=self._cas)
        finally:
            held.stopped.set()
            beats.join()
            shutil.rmtree(checkout, ignore_errors=True)

    def _restore(self, claim: Claim, root: Path, log: JobLog) -> agent_cache.Lookup:
        """Report the job from the shared cache when it has it (a hit); else how to save it."""
        if self._cache is None:
            return agent_cache.MISS
        found = agent_cache.try_restore(self._cache, claim, root, self._cas, log.note)
        if found.hit is None:
            return found
        try:
            self._source.complete(claim.attempt_id, found.hit)
        except ConveyorError as exc:  # a server that does not take `cached` yet: run the job
            log.note(f"--- warning: the server refused the cached result ({exc}); running ---")
            return agent_cache.Lookup(None, found.keyed)
        log.close()
        log.discard()
        return found

    def _beat(self, held: _Held) -> None:
        while not held.stopped.wait(self._heartbeat_s):
            if held.why == "kill":
                return
            beat = self._source.heartbeat(held.claim.attempt_id)
            if beat != "ok":
                self._halt(held, beat)
                return

    def _checkout(self, claim: Claim, root: Path) -> Path:
        """The run's files in a fresh directory, with the outputs of the jobs it needs.

        Returns the workspace in it: the directory of the pipeline file.
        """
        source = claim.source
        if source.path is not None:
            shutil.copytree(source.path, root, ignore=shutil.ignore_patterns(".conveyor"))
        elif source.git is not None and source.commit is not None:
            checkout_commit(source.git, source.commit, root)
        else:
            root.mkdir(parents=True)
            if source.bundle is not None:
                with self._cas.open(source.bundle) as blob, tarfile.open(fileobj=blob) as tar:
                    tar.extractall(root, filter="data")
        workspace = source.workspace(root)
        for output in claim.upstream:
            self._cas.restore(output.digest, workspace / output.path)
        return workspace

    def _execute(self, held: _Held, root: Path, log: JobLog) -> ExecResult:
        claim, job = held.claim, held.claim.job
        environ = {k: v for k, v in self._environ.items() if k not in claim.unset_secrets}
        env = {
            **environ,
            **claim.secrets,
            "CONVEYOR": "true",
            "CONVEYOR_RUN_ID": str(claim.run_id),
            "CONVEYOR_WORKSPACE": str(root),
            **claim.env,
            **job.env,
            **job.matrix,
            "CONVEYOR_JOB": job.name,
        }
        request = ExecRequest(
            job=job.name, script=job.run, env=env, cwd=root / job.workdir, timeout_s=job.timeout_s
        )
        with self._lock:
            if held.why is not None:
                return ExecResult("canceled", None, 0.0, "canceled")
            held.execution = self._executor.start(request, log.feed)
        return held.execution.wait()

    def _judge(
        self, claim: Claim, root: Path, result: ExecResult, log: JobLog, masker: Masker
    ) -> AttemptResult:
        """The attempt's outcome, with its log and outputs stored in the CAS."""
        status, reason = status_of(result)
        tests: TestCounts | None = None
        if status == "success" or (result.outcome == "exited" and claim.job.reports_junit):
            tests, problem = _reports(root, claim)
            if problem and status == "success":
                status, reason = "failed", problem
        outputs: tuple[OutputRecord, ...] = ()
        if status == "success":
            outputs, problem = self._outputs(root, claim, masker)
            if problem:
                status, reason = "failed", problem
        log.close()
        blob = self._cas.put_stream(log.compressed())
        log.discard()
        return AttemptResult(
            status=status,
            exit_code=result.exit_code,
            duration_s=result.duration_s,
            reason=reason,
            log_digest=blob.digest,
            tests=tests,
            outputs=outputs,
        )

    def _outputs(
        self, root: Path, claim: Claim, masker: Masker
    ) -> tuple[tuple[OutputRecord, ...], str | None]:
        found = expand(root, claim.job.workdir, claim.job.outputs)
        if (why := output_problem(found, masker)) is not None:
            return (), why
        return store_outputs(root, found.files, self._cas)


def _masked(result: AttemptResult, masker: Masker) -> AttemptResult:
    """The result with secret values masked in what the job wrote into it."""
    if not masker:
        return result
    tests = result.tests
    if tests is not None:
        tests = replace(tests, failures=tuple(masker.mask(f) for f in tests.failures))
    reason = masker.mask(result.reason) if result.reason else result.reason
    return replace(result, reason=reason, tests=tests)


def _reports(root: Path, claim: Claim) -> tuple[TestCounts | None, str | None]:
    found = expand(root, claim.job.workdir, claim.job.reports_junit)
    if not found.files:
        return None, None
    from conveyor.reports.junit import ReportError, parse_junit_files  # XML only when needed

    try:
        summary = parse_junit_files([root / path for path in found.files])
    except ReportError as exc:
        return None, str(exc)
    failures = tuple(
        f"{f.classname}::{f.name}" if f.classname else f.name for f in summary.failures
    )
    counts = TestCounts(summary.passed, summary.failed, summary.skipped, failures)
    return counts, (f"{counts.failed} test(s) failed" if counts.failed else None)

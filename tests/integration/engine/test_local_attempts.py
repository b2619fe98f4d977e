"""Each attempt of a job retried on this machine, kept as its own with its part of the log.

The same view a JobRun that runners held gives: `attempt_results` in order,
each attempt's log by number, an Event when a retry is to come.
"""

from __future__ import annotations

import threading
import time
from typing import BinaryIO

import pytest

from conveyor.artifacts.cache import JobCache
from conveyor.artifacts.cas import Blob, ContentStore
from conveyor.core.errors import ArtifactError, ExecutorError, NotFound
from conveyor.core.records import AttemptOutcome
from conveyor.engine.maintenance import prune_cache
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest
from conveyor.executors.base import ExecRequest, ExecResult, OutputSink
from conveyor.executors.fake import FakeExecution, FakeExecutor, FakeOutcome
from conveyor.store import events as event_log

from .harness import Harness, Reporter, cancel_after, jobs_of, outcomes, parse

pytestmark = pytest.mark.timeout(60)

RETRIED = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 2, backoff: 10ms}}
"""


def _nth(*plays: FakeOutcome) -> FakeExecutor:
    return FakeExecutor(outcomes({"flaky": list(plays)}))


def test_each_attempt_of_a_retried_job_is_kept_in_order_with_its_own_log(
    harness: Harness,
) -> None:
    executor = _nth(
        FakeOutcome(1, output=b"first try\n"),
        FakeOutcome(2, output=b"second try, no newline"),
        FakeOutcome(0, output=b"third try\n"),
    )
    result = harness.run(RETRIED, executor)
    flaky = jobs_of(result)["flaky"]

    assert (flaky.status, flaky.attempts) == ("success", 3)
    assert [(a.number, a.status, a.exit_code, a.runner) for a in flaky.attempt_results] == [
        (1, "failed", 1, None),
        (2, "failed", 2, None),
        (3, "success", 0, None),
    ]
    assert [a.reason for a in flaky.attempt_results] == [
        "exited with code 1",
        "exited with code 2",
        None,
    ]
    for attempt in flaky.attempt_results:
        assert attempt.finished_at is not None and attempt.duration_s is not None
        assert attempt.finished_at >= attempt.started_at
    history = harness.history()
    logs = [history.job_log(result.run.id, "flaky", n)[0] for n in (1, 2, 3)]
    assert logs == [
        "first try\n--- attempt 1 failed: exited with code 1 ---\n",
        "second try, no newline\n--- attempt 2 failed: exited with code 2 ---\n",
        "third try\n",
    ]
    whole, live = history.job_log(result.run.id, "flaky")
    assert not live
    # The job's own log still holds them all, each marked.
    assert whole.splitlines() == [
        "first try",
        "--- attempt 1 failed: exited with code 1 ---",
        "--- attempt 2 of 3 (after 0.01s) ---",
        "second try, no newline",
        "--- attempt 2 failed: exited with code 2 ---",
        "--- attempt 3 of 3 (after 0.02s) ---",
        "third try",
    ]


def test_a_timed_out_attempt_is_kept_timed_out(harness: Harness) -> None:
    timed_out = FakeOutcome(None, output=b"slow\n", outcome="timed_out")
    result = harness.run(RETRIED, _nth(timed_out, FakeOutcome(0)))
    first, second = jobs_of(result)["flaky"].attempt_results

    assert (first.status, first.exit_code, second.status) == ("timed_out", None, "success")
    log, _ = harness.history().job_log(result.run.id, "flaky", 1)
    assert log == "slow\n"  # no line of why: a real timeout says it by its own note (e2e)


def test_each_retry_is_an_event_naming_the_attempt_and_the_delay(harness: Harness) -> None:
    result = harness.run(RETRIED, _nth(FakeOutcome(1), FakeOutcome(1), FakeOutcome(0)))
    events = event_log.for_subject(harness.service().db, f"run/{result.run.id}/job/flaky")

    assert [e.kind for e in events] == [
        "job.running",
        "job.retrying",
        "job.retrying",
        "job.success",
    ]
    assert [e.data for e in events[1:3]] == [
        {"status": "retrying", "attempt": 1, "after": "failed", "delay_s": 0.01},
        {"status": "retrying", "attempt": 2, "after": "failed", "delay_s": 0.02},
    ]


class _Retries(Reporter):
    """Keeps what the Run said of each retry."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[tuple[str, int, str, float]] = []

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        self.said.append((name, ended.number, ended.status, delay_s))


def test_each_retry_is_said_to_the_view_as_it_is_decided(harness: Harness) -> None:
    harness.reporter = view = _Retries()
    harness.run(
        RETRIED, _nth(FakeOutcome(1), FakeOutcome(None, outcome="timed_out"), FakeOutcome(0))
    )

    assert view.said == [("flaky", 1, "failed", 0.01), ("flaky", 2, "timed_out", 0.02)]


def test_a_job_that_ran_once_keeps_no_attempts_and_is_its_own_attempt_1(
    harness: Harness,
) -> None:
    executor = FakeExecutor(outcomes({"flaky": FakeOutcome(0, output=b"fine\n")}))
    result = harness.run(RETRIED, executor)
    flaky = jobs_of(result)["flaky"]
    assert (flaky.attempts, flaky.attempt_results) == (1, ())
    history = harness.history()

    assert history.job_log(result.run.id, "flaky", 1) == ("fine\n", False)
    with pytest.raises(NotFound, match=r"has no attempt 2; its attempts: 1$"):
        history.job_log(result.run.id, "flaky", 2)


def test_output_that_looks_like_a_marker_does_not_cut_the_only_attempt(
    harness: Harness,
) -> None:
    # A job that prints a Conveyor log (its own tests, say) may print marker lines.
    printed = b"before\n--- attempt 2 of 3 (after 1s) ---\nafter\n"
    executor = FakeExecutor(outcomes({"flaky": FakeOutcome(0, output=printed)}))
    result = harness.run(RETRIED, executor)
    assert jobs_of(result)["flaky"].attempts == 1

    assert harness.history().job_log(result.run.id, "flaky", 1) == (printed.decode(), False)


def test_a_cached_job_made_no_attempt(harness: Harness) -> None:
    harness.run(RETRIED)
    again = harness.run(RETRIED)
    assert jobs_of(again)["flaky"].status == "cached"

    with pytest.raises(NotFound, match=r"'flaky' in run \d+ made no attempt \(cached\)"):
        harness.history().job_log(again.run.id, "flaky", 1)


FLAKY_BESIDE_BROKEN = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 3, backoff: 30s}}
  broken: {run: broken}
"""


def test_a_job_given_up_before_its_retry_keeps_the_attempt_it_made(harness: Harness) -> None:
    # `flaky` fails at once and waits 30 s to retry; `broken` fails meanwhile: the Run stops.
    executor = FakeExecutor(
        outcomes(
            {"flaky": FakeOutcome(1, output=b"oops\n"), "broken": FakeOutcome(2, duration_s=0.2)}
        )
    )
    result = harness.run(FLAKY_BESIDE_BROKEN, executor, RunRequest(max_parallel=2))
    flaky = jobs_of(result)["flaky"]

    (only,) = flaky.attempt_results
    assert (only.number, only.status, only.reason) == (1, "failed", "exited with code 1")
    assert flaky.reason == "exited with code 1; not retried: 'broken' failed"
    history = harness.history()
    attempt_log, _ = history.job_log(result.run.id, "flaky", 1)
    job_log, _ = history.job_log(result.run.id, "flaky")
    # The attempt's log is what it wrote; why it was not retried is the job's to say.
    assert attempt_log == "oops\n--- attempt 1 failed: exited with code 1 ---\n"
    assert job_log == attempt_log + "--- not retried: 'broken' failed ---\n"


def test_the_attempt_running_when_the_run_is_canceled_is_kept_canceled(
    harness: Harness,
) -> None:
    def script(_request: ExecRequest, attempt: int) -> FakeOutcome:
        if attempt == 1:
            return FakeOutcome(1)
        return FakeOutcome(0, output=b"long\n", duration_s=30)

    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 1, backoff: 10ms}}\n"
    with cancel_after(0.5) as on_start:
        result = harness.run(spec, FakeExecutor(script), on_start=on_start)
    flaky = jobs_of(result)["flaky"]

    assert flaky.status == "canceled"
    assert [(a.number, a.status) for a in flaky.attempt_results] == [(1, "failed"), (2, "canceled")]


def test_a_secret_in_an_attempt_is_masked_in_its_log_and_reason(harness: Harness) -> None:
    spec = """\
    version: 1
    secrets: [TOKEN]
    jobs:
      flaky: {run: flaky, retry: {max: 1, backoff: 10ms}}
    """
    harness.environ["TOKEN"] = "hunter2-secret"
    executor = _nth(FakeOutcome(1, output=b"using hunter2-secret\n"), FakeOutcome(0))
    result = harness.run(spec, executor)
    assert len(jobs_of(result)["flaky"].attempt_results) == 2

    log, _ = harness.history().job_log(result.run.id, "flaky", 1)
    assert "hunter2-secret" not in log and "using ***" in log


def test_while_a_retry_runs_its_attempt_reads_live_and_the_one_before_as_kept(
    harness: Harness,
) -> None:
    def script(_request: ExecRequest, attempt: int) -> FakeOutcome:
        if attempt == 1:
            return FakeOutcome(1, output=b"first\n")
        return FakeOutcome(0, output=b"second\n", duration_s=30)

    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 1, backoff: 10ms}}\n"
    history = harness.history()
    seen: dict[str, object] = {}

    def look(scheduler: Scheduler) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            run = history.get_run(None)
            (job,) = run.jobs
            if job.attempts == 2 and history.job_log(run.id, "flaky")[0].endswith("second\n"):
                seen["counted"] = (job.attempts, len(job.attempt_results))
                try:
                    seen["second"] = history.job_log(run.id, "flaky", 2)
                    seen["first"] = history.job_log(run.id, "flaky", 1)
                    seen["third"] = history.job_log(run.id, "flaky", 3)
                except NotFound as exc:
                    seen["third"] = str(exc)
                break
            time.sleep(0.01)
        scheduler.request_cancel()

    def on_start(scheduler: Scheduler) -> None:
        threading.Thread(target=look, args=(scheduler,), daemon=True).start()

    result = harness.run(spec, FakeExecutor(script), on_start=on_start)

    assert result.run.status == "canceled"
    # Counted as it started, attempt 1 kept as it ended.
    assert seen["counted"] == (2, 1)
    # Only what attempt 2 wrote, though the live file holds attempt 1's too.
    assert seen["second"] == ("second\n", True)
    assert seen["first"] == ("first\n--- attempt 1 failed: exited with code 1 ---\n", False)
    assert "has no attempt 3; its attempts: 1, 2" in str(seen["third"])


def test_pruning_the_cache_keeps_the_attempt_logs_of_recent_runs(harness: Harness) -> None:
    executor = _nth(FakeOutcome(1, output=b"first\n"), FakeOutcome(0, output=b"second\n"))
    result = harness.run(RETRIED, executor)

    prune_cache(harness.workspace, max_bytes=10 << 30, keep_runs=20)

    history = harness.history()
    assert history.job_log(result.run.id, "flaky", 1)[0].startswith("first\n")
    assert history.job_log(result.run.id, "flaky", 2)[0] == "second\n"


def test_a_retry_that_is_not_to_come_is_no_event_and_a_lone_attempt_keeps_no_row(
    harness: Harness,
) -> None:
    # `flaky` fails after `broken` did: the Run has stopped, so it is not retried.
    harness.reporter = view = _Retries()
    executor = FakeExecutor(
        outcomes({"flaky": FakeOutcome(1, duration_s=0.3), "broken": FakeOutcome(2)})
    )
    result = harness.run(FLAKY_BESIDE_BROKEN, executor, RunRequest(max_parallel=2))
    flaky = jobs_of(result)["flaky"]
    events = event_log.for_subject(harness.service().db, f"run/{result.run.id}/job/flaky")

    assert flaky.reason == "exited with code 1; not retried: 'broken' failed"
    assert [e.kind for e in events] == ["job.running", "job.failed"]
    assert (flaky.attempts, flaky.attempt_results) == (1, ())
    assert view.said == []  # nor said to the view


def test_a_later_attempt_not_retried_is_kept_with_the_jobs_end(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      flaky: {run: flaky, retry: {max: 3, backoff: 10ms}}
      broken: {run: broken}
    """
    # `flaky` fails at once, then again after `broken` failed (0.3 s): no third attempt.
    executor = FakeExecutor(
        outcomes(
            {
                "flaky": [FakeOutcome(1), FakeOutcome(1, output=b"again\n", duration_s=0.6)],
                "broken": FakeOutcome(2, duration_s=0.3),
            }
        )
    )
    result = harness.run(spec, executor, RunRequest(max_parallel=2))
    flaky = jobs_of(result)["flaky"]
    events = event_log.for_subject(harness.service().db, f"run/{result.run.id}/job/flaky")

    assert [e.kind for e in events] == ["job.running", "job.retrying", "job.failed"]
    assert [(a.number, a.status) for a in flaky.attempt_results] == [(1, "failed"), (2, "failed")]
    log, _ = harness.history().job_log(result.run.id, "flaky", 2)
    assert log == "again\n--- attempt 2 failed: exited with code 1 ---\n"


class _HeldSecond(FakeExecutor):
    """Attempt 1 fails; attempt 2 prints a line, then fails once `release` is set."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self._release = release

    def start(self, request: ExecRequest, output: OutputSink) -> FakeExecution:
        attempt = self.attempts.get(request.job, 0) + 1
        self.attempts[request.job] = attempt
        if attempt == 1:
            return FakeExecution(lambda: FakeOutcome(1, output=b"first\n"), output)
        if attempt == 2:
            return _Held(output, self._release)
        return FakeExecution(FakeOutcome, output)


class _Held(FakeExecution):
    def __init__(self, output: OutputSink, release: threading.Event) -> None:
        super().__init__(FakeOutcome, output)
        self._release = release

    def wait(self) -> ExecResult:
        self._output(b"second\n")
        assert self._release.wait(20), "the test never looked"
        return ExecResult("exited", 1, 0.0)


def test_following_a_running_attempt_prints_the_start_of_what_it_keeps(harness: Harness) -> None:
    release = threading.Event()
    history = harness.history()
    during: list[tuple[str, bool]] = []

    def look() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not during:
            run = history.get_run(None)
            if run.jobs[0].attempt_results:
                text, live = history.job_log(run.id, "flaky", 2)
                if text:
                    during.append((text, live))
            time.sleep(0.01)
        release.set()

    watcher = threading.Thread(target=look)
    result = harness.run(RETRIED, _HeldSecond(release), on_start=lambda _scheduler: watcher.start())
    watcher.join()
    after, live = history.job_log(result.run.id, "flaky", 2)

    assert during == [("second\n", True)]
    assert not live
    assert after == "second\n--- attempt 2 failed: exited with code 1 ---\n"
    assert after.startswith(during[0][0])


class _NoSecondStart(FakeExecutor):
    """Its second start fails, as an executor that lost its machine would."""

    def start(self, request: ExecRequest, output: OutputSink) -> FakeExecution:
        if self.attempts.get(request.job):
            raise ExecutorError("the executor lost its machine")
        return super().start(request, output)


def test_an_attempt_a_fault_stopped_is_kept_so_the_count_and_the_list_agree(
    harness: Harness,
) -> None:
    executor = _NoSecondStart(outcomes({"flaky": FakeOutcome(1, output=b"first\n")}))
    with pytest.raises(ExecutorError):  # an infrastructure fault: the Run is recorded first
        harness.run(RETRIED, executor)
    history = harness.history()
    run = history.get_run(None)
    (flaky,) = run.jobs

    assert (flaky.status, flaky.attempts) == ("failed", 2)
    assert [(a.number, a.status) for a in flaky.attempt_results] == [(1, "failed"), (2, "failed")]
    assert "the executor lost its machine" in (flaky.attempt_results[1].reason or "")
    log, _ = history.job_log(run.id, "flaky", 2)
    assert log == "--- stopped by a fault: the executor lost its machine ---\n"


class _FillsUp(ContentStore):
    """A content store whose disk fills up once `full` is set."""

    full = False

    def put_bytes(self, data: bytes) -> Blob:
        if self.full:
            raise ArtifactError("cannot store: No space left on device")
        return super().put_bytes(data)

    def put_stream(self, src: BinaryIO) -> Blob:
        if self.full:
            src.close()
            raise ArtifactError("cannot store: No space left on device")
        return super().put_stream(src)


def test_a_fault_keeping_an_attempt_leaves_the_live_log_noted_and_closed(
    harness: Harness,
) -> None:
    service = harness.service()
    cas = service.cas = _FillsUp(harness.workspace.cas_dir)
    service.cache = JobCache(harness.workspace.cache_dir, cas)

    def script(_request: ExecRequest, attempt: int) -> FakeOutcome:
        cas.full = attempt == 2  # as attempt 2 runs, asking for a third
        return FakeOutcome(1, output=f"try {attempt}\n".encode())

    service.executor = FakeExecutor(script)
    with pytest.raises(ArtifactError, match="No space left on device"):
        service.run(parse(RETRIED), RunRequest(max_parallel=1), harness.reporter)
    cas.full = False
    history = harness.history()
    run = history.get_run(None)

    log, _ = history.job_log(run.id, "flaky")  # the live file: the store could not take it
    assert log.endswith("--- stopped by a fault: cannot store: No space left on device ---\n")
    assert "try 2\n" in log


def test_an_attempt_a_canceled_run_never_began_is_not_there(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 2, backoff: 30s}}\n"
    with cancel_after(0.3) as on_start:  # during the 30 s back-off
        result = harness.run(spec, _nth(FakeOutcome(1, output=b"once\n")), on_start=on_start)
    history = harness.history()
    assert jobs_of(result)["flaky"].attempts == 1

    with pytest.raises(NotFound, match=r"has no attempt 2; its attempts: 1$"):
        history.job_log(result.run.id, "flaky", 2)
    # A JobRun recorded before attempts were counted as they started reads 0 until its end,
    # and 0 stays if the run was killed: the log shows attempt 2 never began.
    with harness.service().db.write() as tx:
        tx.execute("UPDATE job_runs SET attempts = 0 WHERE run_id = :r", {"r": result.run.id})
    with pytest.raises(NotFound, match=r"attempt 2 of 'flaky' in run \d+ never began \(canceled\)"):
        history.job_log(result.run.id, "flaky", 2)
    assert history.job_log(result.run.id, "flaky", 1)[0].startswith("once\n")


class _Exploding(FakeExecutor):
    """Fails to start a job with an error whose text holds what the job was given."""

    def start(self, request: ExecRequest, output: OutputSink) -> FakeExecution:
        raise RuntimeError(f"could not start with {request.env.get('TOKEN')!r}")


def test_the_text_of_an_internal_error_is_masked_where_it_is_recorded(harness: Harness) -> None:
    spec = "version: 1\nsecrets: [TOKEN]\njobs:\n  job: {run: job}\n"
    harness.environ["TOKEN"] = "hunter2-secret"

    result = harness.run(spec, _Exploding())

    job = jobs_of(result)["job"]
    assert job.status == "failed"
    assert job.reason == "internal error: RuntimeError(\"could not start with '***'\")"
    stored = [event.data_json for event in event_log.iter_all(harness.service().db)]
    assert stored and not [data for data in stored if "hunter2" in data]

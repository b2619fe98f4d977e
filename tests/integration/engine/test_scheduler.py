"""The scheduler through the Run service: order, parallelism, failures, retries, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from conveyor.core.errors import ExecutorError, SpecError, StoreError, UsageError
from conveyor.engine.recorder import Change, Recorder
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest
from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome
from conveyor.store import events as event_log
from conveyor.store import runs as run_store

from .harness import (
    EntriesAtStart,
    Harness,
    Reporter,
    Tracking,
    cancel_after,
    jobs_of,
    outcomes,
    parse,
    statuses,
)

pytestmark = pytest.mark.timeout(60)

FAIL = FakeOutcome(exit_code=1)
TIMED_OUT = FakeOutcome(exit_code=None, outcome="timed_out")

DIAMOND = """\
version: 1
jobs:
  a: {run: a}
  b: {run: b, needs: [a]}
  c: {run: c, needs: [a]}
  d: {run: d, needs: [b, c]}
  e: {run: e}
"""


def test_a_job_starts_only_after_all_its_needs_have_finished(harness: Harness) -> None:
    durations = {"a": 0.02, "b": 0.06, "c": 0.01}
    tracking = Tracking(
        FakeExecutor(lambda r, _a: FakeOutcome(duration_s=durations.get(r.job, 0.0)))
    )
    result = harness.run(DIAMOND, tracking, RunRequest(max_parallel=4))
    assert result.run.status == "success"
    for job, needs in {"b": "a", "c": "a", "d": "bc"}.items():
        for need in needs:
            assert tracking.index("end", need) < tracking.index("start", job)


def test_a_job_without_needs_is_not_held_back_by_a_running_chain(harness: Harness) -> None:
    e_started = threading.Event()
    saw_e_while_running: list[bool] = []

    def script(request: ExecRequest, _attempt: int) -> FakeOutcome:
        if request.job == "e":
            e_started.set()
        if request.job == "a":
            saw_e_while_running.append(e_started.wait(10))
        return FakeOutcome()

    result = harness.run(DIAMOND, FakeExecutor(script), RunRequest(max_parallel=2))
    assert result.run.status == "success"
    assert saw_e_while_running == [True]


def test_no_more_than_max_parallel_jobs_run_at_once(harness: Harness) -> None:
    spec = "version: 1\njobs:\n" + "".join(f"  j{i}: {{run: j{i}}}\n" for i in range(8))
    tracking = Tracking(FakeExecutor(lambda _r, _a: FakeOutcome(duration_s=0.1)))
    result = harness.run(spec, tracking, RunRequest(max_parallel=3))
    assert result.run.status == "success"
    assert tracking.peak == 3
    assert len(tracking.log) == 16


def test_one_job_at_a_time_runs_ready_jobs_in_pipeline_order(harness: Harness) -> None:
    tracking = Tracking(FakeExecutor())
    harness.run(DIAMOND, tracking, RunRequest(max_parallel=1))
    started = [job for event, job in tracking.log if event == "start"]
    assert started == ["a", "b", "c", "d", "e"]
    assert tracking.peak == 1


def test_fail_fast_skips_jobs_not_started_and_lets_running_ones_finish(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      broken: {run: broken}
      slow: {run: slow}
      later: {run: later}
      after: {run: after, needs: [broken]}
    """
    script = outcomes({"broken": FAIL, "slow": FakeOutcome(duration_s=0.5)})
    executor = FakeExecutor(script)
    result = harness.run(spec, executor, RunRequest(max_parallel=2))
    jobs = jobs_of(result)
    assert result.run.status == "failed"
    assert (jobs["broken"].status, jobs["broken"].reason) == ("failed", "exited with code 1")
    assert jobs["slow"].status == "success"
    assert jobs["later"].status == "skipped"
    assert jobs["later"].reason == (
        "not started: 'broken' failed (--keep-going runs independent jobs)"
    )
    assert (jobs["after"].status, jobs["after"].reason) == ("skipped", "need 'broken' failed")
    assert "later" not in executor.attempts


def test_keep_going_runs_independent_branches(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      broken: {run: broken}
      after: {run: after, needs: [broken]}
      other: {run: other}
      other_next: {run: next, needs: [other]}
    """
    result = harness.run(
        spec, FakeExecutor(outcomes({"broken": FAIL})), RunRequest(max_parallel=1, keep_going=True)
    )
    assert statuses(result) == {
        "broken": "failed",
        "after": "skipped",
        "other": "success",
        "other_next": "success",
    }
    assert result.run.status == "failed"


def test_dependents_of_a_failed_job_are_skipped_with_the_need_named(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: a}
      b: {run: b, needs: [a]}
      c: {run: c, needs: [b]}
    """
    result = harness.run(spec, FakeExecutor(outcomes({"a": FAIL})))
    jobs = jobs_of(result)
    assert (jobs["b"].status, jobs["b"].reason) == ("skipped", "need 'a' failed")
    assert (jobs["c"].status, jobs["c"].reason) == ("skipped", "need 'b' was skipped")
    assert jobs["b"].attempts == 0


def test_dependents_of_a_timed_out_job_are_skipped_with_the_need_named(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  a: {run: a}\n  b: {run: b, needs: [a]}\n"
    result = harness.run(spec, FakeExecutor(outcomes({"a": TIMED_OUT})))
    jobs = jobs_of(result)
    assert jobs["a"].status == "timed_out"
    assert (jobs["b"].status, jobs["b"].reason) == ("skipped", "need 'a' timed out")
    assert result.run.status == "failed"


def test_a_job_whose_condition_is_false_skips_its_dependents(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      deploy: {run: deploy, if: "event == 'push'"}
      notify: {run: notify, needs: [deploy]}
      build: {run: build}
    """
    result = harness.run(spec)
    jobs = jobs_of(result)
    assert (jobs["deploy"].status, jobs["deploy"].reason) == (
        "skipped",
        "condition `event == 'push'` is false",
    )
    assert (jobs["notify"].status, jobs["notify"].reason) == (
        "skipped",
        "need 'deploy' was skipped",
    )
    assert jobs["build"].status == "success"
    assert result.run.status == "success"


def test_a_condition_true_for_the_event_runs_the_job(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      deploy: {run: deploy, if: "event == 'push'"}
      notify: {run: notify, needs: [deploy]}
    """
    executor = FakeExecutor()
    result = harness.run(spec, executor, RunRequest(event="push"))
    assert statuses(result) == {"deploy": "success", "notify": "success"}
    assert result.run.event == "push"
    assert executor.attempts == {"deploy": 1, "notify": 1}


def test_a_condition_can_read_the_environment(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      on: {run: a, if: "env.MODE == 'full'"}
      off: {run: b, if: "env.MODE == 'quick'"}
    """
    harness.environ["MODE"] = "full"
    result = harness.run(spec)
    assert statuses(result) == {"on": "success", "off": "skipped"}


def test_allow_failure_lets_dependents_run_and_the_run_succeed(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      flaky: {run: flaky, allow_failure: true}
      after: {run: after, needs: [flaky]}
      later: {run: later}
    """
    result = harness.run(spec, FakeExecutor(outcomes({"flaky": FAIL})), RunRequest(max_parallel=1))
    assert statuses(result) == {"flaky": "failed", "after": "success", "later": "success"}
    assert jobs_of(result)["flaky"].allow_failure is True
    assert result.run.status == "success"


def test_allow_failure_covers_a_timeout_too(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  a: {run: a, allow_failure: true}\n  b: {run: b, needs: [a]}\n"
    result = harness.run(spec, FakeExecutor(outcomes({"a": TIMED_OUT})))
    assert statuses(result) == {"a": "timed_out", "b": "success"}
    assert result.run.status == "success"


RETRIED = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 2, backoff: 10ms}}
  after: {run: after, needs: [flaky]}
"""


def test_a_job_passing_on_its_third_attempt_succeeds(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"flaky": [FAIL, FAIL, FakeOutcome(output=b"ok\n")]}))
    result = harness.run(RETRIED, executor)
    flaky = jobs_of(result)["flaky"]
    assert (flaky.status, flaky.attempts, flaky.exit_code) == ("success", 3, 0)
    assert executor.attempts == {"flaky": 3, "after": 1}
    assert result.run.status == "success"
    log, live = harness.history().job_log(result.run.id, "flaky")
    assert not live
    assert log.splitlines()[-5:] == [
        "--- attempt 1 failed: exited with code 1 ---",
        "--- attempt 2 of 3 (after 0.01s) ---",
        "--- attempt 2 failed: exited with code 1 ---",
        "--- attempt 3 of 3 (after 0.02s) ---",
        "ok",
    ]


def test_a_job_waiting_out_its_backoff_leaves_its_slot_to_another(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 1, backoff: 1s}}\n"
    spec += "  other: {run: other}\n"
    executor = FakeExecutor(outcomes({"flaky": [FAIL, FakeOutcome()], "other": FakeOutcome()}))

    result = harness.run(spec, executor, RunRequest(max_parallel=1))

    jobs = jobs_of(result)
    assert (jobs["flaky"].status, jobs["flaky"].attempts, jobs["other"].status) == (
        "success",
        2,
        "success",
    )
    # One at a time: `other` ran while `flaky` waited, not after its backoff.
    assert [request.job for request in executor.requests] == ["flaky", "other", "flaky"]


def test_a_job_failing_every_attempt_fails_after_its_retries(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"flaky": FAIL}))
    result = harness.run(RETRIED, executor)
    flaky = jobs_of(result)["flaky"]
    assert (flaky.status, flaky.attempts, flaky.reason) == ("failed", 3, "exited with code 1")
    assert executor.attempts == {"flaky": 3}


def test_a_timed_out_attempt_is_retried(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"flaky": [TIMED_OUT, FakeOutcome()]}))
    result = harness.run(RETRIED, executor)
    flaky = jobs_of(result)["flaky"]
    assert (flaky.status, flaky.attempts) == ("success", 2)
    log, _ = harness.history().job_log(result.run.id, "flaky")
    # The timeout is said once, by its own note: no second line of why.
    assert "failed:" not in log
    assert "--- attempt 2 of 3 (after 0.01s) ---" in log


def test_a_job_without_retries_runs_once(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"a": FAIL}))
    result = harness.run("version: 1\njobs:\n  a: {run: a}\n", executor)
    assert jobs_of(result)["a"].attempts == 1
    assert executor.attempts == {"a": 1}


def test_a_job_that_cannot_start_fails_the_run(harness: Harness) -> None:
    no_shell = FakeOutcome(exit_code=None, outcome="failed_to_start")
    result = harness.run(
        "version: 1\njobs:\n  a: {run: a}\n", FakeExecutor(outcomes({"a": no_shell}))
    )
    assert jobs_of(result)["a"].status == "failed"
    assert result.run.status == "failed"


def test_an_executor_fault_fails_the_job_instead_of_hanging_the_run(harness: Harness) -> None:
    def script(request: ExecRequest, _attempt: int) -> FakeOutcome:
        if request.job == "a":
            raise RuntimeError("runner lost")
        return FakeOutcome()

    spec = "version: 1\njobs:\n  a: {run: a}\n  b: {run: b, needs: [a]}\n"
    result = harness.run(spec, FakeExecutor(script))
    a = jobs_of(result)["a"]
    assert a.status == "failed"
    assert "internal error" in (a.reason or "")
    assert "runner lost" in (a.reason or "")
    assert jobs_of(result)["b"].status == "skipped"


CHAIN_AND_ONE = """\
version: 1
jobs:
  long: {run: long}
  next: {run: next, needs: [long]}
  other: {run: other}
"""


def test_cancel_stops_running_jobs_and_marks_pending_ones_canceled(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"long": FakeOutcome(duration_s=30)}))
    started = time.monotonic()
    with cancel_after(0.2) as on_start:
        result = harness.run(CHAIN_AND_ONE, executor, RunRequest(max_parallel=1), on_start=on_start)
    assert time.monotonic() - started < 5
    assert result.run.status == "canceled"
    jobs = jobs_of(result)
    assert jobs["long"].status == "canceled"
    assert (jobs["other"].status, jobs["other"].reason) == ("canceled", "the run was canceled")
    assert "other" not in executor.attempts


def test_cancel_marks_dependents_of_a_canceled_job_canceled(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({"long": FakeOutcome(duration_s=30)}))
    with cancel_after(0.2) as on_start:
        result = harness.run(CHAIN_AND_ONE, executor, RunRequest(max_parallel=1), on_start=on_start)
    assert jobs_of(result)["next"].status == "canceled"


def test_cancel_during_a_retry_wait_cancels_the_job(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 3, backoff: 30s}}\n"
    executor = FakeExecutor(outcomes({"flaky": FAIL}))
    started = time.monotonic()
    with cancel_after(0.2) as on_start:
        result = harness.run(spec, executor, on_start=on_start)
    assert time.monotonic() - started < 5
    assert result.run.status == "canceled"
    flaky = jobs_of(result)["flaky"]
    assert executor.attempts == {"flaky": 1}
    assert (flaky.status, flaky.attempts) == ("canceled", 1)


FLAKY_BESIDE_BROKEN = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 3, backoff: 30s}}
  broken: {run: broken}
"""


def test_without_keep_going_a_job_waiting_to_retry_is_not_retried_once_another_failed(
    harness: Harness,
) -> None:
    # `flaky` fails at once and waits 30 s to retry; `broken` fails meanwhile: the Run stops.
    executor = FakeExecutor(outcomes({"flaky": FAIL, "broken": FakeOutcome(2, duration_s=0.2)}))
    started = time.monotonic()
    result = harness.run(FLAKY_BESIDE_BROKEN, executor, RunRequest(max_parallel=2))

    assert time.monotonic() - started < 5
    assert executor.attempts == {"flaky": 1, "broken": 1}
    flaky = jobs_of(result)["flaky"]
    assert (flaky.status, flaky.attempts, flaky.exit_code) == ("failed", 1, 1)
    assert flaky.reason == "exited with code 1; not retried: 'broken' failed"
    log, _ = harness.history().job_log(result.run.id, "flaky")
    assert "--- not retried: 'broken' failed ---" in log
    assert result.run.status == "failed"


def test_a_job_needing_the_failure_and_a_job_given_up_is_skipped_for_the_failure(
    harness: Harness,
) -> None:
    spec = """\
    version: 1
    jobs:
      broken: {run: broken}
      flaky: {run: flaky, retry: {max: 3, backoff: 30s}}
      after: {run: after, needs: [broken, flaky]}
    """
    executor = FakeExecutor(outcomes({"broken": FakeOutcome(2, duration_s=0.2), "flaky": FAIL}))
    result = harness.run(spec, executor, RunRequest(max_parallel=2))

    jobs = jobs_of(result)
    assert jobs["flaky"].reason == "exited with code 1; not retried: 'broken' failed"
    assert (jobs["after"].status, jobs["after"].reason) == ("skipped", "need 'broken' failed")


def test_with_keep_going_a_job_still_retries_after_another_failed(harness: Harness) -> None:
    spec = FLAKY_BESIDE_BROKEN.replace("30s", "10ms")
    executor = FakeExecutor(outcomes({"flaky": FAIL, "broken": FakeOutcome(2)}))
    result = harness.run(spec, executor, RunRequest(max_parallel=2, keep_going=True))

    assert executor.attempts == {"flaky": 4, "broken": 1}
    assert jobs_of(result)["flaky"].reason == "exited with code 1"


def test_an_infrastructure_fault_cancels_the_jobs_still_running(harness: Harness) -> None:
    def script(request: ExecRequest, _attempt: int) -> FakeOutcome:
        if request.job == "b":
            raise ExecutorError("the runner pool is gone")
        return FakeOutcome(duration_s=30)

    spec = """\
    version: 1
    jobs:
      a: {run: a}
      b: {run: b}
      c: {run: c, needs: [a]}
      later: {run: later}
    """
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="the runner pool is gone"):
        harness.run(spec, FakeExecutor(script), RunRequest(max_parallel=2, keep_going=True))

    # Not the 30 s of `a`: what runs beside a fault is canceled, even with --keep-going.
    assert time.monotonic() - started < 5
    run = harness.history().get_run(None)
    jobs = {job.name: job for job in run.jobs}
    assert (jobs["a"].status, jobs["a"].reason) == (
        "canceled",
        "canceled: an infrastructure fault stopped the run",
    )
    assert jobs["b"].status == "failed"
    assert jobs["c"].status == "skipped"
    assert (jobs["later"].status, jobs["later"].reason) == (
        "skipped",
        "not started: an infrastructure fault: the runner pool is gone",
    )
    assert run.status == "failed"


def test_a_run_stopped_by_an_infrastructure_fault_is_failed_even_if_the_job_may_fail(
    harness: Harness,
) -> None:
    # `b` may fail, but its fault stopped the Run and canceled `a`: the Run did not succeed.
    def script(request: ExecRequest, _attempt: int) -> FakeOutcome:
        if request.job == "b":
            raise ExecutorError("the runner pool is gone")
        return FakeOutcome(duration_s=30)

    spec = "version: 1\njobs:\n  a: {run: a}\n  b: {run: b, allow_failure: true}\n"
    with pytest.raises(ExecutorError):
        harness.run(spec, FakeExecutor(script), RunRequest(max_parallel=2))

    run = harness.history().get_run(None)
    assert (run.status, run.error) == ("failed", "the runner pool is gone")
    assert {job.name: job.status for job in run.jobs} == {"a": "canceled", "b": "failed"}
    kinds = [e.kind for e in event_log.for_subject(harness.service().db, f"run/{run.id}")]
    assert kinds[-1] == "run.failed"


def test_targets_run_only_those_jobs_and_their_needs(harness: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: a}
      b: {run: b, needs: [a]}
      c: {run: c, needs: [b]}
      d: {run: d}
      e: {run: e, needs: [c]}
    """
    executor = FakeExecutor()
    result = harness.run(spec, executor, RunRequest(targets=("c",)))
    assert statuses(result) == {"a": "success", "b": "success", "c": "success"}
    assert set(executor.attempts) == {"a", "b", "c"}
    assert result.run.targets == ("c",)


def test_an_unknown_target_is_refused_before_a_run_is_recorded(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  build: {run: a}\n  test: {run: b}\n"
    svc = harness.service()
    with pytest.raises(UsageError, match=r"there is no job 'tets'.*did you mean 'test'"):
        svc.run(parse(spec), RunRequest(targets=("tets",)), harness.reporter)
    assert run_store.list_runs(svc.db) == []


def test_every_state_change_is_an_event_of_the_run(harness: Harness) -> None:
    spec = (
        "version: 1\njobs:\n  a: {run: a}\n  b: {run: b, needs: [a]}\n  c: {run: c, if: 'false'}\n"
    )
    result = harness.run(spec, FakeExecutor(outcomes({"b": FAIL})))
    svc = harness.service()
    events = event_log.for_subject(svc.db, f"run/{result.run.id}")
    kinds = [(e.kind, e.subject.rsplit("/", 1)[-1]) for e in events]
    run = str(result.run.id)
    assert kinds[0] == ("run.started", run)
    assert kinds[-1] == ("run.failed", run)
    assert set(kinds[1:-1]) == {
        ("job.skipped", "c"),
        ("job.running", "a"),
        ("job.success", "a"),
        ("job.running", "b"),
        ("job.failed", "b"),
    }
    assert len(kinds) == 7
    assert kinds.index(("job.running", "a")) < kinds.index(("job.success", "a"))


def test_secret_values_are_masked_in_job_logs(harness: Harness) -> None:
    harness.environ["TOKEN"] = "hunter2-secret"
    spec = "version: 1\nsecrets: [TOKEN]\njobs:\n  a: {run: a}\n"
    leaky = FakeOutcome(exit_code=1, output=b"token is hunter2-secret\n")
    result = harness.run(spec, FakeExecutor(outcomes({"a": leaky})))
    log, _ = harness.history().job_log(result.run.id, "a")
    assert "token is ***" in log
    assert "hunter2" not in log


def test_an_unset_secret_is_reported_as_a_warning(harness: Harness) -> None:
    spec = "version: 1\nsecrets: [TOKEN]\njobs:\n  a: {run: a}\n"
    result = harness.run(spec)
    assert result.run.status == "success"
    assert harness.reporter.warnings == [
        "secret TOKEN is not set in the environment; jobs see it unset"
    ]


def writing(files: dict[str, str]) -> FakeExecutor:
    """An executor whose every job writes `files` (relative to its cwd) and exits 0."""

    def script(request: ExecRequest, _attempt: int) -> FakeOutcome:
        for rel, text in files.items():
            path = request.cwd / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return FakeOutcome()

    return FakeExecutor(script)


def test_a_job_whose_declared_outputs_are_missing_fails(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  build: {run: build, outputs: [dist/*.whl]}\n"
    result = harness.run(spec)
    build = jobs_of(result)["build"]
    assert (build.status, build.reason) == ("failed", "outputs 'dist/*.whl' matched no files")
    assert result.run.status == "failed"


def test_declared_outputs_are_recorded_relative_to_the_workspace(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  build: {run: build, workdir: svc, outputs: [dist]}\n"
    (harness.root / "svc").mkdir()
    result = harness.run(spec, writing({"dist/app.whl": "wheel", "dist/sub/x.txt": "x"}))
    outputs = jobs_of(result)["build"].outputs
    assert [(o.path, o.size) for o in outputs] == [
        ("svc/dist/app.whl", 5),
        ("svc/dist/sub/x.txt", 1),
    ]


JUNIT = """\
<testsuite name="unit" tests="3" failures="1" skipped="1">
  <testcase classname="test_app" name="test_ok"/>
  <testcase classname="test_app" name="test_bad"><failure message="boom"/></testcase>
  <testcase classname="test_app" name="test_later"><skipped/></testcase>
</testsuite>
"""


def test_a_job_whose_test_report_has_failures_fails_despite_exit_zero(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  test: {run: test, reports: {junit: reports/*.xml}}\n"
    result = harness.run(spec, writing({"reports/unit.xml": JUNIT}))
    test = jobs_of(result)["test"]
    assert (test.status, test.exit_code, test.reason) == ("failed", 0, "1 test(s) failed")
    assert test.tests is not None
    assert (test.tests.passed, test.tests.failed, test.tests.skipped) == (1, 1, 1)
    assert test.tests.failures == ("test_app::test_bad",)


def test_a_condition_cannot_read_a_secret(harness: Harness) -> None:
    harness.environ["TOKEN"] = "hunter2"
    spec = """\
    version: 1
    secrets: [TOKEN]
    jobs:
      a: {run: a, if: "env.TOKEN == 'hunter2'"}
    """
    with pytest.raises(SpecError, match=r"reads env\.TOKEN, a secret: conditions cannot") as e:
        harness.run(spec)
    assert "hunter2" not in str(e.value)  # the condition as written holds it: masked


def test_the_log_keeps_an_unterminated_last_line_before_the_next_attempt(harness: Harness) -> None:
    spec = "version: 1\njobs:\n  flaky: {run: flaky, retry: {max: 1, backoff: 10ms}}\n"
    first = FakeOutcome(exit_code=1, output=b"first attempt dies mid-line")
    second = FakeOutcome(output=b"second attempt\n")
    result = harness.run(spec, FakeExecutor(outcomes({"flaky": [first, second]})))
    log, _ = harness.history().job_log(result.run.id, "flaky")
    assert log == (
        "first attempt dies mid-line\n--- attempt 1 failed: exited with code 1 ---\n"
        "--- attempt 2 of 2 (after 0.01s) ---\nsecond attempt\n"
    )


def test_a_jobs_cache_entry_is_written_after_the_jobs_it_lets_go_have_started(
    harness: Harness,
) -> None:
    # Writing the entry is bookkeeping: it waits until the scheduler has started
    # the dependents, so it does not compete with their start.
    for attempt in range(5):
        before = harness.cache_entries()
        watching = EntriesAtStart(FakeExecutor(), harness)
        jobs = f"  a: {{run: a{attempt}}}\n  b: {{run: b{attempt}, needs: [a]}}\n"
        spec = "version: 1\njobs:\n" + jobs
        result = harness.run(spec, watching, RunRequest(max_parallel=2))

        assert statuses(result) == {"a": "success", "b": "success"}
        assert watching.at_start == {"a": before, "b": before}
        assert harness.cache_entries() == before + 2


def test_a_cancel_request_after_the_run_touches_no_file(harness: Harness, tmp_path: Path) -> None:
    # The loop's wake-up pipe is closed with the Run; a late request (a signal
    # arriving as the command ends) must not write into whatever reuses its number.
    schedulers: list[Scheduler] = []
    harness.run("version: 1\njobs:\n  a: {run: a}\n", on_start=schedulers.append)
    files = [(tmp_path / f"f{i}").open("wb+") for i in range(4)]
    try:
        schedulers[0].request_cancel()
        for handle in files:
            handle.flush()
            assert Path(handle.name).read_bytes() == b""
    finally:
        for handle in files:
            handle.close()


def test_a_store_fault_recording_a_retry_stops_the_run_with_that_fault(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry waits while its record is written: the fault gives it up, and the Run
    # ends with the store's error (exit 3), not an internal one.
    record = Recorder.record

    def failing(self: Recorder, change: Change) -> None:
        if any(event.kind == "job.retrying" for event in change.events):
            raise StoreError("cannot record the run: disk I/O error")
        record(self, change)

    monkeypatch.setattr(Recorder, "record", failing)
    with pytest.raises(StoreError, match="disk I/O error"):
        harness.run(RETRIED, FakeExecutor(outcomes({"flaky": FAIL})))


class _Interrupting(Reporter):
    """A view interrupted (Ctrl-C in an embedding program) as it shows job b starting."""

    def job_started(self, name: str) -> None:
        if name == "b":
            raise KeyboardInterrupt


def test_an_interrupt_while_recording_loses_no_start_already_made(harness: Harness) -> None:
    executor = FakeExecutor(outcomes({name: FakeOutcome(duration_s=0.3) for name in "abc"}))
    service = harness.service(executor)
    pipeline = parse("version: 1\njobs:\n  a: {run: a}\n  b: {run: b}\n  c: {run: c}\n")
    with pytest.raises(KeyboardInterrupt):
        service.run(pipeline, RunRequest(max_parallel=4), _Interrupting())

    run_id = run_store.latest_run_id(service.db, project=harness.workspace.project)
    stored = run_store.get_run(service.db, run_id=run_id)
    assert set(executor.attempts) == {"a", "b", "c"}
    assert {job.name for job in stored.jobs if job.started_at is not None} == {"a", "b", "c"}


def test_a_runs_duration_counts_from_its_start_not_from_its_first_job(harness: Harness) -> None:
    # Time passes before the first job starts (here: the clock moved as the Run began; in
    # life: waiting for another Run's jobs, then restoring them from the cache).
    service = harness.service()
    spec = parse("version: 1\njobs:\n  a: {run: a}\n")

    def late(_: Scheduler) -> None:
        service.clock.advance(3.0)  # type: ignore[attr-defined]

    result = service.run(spec, RunRequest(), harness.reporter, on_start=late)

    assert result.run.duration_s == 3.0
    assert result.run.finished_at is not None and result.run.started_at is not None
    assert result.run.finished_at - result.run.started_at == 3.0

"""The scheduler's event loop, on real processes: jobs it waits on itself, not in threads.

`LocalExecutor` executions are `Watchable`: the scheduler waits on their
output and exit in its own loop. These tests run real scripts through it
(the fake executor's tests, in test_scheduler.py, take the thread path).
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from conveyor.engine.service import RunRequest
from conveyor.executors.base import ExecRequest, ExecResult, OutputSink, Watchable
from conveyor.executors.local import LocalExecution, LocalExecutor

from .harness import Harness, cancel_after, jobs_of, statuses

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def local(harness: Harness) -> Harness:
    harness.environ["PATH"] = os.environ["PATH"]
    return harness


def lines(path: Path) -> list[str]:
    return path.read_text().split()


def test_executions_of_the_local_executor_are_watched_by_the_loop(local: Harness) -> None:
    execution = LocalExecutor().start(
        ExecRequest(job="x", script="true", env=dict(os.environ), cwd=local.root), lambda _c: None
    )
    assert isinstance(execution, Watchable)
    assert execution.wait().outcome == "exited"


def test_a_dag_of_real_jobs_runs_in_order_of_its_needs(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: "echo a-start >> order; sleep 0.1; echo a-end >> order"}
      b: {run: "echo b-start >> order; sleep 0.2; echo b-end >> order", needs: [a]}
      c: {run: "echo c-start >> order; echo c-end >> order", needs: [a]}
      d: {run: "echo d-start >> order", needs: [b, c]}
      e: {run: "echo e-start >> order; sleep 0.1; echo e-end >> order"}
    """
    result = local.run(spec, LocalExecutor(), RunRequest(max_parallel=3))

    assert result.run.status == "success"
    order = lines(local.root / "order")
    for job, needs in {"b": "a", "c": "a", "d": "bc"}.items():
        for need in needs:
            assert order.index(f"{need}-end") < order.index(f"{job}-start")
    # `e` needs nothing: it ran beside `a`, not after the chain.
    assert order.index("e-start") < order.index("b-start")


def test_no_more_than_max_parallel_real_jobs_run_at_once(local: Harness) -> None:
    # Each job counts the jobs running beside it through files that exist while it runs.
    script = "touch running/$CONVEYOR_JOB; ls running | wc -l >> peaks; sleep 0.1"
    (local.root / "running").mkdir()
    # Distinct scripts: identical jobs would share one cache key.
    jobs = "".join(f"  j{i}: {{run: '{script}; rm running/j{i}'}}\n" for i in range(8))
    result = local.run("version: 1\njobs:\n" + jobs, LocalExecutor(), RunRequest(max_parallel=3))

    assert result.run.status == "success"
    peaks = [int(n) for n in lines(local.root / "peaks")]
    assert len(peaks) == 8
    assert 2 <= max(peaks) <= 3  # they ran side by side, never more than 3


def test_output_of_a_long_chatty_job_is_whole_while_others_come_and_go(local: Harness) -> None:
    jobs = "".join(f"  quick{i}: {{run: 'echo quick {i}'}}\n" for i in range(6))
    spec = "version: 1\njobs:\n  chatty: {run: 'seq 1 30000'}\n" + jobs
    result = local.run(spec, LocalExecutor(), RunRequest(max_parallel=3))

    assert result.run.status == "success"
    log, _ = local.history().job_log(result.run.id, "chatty")
    assert log.split() == [str(n) for n in range(1, 30001)]
    for i in range(6):
        assert local.history().job_log(result.run.id, f"quick{i}")[0] == f"quick {i}\n"


def test_a_real_job_times_out_and_its_dependents_are_skipped(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      slow: {run: "sleep 30", timeout: 300ms}
      after: {run: "true", needs: [slow]}
      beside: {run: "echo fine"}
    """
    started = time.monotonic()
    result = local.run(spec, LocalExecutor(kill_grace_s=1.0))

    assert time.monotonic() - started < 10
    assert statuses(result) == {"slow": "timed_out", "after": "skipped", "beside": "success"}
    assert "timed out after 0.3s" in (jobs_of(result)["slow"].reason or "")


def test_a_real_job_is_retried_after_its_backoff_and_passes(local: Harness) -> None:
    # Fails the first time (no marker yet), passes the second.
    spec = """\
    version: 1
    jobs:
      flaky: {run: "if [ -e seen ]; then echo second; else touch seen; echo first; exit 3; fi",
              retry: {max: 2, backoff: 50ms}}
      after: {run: "echo after", needs: [flaky]}
    """
    result = local.run(spec, LocalExecutor())

    assert statuses(result) == {"flaky": "success", "after": "success"}
    flaky = jobs_of(result)["flaky"]
    assert flaky.attempts == 2
    log, _ = local.history().job_log(result.run.id, "flaky")
    assert log == "first\n--- attempt 2 of 3 (after 0.05s) ---\nsecond\n"


def test_a_real_job_failing_every_attempt_fails_after_its_retries(local: Harness) -> None:
    spec = "version: 1\njobs:\n  bad: {run: 'exit 4', retry: {max: 2, backoff: 10ms}}\n"
    result = local.run(spec, LocalExecutor())

    bad = jobs_of(result)["bad"]
    assert (bad.status, bad.attempts, bad.exit_code) == ("failed", 3, 4)
    assert bad.reason == "exited with code 4"


def test_cancel_stops_real_jobs_at_once(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      long: {run: "sleep 30"}
      stubborn: {run: "trap '' TERM; sleep 30"}
      next: {run: "true", needs: [long]}
    """
    started = time.monotonic()
    with cancel_after(0.3) as on_start:
        result = local.run(spec, LocalExecutor(kill_grace_s=0.5), on_start=on_start)

    # `stubborn` ignores SIGTERM: SIGKILL follows after the grace period.
    assert time.monotonic() - started < 10
    assert result.run.status == "canceled"
    assert statuses(result) == {"long": "canceled", "stubborn": "canceled", "next": "canceled"}


def test_cancel_during_the_backoff_of_a_real_job_cancels_it(local: Harness) -> None:
    spec = "version: 1\njobs:\n  flaky: {run: 'exit 1', retry: {max: 3, backoff: 30s}}\n"
    started = time.monotonic()
    with cancel_after(0.3) as on_start:
        result = local.run(spec, LocalExecutor(), on_start=on_start)

    assert time.monotonic() - started < 10
    flaky = jobs_of(result)["flaky"]
    assert (flaky.status, flaky.attempts) == ("canceled", 1)
    assert flaky.reason == "canceled while waiting to retry"


def test_a_job_that_cannot_start_fails_without_stopping_the_loop(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      nowhere: {run: "true", workdir: missing}
      fine: {run: "echo fine"}
    """
    result = local.run(spec, LocalExecutor(), RunRequest(max_parallel=2, keep_going=True))

    nowhere = jobs_of(result)["nowhere"]
    assert nowhere.status == "failed"
    assert "missing" in (nowhere.reason or "")
    assert jobs_of(result)["fine"].status == "success"


class _Broken:
    """A watchable execution whose executor fails while the job runs.

    It runs a real process, but watches a pipe of its own that is always
    readable, and fails whenever it is advanced.
    """

    def __init__(self, inner: LocalExecution) -> None:
        self.inner = inner
        self.canceled = False
        self._read, write = os.pipe()
        os.write(write, b"x")
        os.close(write)

    @property
    def pid(self) -> int | None:
        return self.inner.pid

    def wait(self) -> ExecResult:
        raise AssertionError("a watchable execution is not waited on in a thread")

    def cancel(self) -> None:
        self.canceled = True
        self.inner.cancel()
        self.inner.wait()  # reaps the process it ran
        os.close(self._read)

    def attach(self, selector: selectors.BaseSelector) -> None:
        selector.register(self._read, selectors.EVENT_READ, self)

    def advance(self, ready: Iterable[int]) -> ExecResult | None:
        raise RuntimeError("lost track of the process")

    def wake_at(self) -> float | None:
        return None


class _BreakingExecutor(LocalExecutor):
    def __init__(self) -> None:
        super().__init__(kill_grace_s=0.5)
        self.broken: list[_Broken] = []

    def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
        execution = super().start(request, output)
        if request.job != "a":
            return execution
        broken = _Broken(execution)
        self.broken.append(broken)
        return broken  # type: ignore[return-value]  # stands in for a LocalExecution


def test_a_fault_while_watching_a_job_fails_it_instead_of_hanging_the_run(
    local: Harness,
) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: "sleep 30"}
      b: {run: "true", needs: [a]}
      c: {run: "echo c"}
    """
    executor = _BreakingExecutor()
    started = time.monotonic()
    result = local.run(spec, executor, RunRequest(max_parallel=2, keep_going=True))

    assert time.monotonic() - started < 10
    a = jobs_of(result)["a"]
    assert a.status == "failed"
    assert "internal error" in (a.reason or "")
    assert "lost track of the process" in (a.reason or "")
    assert statuses(result) == {"a": "failed", "b": "skipped", "c": "success"}
    # What the job ran is stopped, not left behind.
    assert [b.canceled for b in executor.broken] == [True]


def test_a_real_jobs_cache_entry_is_written_after_its_dependents_have_started(
    local: Harness,
) -> None:
    entries_at_start: dict[str, int] = {}

    def entries() -> int:
        return sum(1 for p in local.workspace.cache_dir.rglob("*") if p.is_file())

    class Watching(LocalExecutor):
        def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
            entries_at_start[request.job] = entries()
            return super().start(request, output)

    for attempt in range(5):
        before = entries()
        entries_at_start.clear()
        jobs = f"  a: {{run: 'echo a{attempt}'}}\n  b: {{run: 'echo b{attempt}', needs: [a]}}\n"
        result = local.run("version: 1\njobs:\n" + jobs, Watching(), RunRequest(max_parallel=2))

        assert statuses(result) == {"a": "success", "b": "success"}
        assert entries_at_start == {"a": before, "b": before}
        assert entries() == before + 2

"""The scheduler's event loop, on real processes: jobs it waits on itself, not in threads.

`LocalExecutor` executions are `Watchable`: the scheduler waits on their
output and exit in its own loop. These tests run real scripts through it
(the fake executor's tests, in test_scheduler.py, take the thread path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.cache import JobCache
from conveyor.artifacts.cas import Blob, ContentStore
from conveyor.core.errors import ArtifactError, NotFound
from conveyor.core.records import RunRecord
from conveyor.engine import runner
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest
from conveyor.executors.base import ExecRequest, OutputSink, Watchable
from conveyor.executors.local import LocalExecution, LocalExecutor

from .harness import EntriesAtStart, Harness, UnreadableOutputs, jobs_of, parse, statuses

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
    script = "touch running/$CONVEYOR_JOB; ls running | wc -l >> peaks; sleep 0.3"
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
    assert log == (
        "first\n--- attempt 1 failed: exited with code 3 ---\n"
        "--- attempt 2 of 3 (after 0.05s) ---\nsecond\n"
    )


def test_a_real_job_failing_every_attempt_fails_after_its_retries(local: Harness) -> None:
    spec = "version: 1\njobs:\n  bad: {run: 'exit 4', retry: {max: 2, backoff: 10ms}}\n"
    result = local.run(spec, LocalExecutor())

    bad = jobs_of(result)["bad"]
    assert (bad.status, bad.attempts, bad.exit_code) == ("failed", 3, 4)
    assert bad.reason == "exited with code 4"


def cancel_once(*markers: Path, after_s: float = 0.0) -> Callable[[Scheduler], None]:
    """An `on_start` hook: cancel once every marker file exists (the jobs reached that point)."""

    def on_start(scheduler: Scheduler) -> None:
        def watch() -> None:
            give_up = time.monotonic() + 20
            while not all(m.exists() for m in markers) and time.monotonic() < give_up:
                time.sleep(0.01)
            time.sleep(after_s)
            scheduler.request_cancel()

        threading.Thread(target=watch, daemon=True).start()

    return on_start


def test_cancel_stops_real_jobs_at_once(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      long: {run: "touch long-ready; sleep 30"}
      stubborn: {run: "trap '' TERM; touch stubborn-ready; sleep 30"}
      next: {run: "true", needs: [long]}
    """
    started = time.monotonic()
    on_start = cancel_once(local.root / "long-ready", local.root / "stubborn-ready")
    result = local.run(spec, LocalExecutor(kill_grace_s=0.5), on_start=on_start)

    # `stubborn` ignores SIGTERM: SIGKILL follows after the grace period.
    assert time.monotonic() - started < 10
    assert result.run.status == "canceled"
    assert statuses(result) == {"long": "canceled", "stubborn": "canceled", "next": "canceled"}


def test_cancel_during_the_backoff_of_a_real_job_cancels_it(local: Harness) -> None:
    spec = (
        "version: 1\njobs:\n  flaky: {run: 'touch tried; exit 1', retry: {max: 3, backoff: 30s}}\n"
    )
    started = time.monotonic()
    # Once the first attempt has exited, and its end been seen: the job waits 30 s to retry.
    on_start = cancel_once(local.root / "tried", after_s=0.3)
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


def pidfds() -> int:
    """How many pidfds this process holds (one per job being watched)."""
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(entry) == "anon_inode:[pidfd]"
    return count


def reaped(pid: int) -> bool:
    """Whether `pid`, a child of this process, is gone and was waited for."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


class _Recording(LocalExecutor):
    """Starts real processes and keeps their ids."""

    def __init__(self, kill_grace_s: float = 0.5) -> None:
        super().__init__(kill_grace_s=kill_grace_s)
        self.pids: list[int] = []

    def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
        execution = super().start(request, output)
        if execution.pid is not None:
            self.pids.append(execution.pid)
        return execution


class _FailingSink(_Recording):
    """Starts real processes; the output of job `a` cannot be kept (a full disk)."""

    def __init__(self) -> None:
        super().__init__(kill_grace_s=5.0)

    def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
        if request.job == "a":

            def output(_chunk: bytes) -> None:
                raise OSError(errno.ENOSPC, "No space left on device")

        return super().start(request, output)


def test_a_fault_while_watching_a_job_fails_it_and_leaves_nothing_of_it(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      a: {run: "trap '' TERM; echo x; sleep 30"}
      b: {run: "true", needs: [a]}
      c: {run: "echo c"}
    """
    executor = _FailingSink()
    before = pidfds()
    started = time.monotonic()
    result = local.run(spec, executor, RunRequest(max_parallel=2, keep_going=True))

    assert time.monotonic() - started < 10  # not the 30 s of the job, nor its SIGTERM grace
    a = jobs_of(result)["a"]
    assert a.status == "failed"
    assert "internal error" in (a.reason or "")
    assert "No space left on device" in (a.reason or "")
    assert statuses(result) == {"a": "failed", "b": "skipped", "c": "success"}
    # What the job ran is killed (it ignores SIGTERM), reaped, and its pidfd closed.
    assert executor.pids
    assert all(reaped(pid) for pid in executor.pids)
    assert pidfds() == before


class _NoRoomForFiles(ContentStore):
    """A content store that takes logs but not output files (a disk filling up)."""

    def put_file(self, path: Path) -> Blob:
        raise ArtifactError(f"cannot store {path.name}: No space left on device")


def _run_without_room_for_outputs(
    local: Harness, spec: str, executor: LocalExecutor, request: RunRequest
) -> RunRecord:
    """Run `spec` where outputs cannot be stored: the fault is raised; the Run as stored."""
    service = local.service(executor)
    service.cas = _NoRoomForFiles(local.workspace.cas_dir)
    service.cache = JobCache(local.workspace.cache_dir, service.cas)
    with pytest.raises(ArtifactError, match="No space left on device"):
        service.run(parse(spec), request, local.reporter)
    return local.history().get_run(None)


def test_an_infrastructure_fault_stops_the_real_jobs_running_beside_it(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      slow: {run: "touch ready; sleep 30"}
      stubborn: {run: "trap '' TERM; touch stubborn; sleep 30"}
      build:
        run: "while [ ! -e ready ] || [ ! -e stubborn ]; do sleep 0.01; done; echo hi > out.txt"
        outputs: [out.txt]
    """
    executor = _Recording()
    before = pidfds()
    started = time.monotonic()
    run = _run_without_room_for_outputs(
        local, spec, executor, RunRequest(max_parallel=3, keep_going=True)
    )

    # Not the 30 s of the jobs beside the fault: they are stopped (SIGKILL after the grace).
    assert time.monotonic() - started < 10
    jobs = {job.name: job for job in run.jobs}
    assert jobs["build"].status == "failed"
    assert "cannot store out.txt" in (jobs["build"].reason or "")
    for name in ("slow", "stubborn"):
        assert (jobs[name].status, jobs[name].reason) == (
            "canceled",
            "canceled: an infrastructure fault stopped the run",
        )
    assert run.status == "failed"
    assert len(executor.pids) == 3
    assert all(reaped(pid) for pid in executor.pids)
    assert pidfds() == before


def test_the_log_of_a_job_that_met_a_fault_is_stored_with_the_fault(local: Harness) -> None:
    spec = """\
    version: 1
    jobs:
      build: {run: "echo compiling; echo hi > out.txt", outputs: [out.txt]}
    """
    run = _run_without_room_for_outputs(local, spec, _Recording(), RunRequest(max_parallel=1))

    (build,) = run.jobs
    assert build.log_digest is not None
    assert build.attempts == 1
    log, live = local.history().job_log(run.id, "build")
    assert not live
    fault = "cannot store out.txt: No space left on device"
    assert log == f"compiling\n--- stopped by a fault: {fault} ---\n"
    assert not list(local.workspace.logs_dir.rglob("*.log"))  # no live file left behind


def test_an_output_that_cannot_be_read_fails_its_job_not_the_run_beside_it(
    local: Harness,
) -> None:
    spec = """\
    version: 1
    jobs:
      build: {run: "echo x > out.bin", outputs: [out.bin]}
      other: {run: "sleep 0.3; echo done"}
    """
    service = local.service(LocalExecutor())
    service.cas = UnreadableOutputs(local.workspace.cas_dir)
    service.cache = JobCache(local.workspace.cache_dir, service.cas)
    result = service.run(parse(spec), RunRequest(max_parallel=2, keep_going=True), local.reporter)

    # The job's own doing: it fails (exit code 1 for the command), the Run is no fault.
    build = jobs_of(result)["build"]
    assert (build.status, build.reason) == (
        "failed",
        "output out.bin cannot be read: Permission denied",
    )
    assert jobs_of(result)["other"].status == "success"
    assert (result.run.status, result.run.error) == ("failed", None)


def test_an_interrupt_of_the_loop_leaves_no_job_running(local: Harness) -> None:
    # Without the CLI's signal handlers (an embedding program), Ctrl-C raises
    # KeyboardInterrupt inside the loop: the jobs it started must not outlive it.
    spec = "version: 1\njobs:\n  long: {run: 'sleep 30'}\n  other: {run: 'sleep 30'}\n"
    pids: list[int] = []

    class Recording(LocalExecutor):
        def start(self, request: ExecRequest, output: OutputSink) -> LocalExecution:
            execution = super().start(request, output)
            if execution.pid is not None:
                pids.append(execution.pid)
            if len(pids) == 2:  # both run: interrupt the loop while it waits on them
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            return execution

    before = pidfds()
    with pytest.raises(KeyboardInterrupt):
        local.run(spec, Recording(), RunRequest(max_parallel=2))

    assert len(pids) == 2
    assert all(reaped(pid) for pid in pids)
    assert pidfds() == before


def test_a_real_jobs_cache_entry_is_written_after_its_dependents_have_started(
    local: Harness,
) -> None:
    for attempt in range(5):
        before = local.cache_entries()
        watching = EntriesAtStart(LocalExecutor(), local)
        jobs = f"  a: {{run: 'echo a{attempt}'}}\n  b: {{run: 'echo b{attempt}', needs: [a]}}\n"
        result = local.run("version: 1\njobs:\n" + jobs, watching, RunRequest(max_parallel=2))

        assert statuses(result) == {"a": "success", "b": "success"}
        assert watching.at_start == {"a": before, "b": before}
        assert local.cache_entries() == before + 2


def test_once_every_job_has_started_a_cache_entry_is_written_without_waiting_for_quiet(
    local: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quiet and the deadline far away: only "no job left to start" lets `quick`'s entry out
    # while `slow` still runs (before, the last jobs' entries waited for the end of the Run).
    monkeypatch.setattr(runner, "_QUIET_S", 60.0)
    monkeypatch.setattr(runner, "_STORE_WITHIN_S", 60.0)
    before = local.cache_entries()
    seen: list[int] = []

    def release_when_stored(scheduler: Scheduler) -> None:
        def watch() -> None:
            give_up = time.monotonic() + 20
            while local.cache_entries() == before and time.monotonic() < give_up:
                time.sleep(0.01)
            seen.append(local.cache_entries() - before)
            (local.root / "go").touch()

        threading.Thread(target=watch, daemon=True).start()

    spec = """\
    version: 1
    jobs:
      quick: {run: "echo quick"}
      slow: {run: "while [ ! -e go ]; do sleep 0.01; done"}
    """
    result = local.run(
        spec, LocalExecutor(), RunRequest(max_parallel=2), on_start=release_when_stored
    )

    assert statuses(result) == {"quick": "success", "slow": "success"}
    assert seen == [1]  # `quick`'s entry, written while `slow` waited for it
    assert local.cache_entries() == before + 2


def test_a_jobs_log_can_be_read_at_every_moment_of_its_end(local: Harness) -> None:
    """Read from another connection as `conveyor logs --follow` does, a job's log is live
    until its stored copy is recorded: never neither, as the job ends."""
    spec = """\
    version: 1
    jobs:
      quick: {run: "echo quick"}
      slow: {run: "sleep 1; echo slow"}
    """
    reader = local.history()
    done = threading.Event()
    seen: list[tuple[str, bool]] = []
    missing: list[str] = []

    def follow() -> None:
        while not done.is_set():
            try:
                seen.append(reader.job_log("1", "quick"))
            except NotFound as exc:
                if seen:  # once it was there, it must stay there
                    missing.append(str(exc))
            time.sleep(0.001)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        result = local.run(spec, LocalExecutor())
    finally:
        done.set()
        thread.join(10)

    assert statuses(result) == {"quick": "success", "slow": "success"}
    assert missing == []
    assert seen[-1] == ("quick\n", False)

"""Local executions driven from one outside event loop, as the scheduler drives them.

Nothing here calls `wait()`: the test owns a single selector, every execution
attaches its descriptors to it, and the loop calls `advance` with what is
ready and at each execution's `wake_at()`. Real processes, no mocks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from processes import Output, wait_gone

from conveyor.executors import local as local_module
from conveyor.executors.base import ExecRequest, ExecResult, Watchable
from conveyor.executors.local import LocalExecution, LocalExecutor

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("both_ways")]

# The longest the loop sleeps in `select`, as a scheduler bounds it.
_MAX_SELECT_S = 0.5


class Loop:
    """A scheduler's event loop in miniature: one selector, many executions, one thread."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.pending: list[LocalExecution] = []
        self.finished: list[tuple[LocalExecution, ExecResult]] = []

    def start(
        self,
        script: str,
        cwd: Path,
        *,
        executor: LocalExecutor | None = None,
        timeout_s: float | None = None,
    ) -> tuple[LocalExecution, Output]:
        """Start `script` and attach it to the loop's selector."""
        output = Output()
        request = ExecRequest(
            job="job",
            script=script,
            env={"PATH": os.environ["PATH"]},
            cwd=cwd,
            timeout_s=timeout_s,
        )
        execution = (executor or LocalExecutor(kill_grace_s=2.0)).start(request, output)
        execution.attach(self.selector)
        self.pending.append(execution)
        return execution, output

    def keys_of(self, execution: LocalExecution) -> list[selectors.SelectorKey]:
        return [key for key in self.selector.get_map().values() if key.data is execution]

    def step(self) -> None:
        """One turn: select until the earliest wake-up, then advance whoever is due."""
        # The wake-ups are taken before the select, as a scheduler keeps them in its timers.
        wakes = {execution: execution.wake_at() for execution in self.pending}
        due = [wake for wake in wakes.values() if wake is not None]
        timeout = _MAX_SELECT_S
        if due:
            timeout = min(_MAX_SELECT_S, max(0.0, min(due) - time.monotonic()))
        ready: dict[LocalExecution, list[int]] = {}
        for key, _ in self.selector.select(timeout):
            ready.setdefault(key.data, []).append(key.fd)
        now = time.monotonic()
        for execution in list(self.pending):
            fds = ready.get(execution, [])
            wake = wakes[execution]
            if not fds and (wake is None or wake > now):
                continue
            self.advance(execution, fds)

    def advance(self, execution: LocalExecution, fds: Sequence[int] = ()) -> ExecResult | None:
        """`execution.advance(fds)`, with its result recorded once there is one."""
        result = execution.advance(fds)
        if result is not None:
            self.pending.remove(execution)
            self.finished.append((execution, result))
            # Its descriptors left the selector with the result, not later.
            assert self.keys_of(execution) == []
        return result

    def run(self, *, until: Callable[[], bool] | None = None, within_s: float = 10.0) -> None:
        """Turn until every execution has a result (or `until()` holds)."""
        give_up = time.monotonic() + within_s
        while self.pending and not (until is not None and until()):
            assert time.monotonic() < give_up, "the loop did not get there in time"
            self.step()

    def result_of(self, execution: LocalExecution) -> ExecResult:
        for done, result in self.finished:
            if done is execution:
                return result
        raise AssertionError("the execution has no result")

    def close(self) -> None:
        """Stop whatever a failed test left running, then close the selector."""
        for execution in self.pending:
            execution.cancel()
            if execution.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(execution.pid, signal.SIGKILL)
        for execution in list(self.pending):
            self.advance(execution)  # one that failed to start has nothing to wait on
        with contextlib.suppress(AssertionError):
            self.run(within_s=5.0)
        self.selector.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    owned = Loop()
    try:
        yield owned
    finally:
        owned.close()


def identity(fd: int) -> tuple[int, int, int]:
    """What the open file behind `fd` is, to tell it from another that reuses the number."""
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino, info.st_mode)


def test_one_loop_serves_three_executions_each_with_its_own_output(
    loop: Loop, tmp_path: Path
) -> None:
    long, long_out = loop.start("sleep 0.5; echo a", tmp_path)
    echo, echo_out = loop.start("echo b", tmp_path)
    printf, printf_out = loop.start("printf 'c\\nd'", tmp_path)
    for execution in (long, echo, printf):
        assert isinstance(execution, Watchable)
        keys = loop.keys_of(execution)
        assert keys, "attach registered nothing"
        assert all(key.events == selectors.EVENT_READ for key in keys)
    # Every registered descriptor names its own execution as data.
    assert {key.data for key in loop.selector.get_map().values()} == {long, echo, printf}

    loop.run()

    for execution in (long, echo, printf):
        result = loop.result_of(execution)
        assert (result.outcome, result.exit_code) == ("exited", 0)
    assert (long_out.text, echo_out.text, printf_out.text) == ("a\n", "b\n", "c\nd")
    # The two short jobs ended while the long one was still being waited on.
    assert [execution for execution, _ in loop.finished][-1] is long


def test_a_finished_execution_leaves_no_descriptor_registered_or_open(
    loop: Loop, tmp_path: Path
) -> None:
    execution, output = loop.start("echo x", tmp_path)
    fds = [key.fd for key in loop.keys_of(execution)]
    # The output pipe, and a pidfd where the kernel offers one.
    assert 1 <= len(fds) <= 2
    assert any(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in fds)
    before = {fd: identity(fd) for fd in fds}

    loop.run()

    assert loop.result_of(execution).outcome == "exited"
    assert output.text == "x\n"
    assert loop.selector.get_map() == {}
    for fd, was in before.items():
        # Closed; or, should the number have been reused since, by another file.
        try:
            now = identity(fd)
        except OSError as exc:
            assert exc.errno == errno.EBADF
        else:
            assert now != was, f"descriptor {fd} is still open"


def test_a_timeout_is_acted_on_at_wake_at_and_kills_the_whole_group(
    loop: Loop, tmp_path: Path
) -> None:
    started = time.monotonic()
    execution, output = loop.start(
        "sleep 30 &\necho $!\nsleep 30\n",
        tmp_path,
        executor=LocalExecutor(kill_grace_s=0.5),
        timeout_s=0.3,
    )
    main = execution.pid
    assert main is not None
    # Nothing but the deadline can end this script: wake_at must announce it.
    wake = execution.wake_at()
    assert wake is not None
    assert wake <= started + 0.3 + 1.0

    loop.run()

    result = loop.result_of(execution)
    assert (result.outcome, result.exit_code) == ("timed_out", None)
    assert result.detail == "timed out after 0.3s"
    assert time.monotonic() - started < 5
    child = int(output.text.split()[0])
    assert wait_gone(child)
    assert wait_gone(main)


def test_cancel_on_the_loops_thread_is_acted_on_at_the_next_turn(
    loop: Loop, tmp_path: Path
) -> None:
    execution, output = loop.start(
        "echo started\nsleep 30 &\necho $!\nsleep 30\n",
        tmp_path,
        executor=LocalExecutor(kill_grace_s=2.0),
    )
    loop.run(until=lambda: len(output.text.splitlines()) >= 2)
    assert execution in loop.pending
    child = int(output.text.splitlines()[1])

    started = time.monotonic()
    execution.cancel()
    wake = execution.wake_at()
    assert wake is not None
    assert wake <= time.monotonic()  # due now: the loop must not sleep on it

    loop.run()

    result = loop.result_of(execution)
    assert (result.outcome, result.exit_code) == ("canceled", None)
    assert time.monotonic() - started < 3
    assert wait_gone(child)


def test_a_job_ignoring_sigterm_is_killed_at_wake_at_after_the_grace(
    loop: Loop, tmp_path: Path
) -> None:
    grace = 0.3
    execution, output = loop.start(
        "trap '' TERM\necho ready\nsleep 30\n",
        tmp_path,
        executor=LocalExecutor(kill_grace_s=grace),
    )
    # Cancel only once the trap is in place, so that SIGTERM is surely ignored.
    loop.run(until=lambda: output.text == "ready\n")
    assert execution in loop.pending

    started = time.monotonic()
    execution.cancel()
    loop.run()
    elapsed = time.monotonic() - started

    result = loop.result_of(execution)
    assert (result.outcome, result.exit_code) == ("canceled", None)
    # Not before the grace (SIGTERM did nothing), and not long after (SIGKILL did).
    assert grace <= elapsed < 3


def test_a_failed_start_registers_nothing_and_reports_at_the_first_advance(
    loop: Loop, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    execution, output = loop.start("true", missing)

    assert loop.selector.get_map() == {}
    result = loop.advance(execution)
    assert result is not None
    assert (result.outcome, result.exit_code) == ("failed_to_start", None)
    assert str(missing) in result.detail
    assert execution.pid is None
    assert output.chunks == []


def test_orphans_holding_the_output_are_killed_after_the_grace(loop: Loop, tmp_path: Path) -> None:
    started = time.monotonic()
    execution, output = loop.start(
        "sleep 30 &\necho $!\n",
        tmp_path,
        executor=LocalExecutor(kill_grace_s=2.0, orphan_grace_s=0.2),
    )

    loop.run()

    result = loop.result_of(execution)
    assert (result.outcome, result.exit_code) == ("exited", 0)
    assert time.monotonic() - started < 3
    orphan = int(output.text)
    assert output.text == f"{orphan}\n"
    assert wait_gone(orphan)


def test_output_written_before_a_timeout_is_kept(loop: Loop, tmp_path: Path) -> None:
    execution, output = loop.start(
        "echo before; sleep 30",
        tmp_path,
        executor=LocalExecutor(kill_grace_s=0.5),
        timeout_s=0.3,
    )

    loop.run()

    assert loop.result_of(execution).outcome == "timed_out"
    assert output.text == "before\n"


def test_wake_at_holds_still_until_advance_acts_on_it(
    loop: Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loop may ask `wake_at()` again after it slept (the scheduler does): a time
    # that moved on with each call would never come due. Without a pidfd (older
    # kernels, other systems) the exit is polled at such times.
    monkeypatch.setattr(local_module, "_open_pidfd", lambda _pid: None)
    polled, _ = loop.start("sleep 0.2; echo polled", tmp_path)
    canceled, _ = loop.start("sleep 30", tmp_path)
    loop.advance(polled)
    canceled.cancel()
    assert polled.wake_at() == polled.wake_at()
    assert canceled.wake_at() == canceled.wake_at()

    give_up = time.monotonic() + 10
    while loop.pending:
        assert time.monotonic() < give_up, "a wake-up never came due"
        wakes = [w for e in loop.pending if (w := e.wake_at()) is not None]
        timeout = max(0.0, min(wakes) - time.monotonic()) if wakes else 0.5
        ready: dict[object, list[int]] = {}
        for key, _ in loop.selector.select(timeout):
            ready.setdefault(key.data, []).append(key.fd)
        now = time.monotonic()
        for execution in list(loop.pending):
            wake = execution.wake_at()  # asked again, after sleeping
            if execution in ready or (wake is not None and wake <= now):
                loop.advance(execution, ready.get(execution, []))

    assert loop.result_of(polled) == ExecResult("exited", 0, loop.result_of(polled).duration_s)
    assert loop.result_of(canceled).outcome == "canceled"

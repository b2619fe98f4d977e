"""The scripted executor the engine's tests run on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conveyor.executors.base import ExecRequest
from conveyor.executors.fake import FakeExecutor, FakeOutcome


def request(job: str) -> ExecRequest:
    return ExecRequest(job=job, script="true", env={}, cwd=Path())


def test_by_default_every_attempt_exits_zero_at_once() -> None:
    result = FakeExecutor().start(request("a"), lambda _chunk: None).wait()
    assert (result.outcome, result.exit_code, result.duration_s) == ("exited", 0, 0.0)


def test_attempts_are_counted_per_job_and_requests_recorded() -> None:
    seen: list[tuple[str, int]] = []

    def script(req: ExecRequest, attempt: int) -> FakeOutcome:
        seen.append((req.job, attempt))
        return FakeOutcome()

    executor = FakeExecutor(script)
    for job in ("a", "a", "b", "a"):
        executor.start(request(job), lambda _chunk: None).wait()
    assert seen == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]
    assert executor.attempts == {"a": 3, "b": 1}
    assert [r.job for r in executor.requests] == ["a", "a", "b", "a"]


def test_the_scripted_output_and_outcome_are_played() -> None:
    chunks: list[bytes] = []
    outcome = FakeOutcome(exit_code=None, output=b"hi\n", outcome="timed_out")
    result = FakeExecutor(lambda _r, _a: outcome).start(request("a"), chunks.append).wait()
    assert chunks == [b"hi\n"]
    assert (result.outcome, result.exit_code) == ("timed_out", None)


def test_cancel_ends_a_long_attempt_early() -> None:
    execution = FakeExecutor(lambda _r, _a: FakeOutcome(duration_s=30)).start(
        request("a"), lambda _chunk: None
    )
    timer = threading.Timer(0.05, execution.cancel)
    started = time.monotonic()
    timer.start()
    try:
        result = execution.wait()
    finally:
        timer.join()
    assert result.outcome == "canceled"
    assert time.monotonic() - started < 5


def test_an_attempt_canceled_before_waiting_is_canceled() -> None:
    execution = FakeExecutor().start(request("a"), lambda _chunk: None)
    execution.cancel()
    assert execution.wait().outcome == "canceled"

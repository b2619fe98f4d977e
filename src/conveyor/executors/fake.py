"""An Executor that runs nothing: scripted outcomes for tests of the engine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from conveyor.core.values import frozen
from conveyor.executors.base import ExecRequest, ExecResult, Outcome, OutputSink


@frozen
class FakeOutcome:
    """What one attempt does: print `output`, take `duration_s`, end as `outcome`."""

    exit_code: int | None = 0
    output: bytes = b""
    duration_s: float = 0.0
    outcome: Outcome = "exited"


Script = Callable[[ExecRequest, int], FakeOutcome]


class FakeExecutor:
    """Plays `script(request, attempt)` for each start; records every request."""

    def __init__(self, script: Script | None = None) -> None:
        self._script = script or (lambda _request, _attempt: FakeOutcome())
        self._lock = threading.Lock()
        self.requests: list[ExecRequest] = []
        self.attempts: dict[str, int] = {}

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        return False

    def start(self, request: ExecRequest, output: OutputSink) -> FakeExecution:
        with self._lock:
            self.requests.append(request)
            attempt = self.attempts.get(request.job, 0) + 1
            self.attempts[request.job] = attempt
        script = self._script
        return FakeExecution(lambda: script(request, attempt), output)


class FakeExecution:
    """A scripted attempt; `cancel()` ends its wait early as `canceled`."""

    def __init__(self, plan: Callable[[], FakeOutcome], output: OutputSink) -> None:
        # Played in wait(), like a real process runs after start() returns.
        self._make_plan = plan
        self._output = output
        self._canceled = threading.Event()

    @property
    def pid(self) -> int | None:
        return None

    def cancel(self) -> None:
        self._canceled.set()

    def wait(self) -> ExecResult:
        plan = self._make_plan()
        if plan.output:
            self._output(plan.output)
        if plan.duration_s and self._canceled.wait(plan.duration_s):
            return ExecResult("canceled", None, plan.duration_s, "canceled")
        if self._canceled.is_set():
            return ExecResult("canceled", None, 0.0, "canceled")
        return ExecResult(plan.outcome, plan.exit_code, plan.duration_s)

"""The control-plane interface every CLI command goes through.

Two implementations answer it: `EmbeddedControlPlane` calls the services on
the local store directly; a remote one will call `conveyor server`'s REST API.
Commands never reach past this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from conveyor.core.records import RunRecord
from conveyor.engine.reporting import Reporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import Explanation, RunRequest, RunResult
from conveyor.spec.pipeline import Pipeline


class ControlPlane(Protocol):
    """Runs, their history, logs and explanations."""

    def run(
        self,
        pipeline: Pipeline,
        request: RunRequest,
        reporter: Reporter,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult: ...

    def list_runs(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        branch: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]: ...

    def get_run(self, ref: str | None) -> RunRecord: ...

    def job_log(self, ref: str | None, job: str) -> tuple[str, bool]: ...

    def explain(self, ref: str | None, job: str) -> Explanation: ...

    def close(self) -> None: ...

"""The control-plane interface every CLI command goes through.

`EmbeddedControlPlane` answers it on the local store; a remote implementation
will answer it through `conveyor server`'s REST API. Commands never reach
past this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from conveyor.core.records import RunRecord
from conveyor.engine.history import Explanation
from conveyor.engine.preview import PlannedJob
from conveyor.engine.reporting import Reporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest, RunResult
from conveyor.spec.pipeline import Pipeline


class ControlPlane(Protocol):
    """Runs, their history, logs, artifacts and explanations."""

    def run(
        self,
        pipeline: Pipeline,
        request: RunRequest,
        reporter: Reporter,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult: ...

    def dry_run(self, pipeline: Pipeline, request: RunRequest) -> list[PlannedJob]: ...

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

    def artifact_available(self, digest: str) -> bool: ...

    def fetch_artifact(self, digest: str, dest: Path) -> None: ...

    def close(self) -> None: ...

"""How the engine tells an interface what is happening, as it happens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.core.records import JobRecord, RunId, RunRecord


class Reporter(Protocol):
    """Receives progress from any thread; implementations serialize their own output."""

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None: ...

    def job_started(self, name: str) -> None: ...

    def job_line(self, name: str, line: str) -> None: ...

    def job_finished(self, job: JobRecord) -> None: ...

    def warn(self, message: str) -> None: ...

    def run_finished(self, run: RunRecord) -> None: ...


class SilentReporter:
    """Reports nothing (for tests and `--json` without a terminal)."""

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None:
        pass

    def job_started(self, name: str) -> None:
        pass

    def job_line(self, name: str, line: str) -> None:
        pass

    def job_finished(self, job: JobRecord) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass

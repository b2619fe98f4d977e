"""How the engine tells an interface what is happening, as it happens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.core.records import AttemptOutcome, JobRecord, RunId, RunRecord


class Reporter(Protocol):
    """Receives progress from any thread; implementations serialize their own output."""

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None: ...

    def job_started(self, name: str) -> None: ...

    def job_line(self, name: str, line: str) -> None: ...

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        """Attempt `ended` of job `name` failed; the next one starts in `delay_s`."""

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

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        pass

    def job_finished(self, job: JobRecord) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass


class GuardedReporter:
    """Keeps a broken view from breaking the Run it shows.

    Progress is only a view: when the reporter fails (a closed pipe, a full
    disk), it is switched off and the Run goes on; `failure` says why.
    """

    def __init__(self, inner: Reporter) -> None:
        self._inner = inner
        self.failure: BaseException | None = None

    def _call(self, method: str, *args: object) -> None:
        if self.failure is not None:
            return
        try:
            getattr(self._inner, method)(*args)
        except Exception as exc:  # noqa: BLE001 - any failure of the view switches it off
            self.failure = exc

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None:
        self._call("run_started", run_id, jobs)

    def job_started(self, name: str) -> None:
        self._call("job_started", name)

    def job_line(self, name: str, line: str) -> None:
        self._call("job_line", name, line)

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        self._call("job_retrying", name, ended, delay_s)

    def job_finished(self, job: JobRecord) -> None:
        self._call("job_finished", job)

    def warn(self, message: str) -> None:
        self._call("warn", message)

    def run_finished(self, run: RunRecord) -> None:
        self._call("run_finished", run)

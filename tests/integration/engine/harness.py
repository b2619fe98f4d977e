"""Running pipelines through the real RunService on a fake executor, in a throwaway workspace."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.artifacts.cas import Blob, ContentStore, UnreadableFile
from conveyor.core.clock import FrozenClock
from conveyor.core.records import JobRecord
from conveyor.engine.history import History
from conveyor.engine.reporting import SilentReporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest, RunResult, RunService
from conveyor.engine.workspace import Workspace
from conveyor.executors.base import ExecRequest, ExecResult, Execution, Executor, OutputSink
from conveyor.executors.fake import FakeExecutor, FakeOutcome, Script
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.pipeline import Pipeline
from conveyor.store import runs as run_store


class Reporter(SilentReporter):
    """Keeps the warnings a Run reports."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class Harness:
    """One workspace with its store; each `run` uses a fresh RunService on it."""

    root: Path
    workspace: Workspace
    environ: dict[str, str] = field(default_factory=lambda: {"CONVEYOR_ACTOR": "tester"})
    reporter: Reporter = field(default_factory=Reporter)
    _services: list[RunService] = field(default_factory=list)

    def service(self, executor: Executor | None = None) -> RunService:
        svc = RunService(
            self.workspace,
            executor=executor or FakeExecutor(),
            clock=FrozenClock(),
            environ=self.environ,
        )
        self._services.append(svc)
        return svc

    def history(self) -> History:
        """The workspace's history, read through a fresh RunService's store."""
        svc = self.service()
        return History(
            self.workspace, db=svc.db, cas=svc.cas, executor=svc.executor, clock=svc.clock
        )

    def run(
        self,
        pipeline: Pipeline | str,
        executor: Executor | None = None,
        request: RunRequest | None = None,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult:
        if isinstance(pipeline, str):
            pipeline = parse(pipeline)
        service = self.service(executor)
        result = service.run(
            pipeline, request or RunRequest(max_parallel=4), self.reporter, on_start=on_start
        )
        # The Run a Run returns is made from what it recorded, not read back: after every
        # Run of these tests it must be what the store holds.
        assert result.run == run_store.get_run(service.db, run_id=result.run.id)
        return result

    def cache_entries(self) -> int:
        """How many files the workspace's job cache holds."""
        return sum(1 for p in self.workspace.cache_dir.rglob("*") if p.is_file())

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def close(self) -> None:
        for svc in self._services:
            svc.close()


def parse(text: str) -> Pipeline:
    return parse_pipeline(textwrap.dedent(text))


def jobs_of(result: RunResult) -> dict[str, JobRecord]:
    return {job.name: job for job in result.run.jobs}


def statuses(result: RunResult) -> dict[str, str]:
    return {job.name: job.status for job in result.run.jobs}


def outcomes(table: dict[str, FakeOutcome | list[FakeOutcome]]) -> Script:
    """A script from job name to its outcome (or one outcome per attempt); others exit 0."""

    def script(request: ExecRequest, attempt: int) -> FakeOutcome:
        planned = table.get(request.job, FakeOutcome())
        if isinstance(planned, list):
            return planned[min(attempt, len(planned)) - 1]
        return planned

    return script


@dataclass
class Tracking:
    """Wraps an executor to see when each attempt runs: order and concurrency."""

    inner: Executor
    log: list[tuple[str, str]] = field(default_factory=list)
    running: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        return self.inner.stop_orphans(pgid, markers)

    def start(self, request: ExecRequest, output: OutputSink) -> _TrackedExecution:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.log.append(("start", request.job))
        return _TrackedExecution(self, request.job, self.inner.start(request, output))

    def _ended(self, job: str) -> None:
        with self._lock:
            self.running -= 1
            self.log.append(("end", job))

    def index(self, event: str, job: str) -> int:
        return self.log.index((event, job))


@dataclass
class _TrackedExecution:
    tracking: Tracking
    job: str
    inner: Execution

    @property
    def pid(self) -> int | None:
        return self.inner.pid

    def wait(self) -> ExecResult:
        try:
            return self.inner.wait()
        finally:
            self.tracking._ended(self.job)

    def cancel(self) -> None:
        self.inner.cancel()


@contextmanager
def cancel_after(seconds: float) -> Iterator[Callable[[Scheduler], None]]:
    """An `on_start` hook that asks the Scheduler to cancel from a timer thread."""
    timers: list[threading.Timer] = []

    def on_start(scheduler: Scheduler) -> None:
        timer = threading.Timer(seconds, scheduler.request_cancel)
        timers.append(timer)
        timer.start()

    try:
        yield on_start
    finally:
        for timer in timers:
            timer.cancel()
            timer.join()


@dataclass
class EntriesAtStart:
    """Wraps an executor: how many cache entries the workspace held as each job started."""

    inner: Executor
    harness: Harness
    at_start: dict[str, int] = field(default_factory=dict)

    def stop_orphans(self, pgid: int, markers: Sequence[str]) -> bool:
        return self.inner.stop_orphans(pgid, markers)

    def start(self, request: ExecRequest, output: OutputSink) -> Execution:
        self.at_start[request.job] = self.harness.cache_entries()
        return self.inner.start(request, output)  # unwrapped: a watchable one stays watchable


class UnreadableOutputs(ContentStore):
    """A content store given outputs it cannot open (as a job's file of mode 000 would be,
    for a runner that is not root)."""

    def put_file(self, path: Path) -> Blob:
        raise UnreadableFile(path, "Permission denied")

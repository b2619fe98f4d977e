"""Showing a Run as it happens: plain prefixed lines, or a live Rich view on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

from conveyor.core.durations import format_duration
from conveyor.core.records import AttemptOutcome, JobRecord, RunId, RunRecord
from conveyor.engine.reporting import Reporter, SilentReporter

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

SYMBOLS = {
    "success": "✓",
    "cached": "●",
    "failed": "✗",
    "timed_out": "⏱",
    "skipped": "○",
    "canceled": "■",
    "runner_lost": "✗",
}
TAIL_LINES = 20


def describe(job: JobRecord) -> str:
    """One line about a job: status, time, why (for a running one, its attempt)."""
    parts = [job.status.replace("_", " ")]
    if job.duration_s is not None and not job.cached and job.status != "skipped":
        parts.append(format_duration(job.duration_s))
    if job.allow_failure and job.status in ("failed", "timed_out"):
        parts.append("(allowed to fail)")
    if job.attempts > 1:
        on = job.status == "running"  # `conveyor show` of a run going on
        parts.append(f"attempt {job.attempts}" if on else f"after {job.attempts} attempts")
    if job.tests is not None:
        t = job.tests
        parts.append(f"tests: {t.passed} passed, {t.failed} failed, {t.skipped} skipped")
    if job.reason and job.status not in ("success", "cached"):
        parts.append(f"- {job.reason}")
    return " ".join(parts)


def describe_attempt(attempt: AttemptOutcome) -> str:
    """One line about an attempt: `attempt 2  failed 1.3s on ci-4 - why` (no runner: here)."""
    parts = [f"attempt {attempt.number} ", attempt.status.replace("_", " ")]
    if attempt.duration_s is not None:
        parts.append(format_duration(attempt.duration_s))
    if attempt.runner:
        parts.append(f"on {attempt.runner}")
    if attempt.reason and attempt.status != "success":
        parts.append(f"- {attempt.reason}")
    return " ".join(parts)


def retrying(ended: AttemptOutcome, delay_s: float) -> str:
    """`attempt 1  failed 16ms - exited with code 3; retrying in 1s`."""
    return f"{describe_attempt(ended)}; retrying in {format_duration(delay_s)}"


class PlainReporter:
    """Prefixed lines, for logs and pipes: `[job] output` and one line per state change."""

    def __init__(self, stream: TextIO, *, show_output: bool = True) -> None:
        self._stream = stream
        self._show_output = show_output
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None:
        self._write(f"run {run_id}: {len(jobs)} job{'s' if len(jobs) != 1 else ''}")

    def job_started(self, name: str) -> None:
        self._write(f"▶ {name}")

    def job_line(self, name: str, line: str) -> None:
        if self._show_output:
            self._write(f"[{name}] {line}")

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        self._write(f"↻ {name} {retrying(ended, delay_s)}")

    def job_finished(self, job: JobRecord) -> None:
        self._write(f"{SYMBOLS.get(job.status, '?')} {job.name} {describe(job)}")

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")

    def run_finished(self, run: RunRecord) -> None:
        pass


class LiveReporter:
    """A Rich live view: running jobs with elapsed time; finished jobs scroll above.

    Output of a job that fails is shown (its last lines) when it finishes;
    the complete log is always one `conveyor logs` away.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._tails: dict[str, deque[str]] = {}
        self._total = 0
        self._done = 0
        self._attempts: dict[str, int] = {}  # the attempt running, once past the first
        self._live: Live | None = None

    def run_started(self, run_id: RunId, jobs: Sequence[str]) -> None:
        from rich.live import Live

        self._total = len(jobs)
        self._console.print(f"[bold]run {run_id}[/]: {len(jobs)} jobs")
        self._live = Live(
            get_renderable=self._render,
            console=self._console,
            refresh_per_second=8,
            transient=True,
        )
        self._live.start()

    def _render(self) -> RenderableType:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1])
            done = self._done
        for name, since in running[:20]:
            elapsed = format_duration(now - since)
            if (attempt := self._attempts.get(name, 1)) > 1:
                elapsed += f", attempt {attempt}"
            table.add_row("[yellow]⠿[/]", name, f"[dim]{elapsed}[/]")
        if len(running) > 20:
            table.add_row("", f"[dim]… and {len(running) - 20} more[/]", "")
        table.add_row("", f"[dim]{done}/{self._total} done[/]", "")
        return table

    def job_started(self, name: str) -> None:
        with self._lock:
            self._running[name] = time.monotonic()
            self._tails[name] = deque(maxlen=TAIL_LINES)

    def job_line(self, name: str, line: str) -> None:
        with self._lock:
            tail = self._tails.get(name)
            if tail is not None:
                tail.append(line)

    def job_retrying(self, name: str, ended: AttemptOutcome, delay_s: float) -> None:
        """Say the attempt failed, with the last lines it wrote; the job stays in the view."""
        from rich.markup import escape

        with self._lock:
            tail = self._tails.get(name)
            lines = list(tail or ())
            if tail is not None:
                tail.clear()  # the next attempt's lines are its own
            self._attempts[name] = ended.number + 1
        self._console.print(
            f"[yellow]↻[/] {escape(name)} [dim]{escape(retrying(ended, delay_s))}[/]"
        )
        self._print_tail(lines)

    def job_finished(self, job: JobRecord) -> None:
        from rich.markup import escape

        with self._lock:
            self._running.pop(job.name, None)
            self._attempts.pop(job.name, None)
            tail = self._tails.pop(job.name, None)
            self._done += 1
        style = {
            "success": "green",
            "cached": "cyan",
            "failed": "red",
            "timed_out": "red",
            "runner_lost": "red",
        }
        color = style.get(job.status, "dim")
        self._console.print(
            f"[{color}]{SYMBOLS.get(job.status, '?')}[/] {escape(job.name)} "
            f"[dim]{escape(describe(job))}[/]"
        )
        if tail and job.status in ("failed", "timed_out", "runner_lost"):
            self._print_tail(tail)

    def _print_tail(self, lines: Iterable[str]) -> None:
        """The last lines a job (or an attempt) wrote, under the line about it."""
        from rich.markup import escape

        for line in lines:
            self._console.print(f"    [dim]│[/] {escape(line)}", highlight=False)

    def warn(self, message: str) -> None:
        from rich.markup import escape

        self._console.print(f"[yellow]warning:[/] {escape(message)}")

    def run_finished(self, run: RunRecord) -> None:
        self.stop()

    def stop(self) -> None:
        """End the live view (also when the run ends by an error)."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_reporter(*, json_mode: bool, quiet: bool, stream: TextIO | None = None) -> Reporter:
    """The reporter for this terminal: live on a TTY, plain lines elsewhere."""
    out = stream or (sys.stderr if json_mode else sys.stdout)
    if quiet:
        return SilentReporter()
    if out.isatty():
        from rich.console import Console

        return LiveReporter(Console(file=out))
    return PlainReporter(out)

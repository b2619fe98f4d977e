"""What a person sees while a Run goes: the live view on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re

from rich.console import Console

from builders.records import job_record
from conveyor.cli.progress import LiveReporter, PlainReporter, describe
from conveyor.core.records import AttemptOutcome, JobRecord, RunId, TestCounts


def _job(name: str, status: str, **extra: object) -> JobRecord:
    """A JobRun that took 1.5 s, exiting 1 when it failed."""
    fields: dict[str, object] = {"exit_code": 1 if status == "failed" else 0}
    fields.update({"finished_at": 1.5, "duration_s": 1.5} | extra)
    return job_record(name, status, **fields)


def test_the_live_view_prints_finished_jobs_and_the_tail_of_a_failing_ones_log() -> None:
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, force_terminal=True, width=100))
    reporter.run_started(RunId(3), ["lint", "test"])
    reporter.job_started("lint")
    reporter.job_started("test")
    for i in range(30):
        reporter.job_line("test", f"line {i}")
    reporter.job_line("lint", "all good")
    reporter.job_finished(_job("lint", "success"))
    reporter.job_finished(_job("test", "failed", reason="exited with code 1"))
    reporter.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "run 3" in text
    assert "lint" in text and "success" in text
    assert "exited with code 1" in text
    # The last lines of the failing job are shown, the early ones are not.
    assert "line 29" in text and "line 10" in text
    assert "line 9\n" not in text
    # A succeeding job's output stays in its log.
    assert "all good" not in text


def test_plain_lines_carry_the_job_name_and_no_terminal_codes() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter.run_started(RunId(4), ["a"])
    reporter.job_started("a")
    reporter.job_line("a", "hello")
    reporter.job_finished(_job("a", "success", tests=TestCounts(3, 0, 1)))
    lines = out.getvalue().splitlines()
    assert lines == [
        "run 4: 1 job",
        "▶ a",
        "[a] hello",
        "✓ a success 1.5s tests: 3 passed, 0 failed, 1 skipped",
    ]
    assert "\x1b" not in out.getvalue()


def test_a_job_that_was_allowed_to_fail_says_so() -> None:
    job = _job("docs", "failed", allow_failure=True, reason="exited with code 2", attempts=3)
    assert describe(job) == "failed 1.5s (allowed to fail) after 3 attempts - exited with code 2"


def test_a_job_on_its_second_attempt_says_which_it_is_on() -> None:
    running = job_record("flaky", "running", attempts=2, duration_s=None, finished_at=None)
    assert describe(running) == "running attempt 2"
    assert describe(job_record("flaky", "success", attempts=2)) == "success 1.0s after 2 attempts"


FAILED_ONCE = AttemptOutcome(
    number=1,
    status="failed",
    runner=None,
    started_at=0.0,
    finished_at=0.016,
    duration_s=0.016,
    exit_code=3,
    reason="exited with code 3",
)


def test_a_plain_line_says_an_attempt_failed_and_when_the_next_begins() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter.job_retrying("flaky", FAILED_ONCE, 1.0)
    assert out.getvalue() == (
        "↻ flaky attempt 1  failed 16ms - exited with code 3; retrying in 1.0s\n"
    )


def test_the_live_view_shows_a_failed_attempts_tail_and_then_the_attempt_running() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    reporter = LiveReporter(console)
    reporter.run_started(RunId(5), ["flaky"])
    reporter.job_started("flaky")
    reporter.job_line("flaky", "first try")
    reporter.job_retrying("flaky", FAILED_ONCE, 1.0)
    reporter.job_line("flaky", "second try")
    with console.capture() as view:
        console.print(reporter._render())
    reporter.job_finished(_job("flaky", "failed", reason="exited with code 3", attempts=2))
    reporter.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())

    assert "↻ flaky attempt 1  failed 16ms - exited with code 3; retrying in 1.0s" in text
    # Each attempt's last lines once: attempt 1's as it failed, attempt 2's as the job did.
    assert text.count("first try") == 1 and text.count("second try") == 1
    assert text.index("first try") < text.index("second try")
    assert "attempt 2" in view.get()

"""What `conveyor show` and `conveyor run --remote` print about a Run, its jobs and attempts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from builders.records import job_record, run_record
from conveyor.cli import render
from conveyor.cli.progress import describe_attempt
from conveyor.cli.runs_control import _progress_printer
from conveyor.core.records import AttemptOutcome, JobRecord, RunRecord


def _job(name: str, status: str, *tried: AttemptOutcome, reason: str | None = None) -> JobRecord:
    return job_record(name, status, attempts=len(tried), reason=reason, attempt_results=tried)


def _run(*jobs: JobRecord, status: str = "running") -> RunRecord:
    return run_record(*jobs, status=status, id=12, duration_s=1.25)


def _attempt(number: int, status: str, reason: str | None = None) -> AttemptOutcome:
    return AttemptOutcome(
        number=number,
        status=status,
        runner="ci-4",
        started_at=float(number),
        duration_s=None if status == "running" else 1.3,
        reason=reason,
    )


FAILED = _attempt(1, "failed", "exited with code 3")


@pytest.mark.parametrize(("count", "said"), [(1, "1 job (1 success)"), (3, "3 jobs (3 success)")])
def test_the_summary_counts_jobs_in_words(count: int, said: str) -> None:
    jobs = [_job(f"j{i}", "success") for i in range(count)]
    assert render.summary(_run(*jobs, status="success")).startswith(
        f"run 12 success in 1.2s: {said}"
    )


def test_show_lists_each_attempt_under_its_job() -> None:
    job = _job("flaky", "success", FAILED, _attempt(2, "success"))
    shown = render.show(_run(job, status="success")).splitlines()
    assert shown[-2:] == [
        "      attempt 1  failed 1.3s on ci-4 - exited with code 3",
        "      attempt 2  success 1.3s on ci-4",
    ]


def test_an_attempt_of_a_runner_since_unknown_and_without_a_duration_says_what_is_known() -> None:
    held = replace(_attempt(1, "runner_lost", "its lease ran out"), runner=None, duration_s=None)
    assert describe_attempt(held) == "attempt 1  runner lost - its lease ran out"


def test_following_a_remote_run_says_each_retried_attempt_once_and_the_jobs_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = _progress_printer()
    show(_run(_job("flaky", "running", _attempt(1, "running"))))
    show(_run(_job("flaky", "queued", FAILED)))
    show(_run(_job("flaky", "running", FAILED, _attempt(2, "running"))))
    show(_run(_job("flaky", "success", FAILED, _attempt(2, "success")), status="success"))
    assert capsys.readouterr().out.splitlines() == [
        "flaky: running",
        "flaky: attempt 1  failed 1.3s on ci-4 - exited with code 3",
        "flaky: queued for attempt 2",
        "flaky: running",
        "flaky: success",
    ]


def test_an_attempt_that_came_and_went_between_two_looks_is_still_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = _progress_printer()
    show(_run(_job("flaky", "running", _attempt(1, "running"))))
    show(_run(_job("flaky", "success", FAILED, _attempt(2, "success")), status="success"))
    assert capsys.readouterr().out.splitlines() == [
        "flaky: running",
        "flaky: attempt 1  failed 1.3s on ci-4 - exited with code 3",
        "flaky: success",
    ]


def test_the_attempt_that_ends_a_job_is_told_by_the_jobs_own_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = _progress_printer()
    show(_run(_job("flaky", "queued", FAILED)))
    halted = "exited with code 3; not retried: 'broken' failed"
    show(_run(_job("flaky", "failed", FAILED, reason=halted), status="failed"))
    assert capsys.readouterr().out.splitlines() == [
        "flaky: attempt 1  failed 1.3s on ci-4 - exited with code 3",
        "flaky: queued for attempt 2",
        f"flaky: failed ({halted})",
    ]

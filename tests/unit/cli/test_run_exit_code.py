"""A Run's exit code: 0 success, 1 when a job failed, 3 when only lost runners failed it."""

from __future__ import annotations

from builders.records import job_record, run_record
from conveyor.cli.errors import INFRASTRUCTURE, OK, WORK_FAILED, exit_code_for_run


def test_a_run_that_succeeded_exits_0() -> None:
    assert exit_code_for_run(run_record(job_record("a", "success"))) == OK


def test_a_run_failed_only_by_lost_runners_exits_3_as_an_infrastructure_fault() -> None:
    jobs = job_record("a", "success"), job_record("b", "runner_lost"), job_record("c", "skipped")
    assert exit_code_for_run(run_record(*jobs, status="failed")) == INFRASTRUCTURE


def test_a_job_that_failed_on_its_own_makes_it_1_even_beside_a_lost_runner() -> None:
    for failed in ("failed", "timed_out"):
        run = run_record(job_record("a", failed), job_record("b", "runner_lost"), status="failed")
        assert exit_code_for_run(run) == WORK_FAILED


def test_an_allowed_failure_beside_a_lost_runner_still_exits_3() -> None:
    allowed = job_record("a", "failed", allow_failure=True)
    run = run_record(allowed, job_record("b", "runner_lost"), status="failed")
    assert exit_code_for_run(run) == INFRASTRUCTURE


def test_a_failed_or_canceled_run_without_lost_runners_exits_1() -> None:
    assert exit_code_for_run(run_record(job_record("a", "failed"), status="failed")) == WORK_FAILED
    canceled = run_record(job_record("a", "canceled"), status="canceled")
    assert exit_code_for_run(canceled) == WORK_FAILED

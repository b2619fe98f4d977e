"""A Run's exit code: 0 success, 1 when a job failed, 3 when only lost runners failed it."""

from __future__ import annotations

from conveyor.cli.errors import INFRASTRUCTURE, OK, WORK_FAILED, exit_code_for_run
from conveyor.core.records import JobRecord, RunId, RunRecord


def _job(name: str, status: str, *, allow_failure: bool = False) -> JobRecord:
    return JobRecord(
        id=1,
        run_id=RunId(1),
        position=0,
        name=name,
        base_name=name,
        needs=(),
        status=status,  # type: ignore[arg-type]
        cached=False,
        allow_failure=allow_failure,
        exit_code=None,
        attempts=1,
        reason=None,
        started_at=0.0,
        finished_at=1.0,
        duration_s=1.0,
        cache_key=None,
        fingerprint=None,
        log_digest=None,
        tests=None,
    )


def _run(status: str, *jobs: JobRecord) -> RunRecord:
    return RunRecord(
        id=RunId(1),
        project="shop",
        status=status,  # type: ignore[arg-type]
        pipeline_path="conveyor.yaml",
        spec_digest="sha256:" + "0" * 64,
        workspace="/srv/shop",
        branch="main",
        commit_sha=None,
        event="push",
        actor="ada",
        targets=(),
        host="h",
        pid=1,
        created_at=0.0,
        started_at=0.0,
        finished_at=1.0,
        duration_s=1.0,
        error=None,
        jobs=jobs,
    )


def test_a_run_that_succeeded_exits_0() -> None:
    assert exit_code_for_run(_run("success", _job("a", "success"))) == OK


def test_a_run_failed_only_by_lost_runners_exits_3_as_an_infrastructure_fault() -> None:
    run = _run("failed", _job("a", "success"), _job("b", "runner_lost"), _job("c", "skipped"))
    assert exit_code_for_run(run) == INFRASTRUCTURE


def test_a_job_that_failed_on_its_own_makes_it_1_even_beside_a_lost_runner() -> None:
    for failed in ("failed", "timed_out"):
        run = _run("failed", _job("a", failed), _job("b", "runner_lost"))
        assert exit_code_for_run(run) == WORK_FAILED


def test_an_allowed_failure_beside_a_lost_runner_still_exits_3() -> None:
    run = _run("failed", _job("a", "failed", allow_failure=True), _job("b", "runner_lost"))
    assert exit_code_for_run(run) == INFRASTRUCTURE


def test_a_failed_or_canceled_run_without_lost_runners_exits_1() -> None:
    assert exit_code_for_run(_run("failed", _job("a", "failed"))) == WORK_FAILED
    assert exit_code_for_run(_run("canceled", _job("a", "canceled"))) == WORK_FAILED

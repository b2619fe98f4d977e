"""Which attempt `conveyor logs --attempt N` reads: kept, the job's own log, or none."""

from __future__ import annotations

import pytest

from builders.records import job_record, run_record
from conveyor.core.errors import NotFound, UsageError
from conveyor.core.records import AttemptOutcome
from conveyor.engine.history import kept_attempt


def _kept(number: int, status: str = "failed", runner: str | None = None) -> AttemptOutcome:
    return AttemptOutcome(number=number, status=status, runner=runner, started_at=0.0)


def _lookup(number: int, **job: object) -> AttemptOutcome | None:
    record = job_record("flaky", **job)  # type: ignore[arg-type]
    return kept_attempt(run_record(record), record, number)


def test_a_kept_attempt_is_found_by_its_number() -> None:
    first, second = _kept(1), _kept(2, "success")
    assert _lookup(2, attempts=2, attempt_results=(first, second)) is second


def test_a_job_that_ran_once_is_its_own_attempt_1_and_has_no_other() -> None:
    assert _lookup(1, attempts=1) is None
    with pytest.raises(NotFound, match=r"has no attempt 2; its attempts: 1$"):
        _lookup(2, attempts=1)


def test_the_attempt_running_on_this_machine_is_the_jobs_live_log() -> None:
    running = {"status": "running", "attempts": 0, "finished_at": None}
    assert _lookup(1, **running) is None
    assert _lookup(2, **running, attempt_results=(_kept(1),)) is None
    with pytest.raises(NotFound, match=r"has no attempt 3; its attempts: 1, 2$"):
        _lookup(3, **running, attempt_results=(_kept(1),))


def test_a_runners_attempt_is_kept_from_its_claim_so_none_past_it_is_read_live() -> None:
    held = (_kept(1, runner="ci-1"), _kept(2, "running", runner="ci-2"))
    with pytest.raises(NotFound, match=r"has no attempt 3; its attempts: 1, 2$"):
        _lookup(3, status="running", attempts=2, attempt_results=held)


def test_a_job_that_made_no_attempt_says_so() -> None:
    with pytest.raises(NotFound, match=r"'flaky' in run 1 made no attempt \(cached\)"):
        _lookup(1, status="cached", attempts=0)
    with pytest.raises(NotFound, match=r"made no attempt \(skipped\)"):
        _lookup(1, status="skipped", attempts=0, started_at=None)
    with pytest.raises(NotFound, match=r"made no attempt \(pending\)"):
        _lookup(2, status="pending", attempts=0, started_at=None, finished_at=None)


def test_attempt_1_of_a_job_whose_start_is_not_yet_recorded_is_its_log() -> None:
    # Its log begins a moment before its start is recorded: read it, as without --attempt.
    assert _lookup(1, status="pending", attempts=0, started_at=None, finished_at=None) is None


def test_the_attempt_a_killed_run_left_is_read_from_the_jobs_log() -> None:
    # `conveyor run` was killed: the JobRun is marked canceled with no count of attempts.
    interrupted = {"status": "canceled", "attempts": 0}
    assert _lookup(1, **interrupted) is None
    assert _lookup(2, **interrupted, attempt_results=(_kept(1),)) is None
    with pytest.raises(NotFound, match=r"has no attempt 3; its attempts: 1, 2$"):
        _lookup(3, **interrupted, attempt_results=(_kept(1),))


def test_a_retried_job_recorded_before_attempts_were_kept_points_at_its_one_log() -> None:
    with pytest.raises(UsageError, match="each marked '--- attempt N of M ---'; leave out"):
        _lookup(1, attempts=3)


def test_during_a_back_off_the_next_attempt_is_the_jobs_log_to_follow() -> None:
    # Attempt 1 is kept and counted; attempt 2 has not started: nothing of it yet, live.
    waiting = {"status": "running", "attempts": 1, "finished_at": None}
    assert _lookup(2, **waiting, attempt_results=(_kept(1),)) is None


def test_after_a_back_off_cut_short_there_is_no_next_attempt() -> None:
    for status in ("canceled", "failed"):  # killed, or the Run stopped, during the back-off
        with pytest.raises(NotFound, match=r"has no attempt 2; its attempts: 1$"):
            _lookup(2, status=status, attempts=1, attempt_results=(_kept(1),))


def test_a_runners_job_queued_to_retry_has_no_attempt_past_its_claims() -> None:
    claims = (_kept(1, runner="ci-1"),)
    with pytest.raises(NotFound, match=r"has no attempt 2; its attempts: 1$"):
        _lookup(2, status="queued", attempts=1, attempt_results=claims)

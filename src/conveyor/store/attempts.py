"""Attempts of remote JobRuns: who holds one, until when (the lease), and how it ended.

(An attempt made on the machine that started the Run is kept by
`conveyor.store.runs.insert_ended_attempt`, once it ended.)

Functions run inside the caller's write transaction; see `conveyor.store.queue`
for the lock order every caller keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.errors import NotFound
from conveyor.core.records import AttemptOutcome, RunId, TestCounts
from conveyor.core.values import frozen
from conveyor.store.db import Row, Transaction, bind_list
from conveyor.store.queue import Taken, lock_clause
from conveyor.store.runs import (
    ATTEMPT_COLUMNS,
    ATTEMPTS_WITH_RUNNERS,
    attempt_outcome,
    attempt_result_columns,
)


@frozen
class AttemptRecord:
    """One claim of a JobRun."""

    id: int
    job_run_id: int
    run_id: RunId
    number: int
    agent_id: int | None
    status: str
    claimed_at: float
    queued_s: float
    lease_until: float
    finished_at: float | None
    reason: str | None


# --- -------------------------------------------------------------------

_ATTEMPT = (
    "id, job_run_id, run_id, number, agent_id, status, claimed_at, queued_s, lease_until, "
    "finished_at, reason"
)


def _attempt(row: Row) -> AttemptRecord:
    return AttemptRecord(
        id=int(row[0]),
        job_run_id=int(row[1]),
        run_id=RunId(int(row[2])),
        number=int(row[3]),
        agent_id=None if row[4] is None else int(row[4]),
        status=str(row[5]),
        claimed_at=float(row[6]),
        queued_s=float(row[7]),
        lease_until=float(row[8]),
        finished_at=None if row[9] is None else float(row[9]),
        reason=None if row[10] is None else str(row[10]),
    )


def insert_attempt(
    tx: Transaction, taken: Taken, *, agent_id: int, now: float, lease_until: float
) -> int:
    rows = tx.execute(
        "INSERT INTO job_attempts (job_run_id, run_id, number, agent_id, status, claimed_at, "
        "queued_s, lease_until, heartbeat_at) VALUES (:j, :r, :n, :a, 'running', :now, :q, "
        ":lease, :now) RETURNING id",
        {
            "j": taken.id,
            "r": taken.run_id,
            "n": taken.attempts,
            "a": agent_id,
            "now": now,
            "q": max(0.0, now - taken.queued_at),
            "lease": lease_until,
        },
    )
    return int(rows[0][0])


def lock_attempt(tx: Transaction, attempt_id: int) -> AttemptRecord:
    rows = tx.execute(
        f"SELECT {_ATTEMPT} FROM job_attempts WHERE id = :id{lock_clause(tx)}", {"id": attempt_id}
    )
    if not rows:
        raise NotFound(f"there is no job attempt {attempt_id}")
    return _attempt(rows[0])


def extend_lease(
    tx: Transaction, attempt_id: int, agent_id: int, now: float, lease_until: float
) -> bool | None:
    """Extend a held lease; whether its job is to be canceled, None when it is not held."""
    rows = tx.execute(
        "UPDATE job_attempts SET lease_until = :lease, heartbeat_at = :now "
        "WHERE id = :id AND agent_id = :a AND status = 'running' RETURNING job_run_id",
        {"lease": lease_until, "now": now, "id": attempt_id, "a": agent_id},
    )
    if not rows:
        return None
    cancel = tx.execute("SELECT cancel_requested FROM job_runs WHERE id = :id", {"id": rows[0][0]})
    return bool(cancel[0][0])


def end_attempt(
    tx: Transaction,
    attempt_id: int,
    status: str,
    now: float,
    reason: str | None = None,
    *,
    exit_code: int | None = None,
    duration_s: float | None = None,
    log_digest: str | None = None,
    tests: TestCounts | None = None,
) -> None:
    """Record how an attempt ended, with the result its runner reported, if it did."""
    result = attempt_result_columns(
        status,
        now,
        reason,
        exit_code=exit_code,
        duration_s=duration_s,
        log_digest=log_digest,
        tests=tests,
    )
    assignments = ", ".join(f"{column} = :{column}" for column in result)
    tx.execute(
        f"UPDATE job_attempts SET {assignments} WHERE id = :id", {**result, "id": attempt_id}
    )


def failures(tx: Transaction, job_run_id: int) -> int:
    """Attempts of a JobRun that failed or lost their runner (hand-backs do not count)."""
    rows = tx.execute(
        "SELECT count(*) FROM job_attempts WHERE job_run_id = :j "
        "AND status IN ('failed', 'timed_out', 'runner_lost')",
        {"j": job_run_id},
    )
    return int(rows[0][0])


def expired(tx: Transaction, now: float, limit: int) -> list[AttemptRecord]:
    """Held attempts whose lease ran out, locked; another sweeper skips them."""
    rows = tx.execute(
        f"SELECT {_ATTEMPT} FROM job_attempts WHERE status = 'running' AND lease_until < :now "
        f"ORDER BY lease_until, id LIMIT :n{lock_clause(tx, skip_locked=True)}",
        {"now": now, "n": limit},
    )
    return [_attempt(row) for row in rows]


def attempts_of(tx: Transaction, run_id: RunId) -> list[AttemptRecord]:
    rows = tx.execute(
        f"SELECT {_ATTEMPT} FROM job_attempts WHERE run_id = :r ORDER BY id", {"r": run_id}
    )
    return [_attempt(row) for row in rows]


def last_attempts(tx: Transaction, job_run_ids: Sequence[int]) -> dict[int, AttemptOutcome]:
    """The last attempt of each of these JobRuns that produced a result, if one did: it
    failed, timed out or lost its runner (a hand-back produces none)."""
    if not job_run_ids:
        return {}
    marks, params = bind_list("j", job_run_ids)
    rows = tx.execute(
        f"SELECT a.job_run_id, {ATTEMPT_COLUMNS} FROM {ATTEMPTS_WITH_RUNNERS} "
        f"WHERE a.job_run_id IN ({marks}) AND a.status IN ('failed', 'timed_out', 'runner_lost') "
        "ORDER BY a.job_run_id, a.number",
        params,
    )
    # In order of number: the last one stays.
    return {int(row[0]): attempt_outcome(row[1:]) for row in rows}

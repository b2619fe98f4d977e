"""The work queue of remote runs: queued JobRuns, attempts with leases, agents.

Every function runs inside the caller's write transaction, so the dispatch
service changes state and appends its Events atomically. Rows that hand out
work are taken with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent
claimers never wait on each other and never take the same row; on SQLite the
write transaction already serializes them, and every taking UPDATE is
conditional on the status it expects (`RETURNING` tells whether it applied).

Lock order, kept by every caller to rule out deadlocks: an attempt row, then
its run's row, then job rows; the event log's lock is always taken last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from conveyor.core.errors import NotFound
from conveyor.core.records import JobState, OutputRecord, RunId, RunStatus
from conveyor.core.values import frozen
from conveyor.store.db import Row, Transaction, bind_list
from conveyor.store.runs import NewRun

# Claims from one batch of rows locked at once; past it, rows are tried one by one.
BATCH = 8
SCAN = 500


@frozen
class QueuedJob:
    """A JobRun of a remote run as planned."""

    position: int
    name: str
    base_name: str
    needs: tuple[str, ...]
    allow_failure: bool
    runs_on: tuple[str, ...]
    concurrency_group: str | None
    run_group: str | None
    retry_max: int
    retry_backoff_s: float
    payload: dict[str, object]


@frozen
class QueueJob:
    """What the queue knows about one JobRun of a remote run."""

    id: int
    run_id: RunId
    position: int
    name: str
    needs: tuple[str, ...]
    status: JobState
    allow_failure: bool
    attempts: int
    retry_max: int
    retry_backoff_s: float
    concurrency_group: str | None
    run_group: str | None
    cancel_requested: bool


@frozen
class Candidate:
    """A queued JobRun a runner might take."""

    id: int
    run_id: RunId
    runs_on: frozenset[str]
    concurrency_group: str | None
    run_group: str | None


@frozen
class Taken:
    """A JobRun just taken by a runner."""

    id: int
    run_id: RunId
    name: str
    attempts: int
    queued_at: float
    payload: dict[str, object]


def lock_clause(tx: Transaction, *, skip_locked: bool = False) -> str:
    if tx.dialect != "postgresql":
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


# --- runs and their jobs -------------------------------------------------------


def insert_run(tx: Transaction, run: NewRun) -> RunId:
    rows = tx.execute(
        "INSERT INTO runs (project, status, pipeline_path, spec_digest, workspace, branch, "
        "commit_sha, event, actor, targets, options, host, pid, created_at, started_at) "
        "VALUES (:project, 'running', :pipeline_path, :spec_digest, :workspace, :branch, "
        ":commit_sha, :event, :actor, :targets, :options, :host, :pid, :created_at, "
        ":created_at) RETURNING id",
        {
            **{k: getattr(run, k) for k in ("project", "pipeline_path", "spec_digest")},
            **{k: getattr(run, k) for k in ("workspace", "branch", "commit_sha", "event")},
            "actor": run.actor,
            "targets": json.dumps(list(run.targets)),
            "options": json.dumps(run.options, sort_keys=True),
            "host": run.host,
            "pid": run.pid,
            "created_at": run.created_at,
        },
    )
    return RunId(int(rows[0][0]))


def insert_jobs(tx: Transaction, run_id: RunId, jobs: Sequence[QueuedJob]) -> None:
    tx.executemany(
        "INSERT INTO job_runs (run_id, position, name, base_name, needs, status, cached, "
        "allow_failure, attempts, runs_on, concurrency_group, run_group, retry_max, "
        "retry_backoff_s, payload, cancel_requested) VALUES (:run_id, :position, :name, "
        ":base_name, :needs, 'pending', :f, :allow_failure, 0, :runs_on, :group, :run_group, "
        ":retry_max, :backoff, :payload, :f)",
        [
            {
                "run_id": run_id,
                "position": job.position,
                "name": job.name,
                "base_name": job.base_name,
                "needs": json.dumps(list(job.needs)),
                "f": False,
                "allow_failure": job.allow_failure,
                "runs_on": json.dumps(sorted(job.runs_on)),
                "group": job.concurrency_group,
                "run_group": job.run_group,
                "retry_max": job.retry_max,
                "backoff": job.retry_backoff_s,
                "payload": json.dumps(job.payload, sort_keys=True),
            }
            for job in jobs
        ],
    )


def lock_run(tx: Transaction, run_id: RunId) -> tuple[RunStatus, float, bool]:
    """Lock a Run's row; its status, start time, and whether it keeps going after a failure."""
    rows = tx.execute(
        f"SELECT status, started_at, options FROM runs WHERE id = :id{lock_clause(tx)}",
        {"id": run_id},
    )
    if not rows:
        raise NotFound(f"there is no run {run_id}")
    status, started, options = rows[0]
    keep_going = bool(json.loads(str(options)).get("keep_going", False))
    return cast(RunStatus, status), float(started or 0.0), keep_going


def run_project(tx: Transaction, run_id: RunId) -> str:
    rows = tx.execute("SELECT project FROM runs WHERE id = :id", {"id": run_id})
    if not rows:
        raise NotFound(f"there is no run {run_id}")
    return str(rows[0][0])


def planned_skips(tx: Transaction, run_id: RunId) -> dict[str, str | None]:
    """Each remote JobRun of a run, with why its plan skipped it (None: it was to run)."""
    rows = tx.execute(
        "SELECT name, payload FROM job_runs WHERE run_id = :r AND payload IS NOT NULL",
        {"r": run_id},
    )
    skips: dict[str, str | None] = {}
    for name, payload in rows:
        reason = json.loads(str(payload)).get("skip")
        skips[str(name)] = None if reason is None else str(reason)
    return skips


def copy_run(tx: Transaction, run_id: RunId, *, actor: str, now: float) -> RunId:
    """A new running Run of the same source and plan as `run_id`, with its JobRuns pending."""
    rows = tx.execute(
        "INSERT INTO runs (project, status, pipeline_path, spec_digest, workspace, branch, "
        "commit_sha, event, actor, targets, options, host, pid, created_at, started_at) "
        "SELECT project, 'running', pipeline_path, spec_digest, workspace, branch, commit_sha, "
        "event, :actor, targets, options, host, pid, :now, :now FROM runs WHERE id = :id "
        "RETURNING id",
        {"actor": actor, "now": now, "id": run_id},
    )
    new = RunId(int(rows[0][0]))
    tx.execute(
        "INSERT INTO job_runs (run_id, position, name, base_name, needs, status, cached, "
        "allow_failure, attempts, runs_on, concurrency_group, run_group, retry_max, "
        "retry_backoff_s, payload, cancel_requested) SELECT :new, position, name, base_name, "
        "needs, 'pending', :f, allow_failure, 0, runs_on, concurrency_group, run_group, "
        "retry_max, retry_backoff_s, payload, :f FROM job_runs WHERE run_id = :old "
        "ORDER BY position",
        {"new": new, "old": run_id, "f": False},
    )
    return new


_QUEUE_JOB = (
    "id, run_id, position, name, needs, status, allow_failure, attempts, retry_max, "
    "retry_backoff_s, concurrency_group, run_group, cancel_requested"
)


def run_jobs(tx: Transaction, run_id: RunId) -> list[QueueJob]:
    """A run's JobRuns in pipeline order."""
    rows = tx.execute(
        f"SELECT {_QUEUE_JOB} FROM job_runs WHERE run_id = :r ORDER BY position", {"r": run_id}
    )
    return [_queue_job(row) for row in rows]


def job_run(tx: Transaction, job_id: int) -> QueueJob:
    rows = tx.execute(f"SELECT {_QUEUE_JOB} FROM job_runs WHERE id = :id", {"id": job_id})
    if not rows:
        raise NotFound(f"there is no job run {job_id}")
    return _queue_job(rows[0])


def _queue_job(row: Row) -> QueueJob:
    return QueueJob(
        id=int(row[0]),
        run_id=RunId(int(row[1])),
        position=int(row[2]),
        name=str(row[3]),
        needs=tuple(json.loads(str(row[4]))),
        status=cast(JobState, row[5]),
        allow_failure=bool(row[6]),
        attempts=int(row[7]),
        retry_max=int(row[8] or 0),
        retry_backoff_s=float(row[9] or 0.0),
        concurrency_group=None if row[10] is None else str(row[10]),
        run_group=None if row[11] is None else str(row[11]),
        cancel_requested=bool(row[12]),
    )


def set_status(
    tx: Transaction,
    job_id: int,
    status: JobState,
    *,
    reason: str | None = None,
    queued_at: float | None = None,
    finished_at: float | None = None,
) -> None:
    """Move one JobRun to `status` (queued with the time it becomes claimable)."""
    tx.execute(
        "UPDATE job_runs SET status = :s, reason = :reason, "
        "queued_at = COALESCE(:q, queued_at), finished_at = COALESCE(:f, finished_at) "
        "WHERE id = :id",
        {"s": status, "reason": reason, "q": queued_at, "f": finished_at, "id": job_id},
    )


def lock_unstarted(tx: Transaction, job_ids: Sequence[int]) -> list[int]:
    """Of `job_ids`, those still pending or queued, locked (waits for a claim in flight)."""
    if not job_ids:
        return []
    marks, params = bind_list("j", job_ids)
    rows = tx.execute(
        f"SELECT id FROM job_runs WHERE id IN ({marks}) AND status IN ('pending', 'queued') "
        f"ORDER BY id{lock_clause(tx)}",
        params,
    )
    return [int(row[0]) for row in rows]


def request_cancel(tx: Transaction, job_ids: Sequence[int]) -> None:
    """Tell the runners holding these JobRuns to stop, at their next heartbeat."""
    tx.executemany(
        "UPDATE job_runs SET cancel_requested = :t WHERE id = :id AND status = 'running'",
        [{"t": True, "id": job_id} for job_id in job_ids],
    )


def unfinished_holders(tx: Transaction, *, group: str, run_level: bool) -> list[QueueJob]:
    """Unfinished JobRuns of a concurrency group (a pipeline's group when `run_level`)."""
    column = "run_group" if run_level else "concurrency_group"
    rows = tx.execute(
        f"SELECT {_QUEUE_JOB} FROM job_runs WHERE {column} = :g "
        "AND status IN ('pending', 'queued', 'running') ORDER BY run_id, position",
        {"g": group},
    )
    return [_queue_job(row) for row in rows]


def finish_run(
    tx: Transaction, run_id: RunId, status: RunStatus, now: float, started: float
) -> None:
    tx.execute(
        "UPDATE runs SET status = :s, finished_at = :f, duration_s = :d WHERE id = :id",
        {"s": status, "f": now, "d": now - started, "id": run_id},
    )


def outputs_of(tx: Transaction, job_ids: Sequence[int]) -> dict[int, tuple[OutputRecord, ...]]:
    if not job_ids:
        return {}
    marks, params = bind_list("j", job_ids)
    found: dict[int, list[OutputRecord]] = {}
    for job_id, path, digest, size in tx.execute(
        f"SELECT job_run_id, path, digest, size FROM artifacts WHERE job_run_id IN ({marks}) "
        "ORDER BY id",
        params,
    ):
        found.setdefault(int(job_id), []).append(OutputRecord(str(path), str(digest), int(size)))
    return {job_id: tuple(outputs) for job_id, outputs in found.items()}


# --- claiming ----------------------------------------------------------------------

_CANDIDATE = "id, run_id, runs_on, concurrency_group, run_group"
_QUEUED = "FROM job_runs WHERE status = 'queued' AND queued_at <= :now ORDER BY queued_at, id"


def _candidate(row: Row) -> Candidate:
    return Candidate(
        id=int(row[0]),
        run_id=RunId(int(row[1])),
        runs_on=frozenset(json.loads(str(row[2] or "[]"))),
        concurrency_group=None if row[3] is None else str(row[3]),
        run_group=None if row[4] is None else str(row[4]),
    )


def locked_batch(tx: Transaction, now: float) -> list[Candidate]:
    """The oldest claimable JobRuns no one else is taking, locked until the transaction ends."""
    rows = tx.execute(
        f"SELECT {_CANDIDATE} {_QUEUED} LIMIT :n{lock_clause(tx, skip_locked=True)}",
        {"now": now, "n": BATCH},
    )
    return [_candidate(row) for row in rows]


def scan(tx: Transaction, now: float) -> list[Candidate]:
    """The oldest claimable JobRuns, unlocked: lock one with `lock_one` before taking it."""
    rows = tx.execute(f"SELECT {_CANDIDATE} {_QUEUED} LIMIT :n", {"now": now, "n": SCAN})
    return [_candidate(row) for row in rows]


def lock_one(tx: Transaction, job_id: int) -> bool:
    """Lock a queued JobRun unless another claimer holds it."""
    rows = tx.execute(
        f"SELECT id FROM job_runs WHERE id = :id AND status = 'queued'"
        f"{lock_clause(tx, skip_locked=True)}",
        {"id": job_id},
    )
    return bool(rows)


def try_group_lock(tx: Transaction, group: str) -> bool:
    """Serialize claims within a concurrency group until the transaction ends."""
    if tx.dialect != "postgresql":
        return True  # SQLite's write lock already serializes every claim
    rows = tx.execute("SELECT pg_try_advisory_xact_lock(7261102, hashtext(:g))", {"g": group})
    return bool(rows[0][0])


def group_busy(tx: Transaction, group: str) -> bool:
    """Whether a JobRun of `group` is running, in any run."""
    rows = tx.execute(
        "SELECT 1 FROM job_runs WHERE concurrency_group = :g AND status = 'running' LIMIT 1",
        {"g": group},
    )
    return bool(rows)


def older_run_unfinished(tx: Transaction, run_group: str, run_id: RunId) -> bool:
    """Whether an older run of the pipeline's group still has work left."""
    rows = tx.execute(
        "SELECT 1 FROM job_runs WHERE run_group = :g AND run_id < :r "
        "AND status IN ('pending', 'queued', 'running') LIMIT 1",
        {"g": run_group, "r": run_id},
    )
    return bool(rows)


def take(tx: Transaction, job_id: int, now: float) -> Taken | None:
    """Mark a queued JobRun running; None when it was no longer queued.

    The reason it waited to retry (its failed attempt's) goes: the new attempt's end says
    its own.
    """
    rows = tx.execute(
        "UPDATE job_runs SET status = 'running', started_at = :now, attempts = attempts + 1, "
        "cancel_requested = :f, reason = NULL WHERE id = :id AND status = 'queued' "
        "RETURNING id, run_id, name, attempts, queued_at, payload",
        {"now": now, "f": False, "id": job_id},
    )
    if not rows:
        return None
    row = rows[0]
    return Taken(
        id=int(row[0]),
        run_id=RunId(int(row[1])),
        name=str(row[2]),
        attempts=int(row[3]),
        queued_at=float(row[4]),
        payload=json.loads(str(row[5])),
    )

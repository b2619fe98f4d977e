"""Runs and JobRuns: create, update, read. Keyword-only, one transaction per call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound
from conveyor.core.records import (
    AttemptOutcome,
    JobRecord,
    JobState,
    OutputRecord,
    RunId,
    RunRecord,
    RunStatus,
    TestCounts,
)
from conveyor.core.values import frozen
from conveyor.store import events as event_log
from conveyor.store.db import Database, Params, Row, Transaction, bind_list

_RUN_COLUMNS = (
    "id, project, status, pipeline_path, spec_digest, workspace, branch, commit_sha, event, "
    "actor, targets, host, pid, created_at, started_at, finished_at, duration_s, error"
)
_JOB_COLUMNS = (
    "id, run_id, position, name, base_name, needs, status, cached, allow_failure, exit_code, "
    "attempts, reason, started_at, finished_at, duration_s, cache_key, fingerprint, "
    "log_digest, tests_passed, tests_failed, tests_skipped, failures"
)


@frozen
class NewRun:
    """What is known about a Run when it is created."""

    project: str
    pipeline_path: str
    spec_digest: str
    workspace: str
    branch: str | None
    commit_sha: str | None
    event: str
    actor: str
    targets: tuple[str, ...]
    options: dict[str, object]
    host: str
    pid: int
    created_at: float


@frozen
class NewJob:
    """A JobRun row as planned, before it starts."""

    position: int
    name: str
    base_name: str
    needs: tuple[str, ...]
    allow_failure: bool
    status: JobState = "pending"
    reason: str | None = None


def create_run(
    db: Database, *, run: NewRun, jobs: Sequence[NewJob], events: Sequence[NewEvent] = ()
) -> tuple[RunId, dict[str, int]]:
    """Insert a Run in state `running` with its planned jobs; returns ids."""
    with db.write() as tx:
        rows = tx.execute(
            "INSERT INTO runs (project, status, pipeline_path, spec_digest, workspace, branch, "
            "commit_sha, event, actor, targets, options, host, pid, created_at, started_at) "
            "VALUES (:project, 'running', :pipeline_path, :spec_digest, :workspace, :branch, "
            ":commit_sha, :event, :actor, :targets, :options, :host, :pid, :created_at, "
            ":created_at) RETURNING id",
            {
                "project": run.project,
                "pipeline_path": run.pipeline_path,
                "spec_digest": run.spec_digest,
                "workspace": run.workspace,
                "branch": run.branch,
                "commit_sha": run.commit_sha,
                "event": run.event,
                "actor": run.actor,
                "targets": json.dumps(list(run.targets)),
                "options": json.dumps(run.options, sort_keys=True),
                "host": run.host,
                "pid": run.pid,
                "created_at": run.created_at,
            },
        )
        run_id = RunId(int(rows[0][0]))
        tx.executemany(
            "INSERT INTO job_runs (run_id, position, name, base_name, needs, status, cached, "
            "allow_failure, attempts, reason) VALUES (:run_id, :position, :name, :base_name, "
            ":needs, :status, :cached, :allow_failure, 0, :reason)",
            [
                {
                    "run_id": run_id,
                    "position": job.position,
                    "name": job.name,
                    "base_name": job.base_name,
                    "needs": json.dumps(list(job.needs)),
                    "status": job.status,
                    "cached": False,
                    "allow_failure": job.allow_failure,
                    "reason": job.reason,
                }
                for job in jobs
            ],
        )
        ids = {
            str(name): int(job_id)
            for job_id, name in tx.execute(
                "SELECT id, name FROM job_runs WHERE run_id = :r", {"r": run_id}
            )
        }
        event_log.append(tx, [_with_run(e, run_id) for e in events])
    return run_id, ids


def _with_run(event: NewEvent, run_id: RunId) -> NewEvent:
    """Events made before the run had an id name it by `{run}`."""
    subject = event.subject.replace("{run}", str(run_id))
    return NewEvent(event.kind, subject, event.actor, event.ts, event.data)


@frozen
class JobUpdate:
    """New values for some columns of one JobRun (None leaves a column as is)."""

    job_id: int
    status: JobState | None = None
    cached: bool | None = None
    exit_code: int | None = None
    attempts: int | None = None
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    cache_key: str | None = None
    fingerprint: dict[str, str] | None = None
    log_digest: str | None = None
    tests: TestCounts | None = None
    outputs: tuple[OutputRecord, ...] = ()
    pid: int | None = None
    # An attempt of a JobRun run on this machine that ended, kept as its own (a retried job).
    attempt: AttemptOutcome | None = None

    @classmethod
    def final(cls, job: JobRecord, attempt: AttemptOutcome | None = None) -> JobUpdate:
        """Everything known about a JobRun that has reached its end (and its last attempt)."""
        return cls(
            job_id=job.id,
            status=job.status,
            cached=job.cached,
            exit_code=job.exit_code,
            attempts=job.attempts,
            reason=job.reason,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_s=job.duration_s,
            cache_key=job.cache_key,
            fingerprint=job.fingerprint,
            log_digest=job.log_digest,
            tests=job.tests,
            outputs=job.outputs,
            attempt=attempt,
        )


def apply_job_update(tx: Transaction, update: JobUpdate) -> None:
    """Write one JobUpdate (and its outputs) inside an open transaction."""
    values: dict[str, object] = {}
    for column in (
        "status",
        "cached",
        "exit_code",
        "attempts",
        "reason",
        "started_at",
        "finished_at",
        "duration_s",
        "cache_key",
        "log_digest",
        "pid",
    ):
        value = getattr(update, column)
        if value is not None:
            values[column] = value
    if update.fingerprint is not None:
        values["fingerprint"] = json.dumps(update.fingerprint, sort_keys=True)
    if update.tests is not None:
        values.update(tests_columns(update.tests))
    if values:
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        tx.execute(
            f"UPDATE job_runs SET {assignments} WHERE id = :id", {**values, "id": update.job_id}
        )
    tx.executemany(
        "INSERT INTO artifacts (job_run_id, path, digest, size) VALUES (:j, :p, :d, :s)",
        [{"j": update.job_id, "p": o.path, "d": o.digest, "s": o.size} for o in update.outputs],
    )
    if update.attempt is not None:
        insert_ended_attempt(tx, update.job_id, update.attempt)


def insert_ended_attempt(tx: Transaction, job_id: int, attempt: AttemptOutcome) -> None:
    """Keep an ended attempt of a JobRun that no runner held (its runner is NULL).

    It never waited in the queue nor held a lease: `queued_s` is 0, and its
    lease ended when it did.
    """
    ended = attempt.finished_at if attempt.finished_at is not None else attempt.started_at
    result = attempt_result_columns(
        attempt.status,
        attempt.finished_at,
        attempt.reason,
        exit_code=attempt.exit_code,
        duration_s=attempt.duration_s,
        log_digest=attempt.log_digest,
        tests=attempt.tests,
    )
    tx.execute(
        "INSERT INTO job_attempts (job_run_id, run_id, number, agent_id, claimed_at, queued_s, "
        f"lease_until, heartbeat_at, {', '.join(result)}) SELECT id, run_id, :number, NULL, "
        f":started, 0, :ended, :ended, {', '.join(f':{c}' for c in result)} "
        "FROM job_runs WHERE id = :job_id",
        {
            "job_id": job_id,
            "number": attempt.number,
            "started": attempt.started_at,
            "ended": ended,
            **result,
        },
    )


def attempt_result_columns(
    status: str,
    finished_at: float | None,
    reason: str | None,
    *,
    exit_code: int | None = None,
    duration_s: float | None = None,
    log_digest: str | None = None,
    tests: TestCounts | None = None,
) -> dict[str, object]:
    """The columns of `job_attempts` that say how an attempt ended, by name."""
    return {
        "status": status,
        "finished_at": finished_at,
        "reason": reason,
        "exit_code": exit_code,
        "duration_s": duration_s,
        "log_digest": log_digest,
        **tests_columns(tests),
    }


def run_record(
    run_id: RunId,
    run: NewRun,
    *,
    status: RunStatus,
    finished_at: float,
    duration_s: float,
    error: str | None,
    jobs: tuple[JobRecord, ...],
) -> RunRecord:
    """A finished Run as `get_run` reads it, from what was written: `run` as `create_run`
    stored it, its end as `finish_run` did, and its jobs as their last updates left them."""
    return RunRecord(
        id=run_id,
        project=run.project,
        status=status,
        pipeline_path=run.pipeline_path,
        spec_digest=run.spec_digest,
        workspace=run.workspace,
        branch=run.branch,
        commit_sha=run.commit_sha,
        event=run.event,
        actor=run.actor,
        targets=tuple(run.targets),
        host=run.host,
        pid=run.pid,
        created_at=run.created_at,
        started_at=run.created_at,  # create_run starts a Run as it creates it
        finished_at=finished_at,
        duration_s=duration_s,
        error=error,
        jobs=jobs,
    )


def finish_run(
    tx: Transaction,
    *,
    run_id: RunId,
    status: RunStatus,
    finished_at: float,
    duration_s: float,
    error: str | None = None,
) -> None:
    tx.execute(
        "UPDATE runs SET status = :status, finished_at = :f, duration_s = :d, error = :e "
        "WHERE id = :id",
        {"status": status, "f": finished_at, "d": duration_s, "e": error, "id": run_id},
    )


def get_run(db: Database, *, run_id: RunId) -> RunRecord:
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = :id", {"id": run_id})
        if not rows:
            raise NotFound(f"there is no run {run_id}")
        jobs = _jobs_of(tx, [run_id]).get(run_id, ())
    return _run(rows[0], jobs)


def latest_run_id(db: Database, *, project: str) -> RunId:
    with db.read() as tx:
        rows = tx.execute(
            "SELECT id FROM runs WHERE project = :p ORDER BY id DESC LIMIT 1", {"p": project}
        )
    if not rows:
        raise NotFound("there are no runs yet; start one with `conveyor run`")
    return RunId(int(rows[0][0]))


def list_runs(
    db: Database,
    *,
    project: str | None = None,
    status: str | None = None,
    branch: str | None = None,
    limit: int = 20,
    before: int | None = None,
    with_jobs: bool = False,
) -> list[RunRecord]:
    """Newest first; `before` pages through older runs by id."""
    clauses, params = ["1 = 1"], {"n": limit}
    for column, value in (("project", project), ("status", status), ("branch", branch)):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value  # type: ignore[assignment]
    if before is not None:
        clauses.append("id < :before")
        params["before"] = before
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(clauses)} "
            "ORDER BY id DESC LIMIT :n",
            params,
        )
        ids = [RunId(int(r[0])) for r in rows]
        jobs = _jobs_of(tx, ids) if with_jobs else {}
    return [_run(row, jobs.get(RunId(int(row[0])), ())) for row in rows]


def running_runs(db: Database, *, host: str) -> list[tuple[RunId, int]]:
    """(run id, pid) of runs recorded as running on `host`."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = :h", {"h": host}
        )
    return [(RunId(int(r[0])), int(r[1])) for r in rows]


def mark_interrupted(
    db: Database, *, run_id: RunId, now: float, reason: str, event: NewEvent
) -> bool:
    """Record that a running Run's process died; False when it was no longer running."""
    with db.write() as tx:
        # Two processes may notice the same dead run; the row lock makes the
        # second one see it already interrupted (SQLite's write lock does that).
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        rows = tx.execute(
            f"SELECT status, started_at FROM runs WHERE id = :id{lock}", {"id": run_id}
        )
        if not rows or rows[0][0] != "running":
            return False
        started = float(rows[0][1]) if rows[0][1] is not None else now
        finish_run(
            tx,
            run_id=run_id,
            status="interrupted",
            finished_at=now,
            duration_s=now - started,
            error=reason,
        )
        left = tx.execute(
            "SELECT name FROM job_runs WHERE run_id = :id AND status IN ('pending', 'running') "
            "ORDER BY position",
            {"id": run_id},
        )
        tx.execute(
            "UPDATE job_runs SET status = 'canceled', reason = :r "
            "WHERE run_id = :id AND status IN ('pending', 'running')",
            {"r": reason, "id": run_id},
        )
        # Every state change is an Event, these included: the log stays the whole story.
        canceled = [
            NewEvent(
                "job.canceled",
                f"run/{run_id}/job/{name}",
                event.actor,
                now,
                {"status": "canceled", "reason": reason},
            )
            for (name,) in left
        ]
        event_log.append(tx, [*canceled, event])
    return True


def running_job_pids(db: Database, *, run_id: RunId) -> list[int]:
    """Process group ids of a Run's jobs recorded as running."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT pid FROM job_runs WHERE run_id = :id AND status = 'running' "
            "AND pid IS NOT NULL",
            {"id": run_id},
        )
    return [int(row[0]) for row in rows]


def previous_fingerprint(
    db: Database, *, project: str, job: str, before_run: RunId
) -> tuple[RunId, dict[str, str]] | None:
    """The fingerprint of `job`'s newest execution that produced a cache entry."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT j.run_id, j.fingerprint FROM job_runs j JOIN runs r ON r.id = j.run_id "
            "WHERE r.project = :p AND j.name = :name AND j.run_id < :before "
            "AND j.fingerprint IS NOT NULL AND j.status IN ('success', 'cached') "
            "ORDER BY j.run_id DESC LIMIT 1",
            {"p": project, "name": job, "before": before_run},
        )
    if not rows:
        return None
    return RunId(int(rows[0][0])), cast(dict[str, str], json.loads(str(rows[0][1])))


def _jobs_of(tx: Transaction, run_ids: Sequence[RunId]) -> dict[RunId, tuple[JobRecord, ...]]:
    if not run_ids:
        return {}
    marks, params = bind_list("r", run_ids)
    rows = tx.execute(
        f"SELECT {_JOB_COLUMNS} FROM job_runs WHERE run_id IN ({marks}) ORDER BY run_id, position",
        params,
    )
    outputs: dict[int, list[OutputRecord]] = {}
    for job_id, path, digest, size in tx.execute(
        "SELECT a.job_run_id, a.path, a.digest, a.size FROM artifacts a "
        f"JOIN job_runs j ON j.id = a.job_run_id WHERE j.run_id IN ({marks}) ORDER BY a.id",
        params,
    ):
        outputs.setdefault(int(job_id), []).append(OutputRecord(str(path), str(digest), int(size)))
    tried = _attempts_of(tx, marks, params)
    result: dict[RunId, list[JobRecord]] = {}
    for row in rows:
        job_id = int(row[0])
        job = _job(row, tuple(outputs.get(job_id, ())), tuple(tried.get(job_id, ())))
        result.setdefault(job.run_id, []).append(job)
    return {rid: tuple(jobs) for rid, jobs in result.items()}


# An attempt's outcome, as `attempt_outcome` reads it: from `job_attempts a` and `agents g`.
ATTEMPT_COLUMNS = (
    "a.number, a.status, g.name, a.claimed_at, a.finished_at, a.duration_s, a.exit_code, "
    "a.reason, a.log_digest, a.tests_passed, a.tests_failed, a.tests_skipped, a.failures"
)
ATTEMPTS_WITH_RUNNERS = "job_attempts a LEFT JOIN agents g ON g.id = a.agent_id"


def attempt_outcome(row: Row) -> AttemptOutcome:
    """An attempt read through `ATTEMPT_COLUMNS`."""
    return AttemptOutcome(
        number=int(row[0]),
        status=str(row[1]),
        runner=None if row[2] is None else str(row[2]),
        started_at=float(row[3]),
        finished_at=_opt_float(row[4]),
        duration_s=_opt_float(row[5]),
        exit_code=_opt_int(row[6]),
        reason=None if row[7] is None else str(row[7]),
        log_digest=None if row[8] is None else str(row[8]),
        tests=tests_of(row[9:13]),
    )


def _attempts_of(tx: Transaction, marks: str, params: Params) -> dict[int, list[AttemptOutcome]]:
    """The attempts kept of the JobRuns of these Runs, by JobRun, oldest first."""
    found: dict[int, list[AttemptOutcome]] = {}
    for row in tx.execute(
        f"SELECT a.job_run_id, {ATTEMPT_COLUMNS} FROM {ATTEMPTS_WITH_RUNNERS} "
        f"JOIN job_runs j ON j.id = a.job_run_id WHERE j.run_id IN ({marks}) "
        "ORDER BY a.job_run_id, a.number, a.id",
        params,
    ):
        found.setdefault(int(row[0]), []).append(attempt_outcome(row[1:]))
    return found


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def tests_columns(tests: TestCounts | None) -> dict[str, object]:
    """The columns test counts are kept in (`tests_passed` ... `failures`), on a JobRun or an
    attempt; all NULL without counts."""
    if tests is None:
        return dict.fromkeys(("tests_passed", "tests_failed", "tests_skipped", "failures"))
    return {
        "tests_passed": tests.passed,
        "tests_failed": tests.failed,
        "tests_skipped": tests.skipped,
        "failures": json.dumps(list(tests.failures)),
    }


def tests_of(columns: Row) -> TestCounts | None:
    """The test counts read back from the columns `tests_columns` names, in its order."""
    passed, failed, skipped, failures = columns
    if passed is None:
        return None
    return TestCounts(
        passed=int(passed),
        failed=int(failed),
        skipped=int(skipped),
        failures=tuple(json.loads(str(failures or "[]"))),
    )


def _job(
    row: Row, outputs: tuple[OutputRecord, ...], tried: tuple[AttemptOutcome, ...] = ()
) -> JobRecord:
    tests = tests_of(row[18:22])
    return JobRecord(
        id=int(row[0]),
        run_id=RunId(int(row[1])),
        position=int(row[2]),
        name=str(row[3]),
        base_name=str(row[4]),
        needs=tuple(json.loads(str(row[5]))),
        status=cast(JobState, row[6]),
        cached=bool(row[7]),
        allow_failure=bool(row[8]),
        exit_code=_opt_int(row[9]),
        attempts=int(row[10]),
        reason=None if row[11] is None else str(row[11]),
        started_at=_opt_float(row[12]),
        finished_at=_opt_float(row[13]),
        duration_s=_opt_float(row[14]),
        cache_key=None if row[15] is None else str(row[15]),
        fingerprint=None if row[16] is None else json.loads(str(row[16])),
        log_digest=None if row[17] is None else str(row[17]),
        tests=tests,
        outputs=outputs,
        attempt_results=tried,
    )


def _run(row: Row, jobs: tuple[JobRecord, ...]) -> RunRecord:
    return RunRecord(
        id=RunId(int(row[0])),
        project=str(row[1]),
        status=cast(RunStatus, row[2]),
        pipeline_path=str(row[3]),
        spec_digest=str(row[4]),
        workspace=str(row[5]),
        branch=None if row[6] is None else str(row[6]),
        commit_sha=None if row[7] is None else str(row[7]),
        event=str(row[8]),
        actor=str(row[9]),
        targets=tuple(json.loads(str(row[10]))),
        host=str(row[11]),
        pid=int(row[12]),
        created_at=float(row[13]),
        started_at=_opt_float(row[14]),
        finished_at=_opt_float(row[15]),
        duration_s=_opt_float(row[16]),
        error=None if row[17] is None else str(row[17]),
        jobs=jobs,
    )

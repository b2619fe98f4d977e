"""Remote Runs: a checkout uploaded as a source bundle, planned like `conveyor run`, dispatched.

The server loads `conveyor.yaml` from the bundle (spec errors keep their
`conveyor.yaml:LINE:COL` messages), plans the Run with the branch, commit and
event the caller names, stores the bundle in the CAS by digest, and submits
the Run to the dispatch service; runners unpack the bundle. Nothing is stored
unless the bundle and its pipeline file are sound.

A remote Run is recorded with `host` REMOTE_HOST, so no server process
takes it for a local Run whose process died, and `workspace` naming its
bundle, so a retry finds its files again.

Secrets never enter a Submission: dispatch stores its `env` with every
JobRun, so only the pipeline's own `env:` goes there.

Retrying a finished Run makes a new Run of the same bundle and plan: jobs that
succeeded before are carried over (marked `cached`, with their outputs and
logs), and only the rest are queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from conveyor.artifacts.cas import ContentStore
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import Conflict, Location, SpecError, SpecIssue
from conveyor.core.records import JobRecord, RunId, RunRecord
from conveyor.engine.bundles import check_bundle, read_member
from conveyor.engine.conditions import ConditionChecker
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import (
    Source,
    Submission,
    advance,
    job_event,
    outcome_of,
    queued_jobs,
    started_event,
)
from conveyor.engine.plan import Plan, make_plan
from conveyor.engine.sources import GitFacts, Sources
from conveyor.spec.pipeline import Pipeline
from conveyor.store import events as event_log
from conveyor.store import queue
from conveyor.store import runs as run_store
from conveyor.store.db import Database, Transaction

REMOTE_HOST = "runners"
BUNDLE_PREFIX = "bundle:"
PIPELINE_FILE = "conveyor.yaml"


@dataclass(frozen=True, slots=True)
class RemoteRunRequest:
    """What a caller asks the server to run, and the facts its `if:` conditions see."""

    project: str
    targets: tuple[str, ...] = ()
    branch: str | None = None
    commit: str | None = None
    event: str = "push"
    keep_going: bool = False


class RemoteRunService:
    """Creates, cancels and retries Runs that runners execute."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        cas: ContentStore,
        dispatch: DispatchService,
        scratch_dir: Path,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cas = cas
        self.dispatch = dispatch
        self.scratch_dir = scratch_dir

    def submit_bundle(self, bundle: Path, request: RemoteRunRequest, *, actor: str) -> RunId:
        """Check, plan and dispatch the Run of an uploaded bundle; its id."""
        with bundle.open("rb") as blob:
            pipeline = load_pipeline(blob)
        plan = self.plan(pipeline, request)
        digest = self.cas.put_file(bundle).digest
        submission = self._submission(pipeline, plan, request, digest, actor)
        return self.dispatch.submit(submission)

    def plan(self, pipeline: Pipeline, request: RemoteRunRequest) -> Plan:
        """The jobs to run, as `conveyor run` would choose them with the request's facts."""
        facts = GitFacts(None, request.branch, request.commit)
        # Outside git, `changed()` is always true: a bundle carries no history to compare.
        sources = Sources(self.scratch_dir, self.scratch_dir, _facts=facts)
        check = ConditionChecker(pipeline, sources, {}, event=request.event, base=None)
        return make_plan(pipeline, request.targets, check)

    def _submission(
        self, pipeline: Pipeline, plan: Plan, request: RemoteRunRequest, digest: str, actor: str
    ) -> Submission:
        run = run_store.NewRun(
            project=request.project,
            pipeline_path=PIPELINE_FILE,
            spec_digest=pipeline.digest,
            workspace=BUNDLE_PREFIX + digest,
            branch=request.branch,
            commit_sha=request.commit,
            event=request.event,
            actor=actor,
            targets=request.targets,
            options={"keep_going": request.keep_going},
            host=REMOTE_HOST,
            pid=0,
            created_at=self.clock.now(),
        )
        env = {
            "CONVEYOR_BRANCH": request.branch or "",
            "CONVEYOR_COMMIT": request.commit or "",
            **pipeline.env,
        }
        return Submission(
            run=run,
            plan=plan,
            source=Source(bundle=digest),
            concurrency=pipeline.concurrency,
            keep_going=request.keep_going,
            env=env,
        )

    # --- cancel and retry ----------------------------------------------------

    def cancel(self, run_id: RunId, *, actor: str) -> None:
        """Cancel a remote Run; Conflict when it is not remote or has already finished."""
        run = self._remote(run_id, "cancel")
        if not self.dispatch.cancel(run_id, actor=actor, reason=f"canceled by {actor}"):
            raise Conflict(f"run {run_id} has already finished ({run.status}); nothing to cancel")

    def retry(self, run_id: RunId, *, actor: str) -> RunId:
        """A new Run of a finished Run's bundle: jobs that succeeded carried over, the rest run."""
        old = self._remote(run_id, "retry")
        if old.status in ("running", "success"):
            raise Conflict(
                f"run {run_id} is {old.status}; only a failed, canceled or interrupted run "
                "can be retried"
            )
        digest = old.workspace.removeprefix(BUNDLE_PREFIX)
        with self.cas.open(digest) as blob:
            pipeline = load_pipeline(blob)
        request = RemoteRunRequest(
            project=old.project,
            targets=old.targets,
            branch=old.branch,
            commit=old.commit_sha,
            event=old.event,
            keep_going=False,
        )
        plan = self.plan(pipeline, request)
        carried = {j.name: j for j in old.jobs if j.status == "success" and j.name in plan.names}
        submission = self._submission(pipeline, plan, request, digest, actor)
        return self._submit_carrying(submission, carried, retry_of=run_id)

    def _remote(self, run_id: RunId, verb: str) -> RunRecord:
        run = run_store.get_run(self.db, run_id=run_id)
        if run.host != REMOTE_HOST or not run.workspace.startswith(BUNDLE_PREFIX):
            raise Conflict(
                f"run {run_id} ran on a workstation, not on this server's runners; "
                f"{verb} it where it ran"
            )
        return run

    def _submit_carrying(
        self, submission: Submission, carried: dict[str, JobRecord], *, retry_of: RunId
    ) -> RunId:
        """Store the Run with the carried jobs finished, then queue what can start."""
        now = self.clock.now()
        with self.db.write() as tx:
            run_id = queue.insert_run(tx, submission.run)
            queue.insert_jobs(tx, run_id, queued_jobs(submission))
            start = started_event(run_id, submission, now)
            events = [replace(start, data={**start.data, "retry_of": retry_of})]
            jobs = {job.name: job for job in queue.run_jobs(tx, run_id)}
            for name, reason in submission.plan.skipped.items():
                queue.set_status(tx, jobs[name].id, "skipped", reason=reason, finished_at=now)
                events.append(
                    job_event(jobs[name], "skipped", submission.run.actor, now, reason=reason)
                )
            for name, record in carried.items():
                _carry(tx, jobs[name].id, record, now)
                data = {"status": "success", "cached": True, "carried_from": retry_of}
                events.append(job_event(jobs[name], "success", submission.run.actor, now, **data))
            events += _progress(tx, run_id, now, actor=submission.run.actor)
            event_log.append(tx, events)
        return run_id


def load_pipeline(blob: BinaryIO) -> Pipeline:
    """The Pipeline in a checked bundle's `conveyor.yaml`; SpecError with its location if bad."""
    from conveyor.spec.loader import parse_pipeline  # YAML and pydantic only on the server's path

    check_bundle(blob)
    data = read_member(blob, PIPELINE_FILE)
    if data is None:
        issue = SpecIssue(
            Location(PIPELINE_FILE, 1, 1),
            "the bundle has no conveyor.yaml at its root; run from the directory that holds it",
        )
        raise SpecError([issue])
    return parse_pipeline(data, PIPELINE_FILE)


def _carry(tx: Transaction, job_id: int, record: JobRecord, now: float) -> None:
    run_store.apply_job_update(
        tx,
        run_store.JobUpdate(
            job_id=job_id,
            status="success",
            cached=True,
            exit_code=record.exit_code,
            reason=record.reason,
            finished_at=now,
            duration_s=0.0,
            log_digest=record.log_digest,
            tests=record.tests,
            outputs=record.outputs,
        ),
    )


def _progress(tx: Transaction, run_id: RunId, now: float, *, actor: str) -> Sequence[NewEvent]:
    """Queue or skip what can move on, by the dispatch rules; finish the Run if nothing is left."""
    jobs = {job.id: job for job in queue.run_jobs(tx, run_id)}
    events: list[NewEvent] = []
    for step in advance(list(jobs.values()), keep_going=False):
        queued = step.status == "queued"
        queue.set_status(
            tx,
            step.job.id,
            step.status,
            reason=step.reason,
            queued_at=now if queued else None,
            finished_at=None if queued else now,
        )
        jobs[step.job.id] = queue.job_run(tx, step.job.id)
        events.append(
            job_event(step.job, step.status, actor, now, status=step.status, reason=step.reason)
        )
    status = outcome_of(list(jobs.values()))
    if status is not None:
        _, started, _ = queue.lock_run(tx, run_id)
        queue.finish_run(tx, run_id, status, now, started)
        events.append(NewEvent(f"run.{status}", f"run/{run_id}", actor, now, {"status": status}))
    return events

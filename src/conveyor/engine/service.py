"""The Run service: what `conveyor run`, `runs`, `show`, `logs` and `explain` do."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.artifacts.cache import JobCache
from conveyor.artifacts.cas import ContentStore
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import SpecError, StoreError
from conveyor.core.masking import Masker
from conveyor.core.records import JobRecord, RunId, RunRecord
from conveyor.core.values import frozen
from conveyor.engine.conditions import ConditionChecker
from conveyor.engine.jobrun import JobOutcome, RunContext
from conveyor.engine.keys import KeyMaker, load_secret_key, rooted_patterns
from conveyor.engine.locks import JobLocks, RunLock
from conveyor.engine.plan import Plan, make_plan, state_outputs
from conveyor.engine.recorder import Recorder
from conveyor.engine.reporting import GuardedReporter, Reporter
from conveyor.engine.run_rules import run_status
from conveyor.engine.runner import Scheduler, SchedulerOptions
from conveyor.engine.sources import Sources, git_user_email
from conveyor.engine.workspace import Workspace
from conveyor.executors.base import Executor
from conveyor.spec.pipeline import Pipeline
from conveyor.store import events as event_log
from conveyor.store import migrate
from conveyor.store import runs as run_store
from conveyor.store.db import Database, SqliteDatabase, open_database

if TYPE_CHECKING:
    from conveyor.engine.preview import PlannedJob


# Values of secrets a Pipeline declares, by name, for the names it is given; absent when unknown.
SecretSource = Callable[[Sequence[str]], Mapping[str, str]]


@frozen
class RunRequest:
    """What the user asked `conveyor run` for."""

    targets: tuple[str, ...] = ()
    max_parallel: int = os.cpu_count() or 2
    keep_going: bool = False
    use_cache: bool = True
    explain: bool = False
    event: str = "local"
    base: str | None = None
    branch: str | None = None


@frozen
class _Launch:
    """A Run that has been created and is about to execute."""

    pipeline: Pipeline
    request: RunRequest
    plan: Plan
    sources: Sources
    run_id: RunId
    job_ids: dict[str, int]
    run: run_store.NewRun  # as created

    @property
    def actor(self) -> str:
        return self.run.actor


@frozen
class RunResult:
    """A finished Run as stored, and why each job that ran missed the cache."""

    run: RunRecord
    explanations: Mapping[str, tuple[str, ...]]


# Where CI systems name the branch of a detached checkout, most specific first.
_CI_BRANCH_VARIABLES = (
    "CONVEYOR_BRANCH",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_BRANCH",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "BUILDKITE_BRANCH",
    "BRANCH_NAME",
    "GIT_BRANCH",
)


def ci_branch(environ: Mapping[str, str]) -> str | None:
    """The branch a CI system checked out detached, from the variables it sets."""
    for variable in _CI_BRANCH_VARIABLES:
        if value := environ.get(variable, "").strip():
            return value.removeprefix("refs/heads/").removeprefix("origin/")
    return None


def open_store(workspace: Workspace) -> Database:
    """The workspace's database, migrated when it is the embedded one."""
    workspace.ensure_state_dir()
    db = open_database(workspace.database_url)
    if not migrate.is_current(db):
        if isinstance(db, SqliteDatabase):
            migrate.upgrade(db)
        else:
            db.close()
            raise StoreError("the database has no current schema; run `conveyor db upgrade` first")
    return db


def actor_name(root: Path, environ: Mapping[str, str]) -> str:
    """Who is acting: CONVEYOR_ACTOR, else git's user.email, else the login name."""
    return actor_lookup(root, environ)()


def actor_lookup(root: Path, environ: Mapping[str, str]) -> Callable[[], str]:
    """`actor_name`, with git asked at once and its answer awaited when called.

    Asking git takes a process (about 3 ms); started early, it runs while the
    Run reads its sources and plans.
    """
    named = environ.get("CONVEYOR_ACTOR")
    if named:
        return lambda: named
    email = git_user_email(root)
    return lambda: email() or environ.get("USER") or environ.get("LOGNAME") or "unknown"


class RunService:
    """Runs pipelines of one workspace and reads their history."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        executor: Executor,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        db: Database | None = None,
        secrets: SecretSource | None = None,
    ) -> None:
        self.workspace = workspace
        self.executor = executor
        self.clock = clock or SystemClock()
        self.environ = dict(os.environ if environ is None else environ)
        self._db = db
        self._secrets = secrets
        self.host = os.uname().nodename
        self.cas = ContentStore(workspace.cas_dir)
        self.cache = JobCache(workspace.cache_dir, self.cas)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_store(self.workspace)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    # --- running ---------------------------------------------------------

    def resolve_secrets(self, pipeline: Pipeline) -> None:
        """Declared secrets the caller's environment lacks are taken from the secret store."""
        missing = [name for name in pipeline.secrets if self.environ.get(name) is None]
        if missing and self._secrets is not None:
            self.environ = {**self.environ, **self._secrets(missing)}

    def _nested(self) -> bool:
        """Whether a job of a Run in this workspace started this one (which holds its locks)."""
        env = self.environ
        return "CONVEYOR_RUN_ID" in env and env.get("CONVEYOR_WORKSPACE") == str(
            self.workspace.root
        )

    def masker(self, pipeline: Pipeline) -> Masker:
        """What masks the values of `pipeline`'s secrets (call `resolve_secrets` first)."""
        return Masker(v for n in pipeline.secrets if (v := self.environ.get(n)))

    def sources(self, pipeline: Pipeline, branch: str | None = None) -> Sources:
        excluded = tuple(
            pattern
            for job in pipeline.jobs
            for pattern in rooted_patterns(job, job.outputs + job.reports_junit)
        )
        sources = Sources(
            self.workspace.root,
            self.workspace.state_dir,
            excluded,
            not_implicit=(self.workspace.relative_spec(),),
        )
        facts = sources.facts  # every Run records them; reading them also notices a missing git
        name = branch or facts.branch or ci_branch(self.environ)
        if name != facts.branch:
            sources.branch = name
        return sources

    def plan(self, pipeline: Pipeline, request: RunRequest, sources: Sources) -> Plan:
        check = ConditionChecker(
            pipeline, sources, self.environ, event=request.event, base=request.base
        )
        plan = make_plan(pipeline, request.targets, check)
        state = self.workspace.state_inside()
        if state is not None and (refused := state_outputs(plan.jobs, state)):
            raise SpecError(refused)
        return plan

    def key_maker(
        self,
        pipeline: Pipeline,
        sources: Sources,
        warn: Callable[[str], None] = lambda _message: None,
    ) -> KeyMaker:
        return KeyMaker(
            warn=warn,
            pipeline=pipeline,
            sources=sources,
            cas=self.cas,
            secret_values={name: self.environ.get(name) for name in pipeline.secrets},
            secret_key=load_secret_key(self.workspace.state_dir),
        )

    def run(
        self,
        pipeline: Pipeline,
        request: RunRequest,
        reporter: Reporter,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult:
        """Execute a Run to its end; returns it as stored."""
        reporter = GuardedReporter(reporter)
        actor_of = actor_lookup(self.workspace.root, self.environ)
        try:
            self.resolve_secrets(pipeline)
            sources = self.sources(pipeline, request.branch)
            plan = self.plan(pipeline, request, sources)
        except BaseException:
            actor_of()  # reaps the git process asked for the actor
            raise
        for warning in sources.warnings:
            reporter.warn(warning)
        for name in pipeline.secrets:
            if self.environ.get(name) is None:
                reporter.warn(f"secret {name} is not set in the environment; jobs see it unset")
        actor = actor_of()
        now = self.clock.now()
        new_run = self._new_run(pipeline, request, sources, actor, now)
        run_id, job_ids = run_store.create_run(
            self.db,
            run=new_run,
            jobs=[
                run_store.NewJob(i, job.name, job.base_name, job.needs, job.allow_failure)
                for i, job in enumerate(plan.jobs)
            ],
            events=[
                NewEvent(
                    "run.started",
                    "run/{run}",
                    actor,
                    now,
                    {
                        "pipeline": self.workspace.relative_spec(),
                        "spec_digest": pipeline.digest,
                        "branch": sources.facts.branch,
                        "commit": sources.facts.commit,
                        "jobs": len(plan.jobs),
                        "targets": list(request.targets),
                    },
                )
            ],
        )
        launch = _Launch(pipeline, request, plan, sources, run_id, job_ids, new_run)
        lock = RunLock(self.workspace.locks_dir, run_id)
        try:
            return self._execute(launch, reporter, on_start)
        finally:
            lock.release()

    def _new_run(
        self, pipeline: Pipeline, request: RunRequest, sources: Sources, actor: str, now: float
    ) -> run_store.NewRun:
        return run_store.NewRun(
            project=self.workspace.project,
            pipeline_path=self.workspace.relative_spec(),
            spec_digest=pipeline.digest,
            workspace=str(self.workspace.root),
            branch=sources.facts.branch,
            commit_sha=sources.facts.commit,
            event=request.event,
            actor=actor,
            targets=request.targets,
            options={
                "jobs": request.max_parallel,
                "keep_going": request.keep_going,
                "cache": request.use_cache,
            },
            host=self.host,
            pid=os.getpid(),
            created_at=now,
        )

    def _execute(
        self,
        launch: _Launch,
        reporter: Reporter,
        on_start: Callable[[Scheduler], None] | None,
    ) -> RunResult:
        recorder = Recorder(self.db)
        ctx = self._context(launch, reporter)
        scheduler = Scheduler(
            plan=launch.plan,
            job_ids=launch.job_ids,
            ctx=ctx,
            recorder=recorder,
            reporter=reporter,
            clock=self.clock,
            actor=launch.actor,
            options=SchedulerOptions(
                max(1, launch.request.max_parallel), launch.request.keep_going
            ),
            warm_up=partial(_prepare_signing, self.workspace.state_dir, self.environ),
            job_locks=None
            if self._nested()
            else JobLocks(self.workspace.locks_dir, workspace=self.workspace.root),
        )
        ctx.on_running = scheduler.record_running
        ctx.on_retry = scheduler.record_retry
        reporter.run_started(launch.run_id, launch.plan.names)
        if on_start is not None:
            on_start(scheduler)
        try:
            outcomes = scheduler.run()
            recorder.close()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                recorder.close()
            self._abandon(launch, ctx.masker.mask(str(exc)), reporter)
            raise
        fault = scheduler.fault
        error = ctx.masker.mask(str(fault)) if fault else None
        record = self._finish(
            launch, outcomes, scheduler.records(), canceled=scheduler.canceled, error=error
        )
        # Signing the tree head after each Run anchors its events. `cryptography` costs
        # 20 ms to import: the scheduler imports it while the jobs run (_prepare_signing).
        from conveyor.engine.audit import sign_after_run

        sign_after_run(
            self.db,
            self.workspace.state_dir,
            self.clock,
            self.environ,
            reporter.warn,
            appended=recorder.appended,
        )
        reporter.run_finished(record)
        if fault is not None:
            raise fault
        explanations = {name: o.explanation for name, o in outcomes.items() if o.explanation}
        return RunResult(record, explanations)

    def _context(self, launch: _Launch, reporter: Reporter) -> RunContext:
        pipeline, facts, run_id = launch.pipeline, launch.sources.facts, launch.run_id
        base_env = {
            **self.environ,
            "CONVEYOR": "true",
            "CONVEYOR_RUN_ID": str(run_id),
            "CONVEYOR_WORKSPACE": str(self.workspace.root),
            "CONVEYOR_BRANCH": facts.branch or "",
            "CONVEYOR_COMMIT": facts.commit or "",
            **pipeline.env,
        }
        return RunContext(
            root=self.workspace.root,
            logs_dir=self.workspace.logs_dir / f"run-{run_id}",
            run_id=run_id,
            keys=self.key_maker(pipeline, launch.sources, reporter.warn),
            cas=self.cas,
            cache=self.cache,
            executor=self.executor,
            masker=self.masker(pipeline),
            clock=self.clock,
            base_env=base_env,
            use_cache=launch.request.use_cache,
            explain=launch.request.explain,
            previous=lambda job: self.previous_fingerprint(job, run_id),
            on_line=reporter.job_line,
            warn=reporter.warn,
            state_dir=self.workspace.state_dir,
        )

    def _finish(
        self,
        launch: _Launch,
        outcomes: Mapping[str, JobOutcome],
        jobs: tuple[JobRecord, ...],
        *,
        canceled: bool,
        error: str | None = None,
    ) -> RunRecord:
        """Record the Run's end; the Run as stored, made from what this process recorded.

        Reading the Run back would cost a query and a record per job (7 ms for
        200 jobs) at the end of every Run; nothing else writes a running Run.
        """
        # A Run an infrastructure fault stopped did not succeed, whatever its jobs' states.
        status = "failed" if error else run_status(launch.plan, outcomes, canceled=canceled)
        now = self.clock.now()
        # From the Run's start, as recorded when it was created: a Run that waited for
        # another Run's jobs and then restored them from the cache took that long.
        started = launch.run.created_at
        data: dict[str, object] = {"status": status}
        if error:
            data["error"] = error
        event = NewEvent(f"run.{status}", f"run/{launch.run_id}", launch.actor, now, data)
        with self.db.write() as tx:
            run_store.finish_run(
                tx,
                run_id=launch.run_id,
                status=status,
                finished_at=now,
                duration_s=now - started,
                error=error,
            )
            event_log.append(tx, [event])
        return run_store.run_record(
            launch.run_id,
            launch.run,
            status=status,
            finished_at=now,
            duration_s=now - started,
            error=error,
            jobs=jobs,
        )

    def _abandon(self, launch: _Launch, error: str, reporter: Reporter) -> None:
        """Best effort: record a Run that could not go on as `failed`, with why (masked)."""
        now = self.clock.now()
        reason = f"the run stopped: {error}"
        event = NewEvent("run.failed", f"run/{launch.run_id}", launch.actor, now, {"error": reason})
        try:
            with self.db.write() as tx:
                run_store.finish_run(
                    tx,
                    run_id=launch.run_id,
                    status="failed",
                    finished_at=now,
                    duration_s=0.0,
                    error=reason,
                )
                event_log.append(tx, [event])
        except Exception as exc:  # noqa: BLE001 - the error that stopped the run comes first
            reporter.warn(f"could not record run {launch.run_id} as failed: {exc}")

    def previous_fingerprint(self, job: str, before: RunId | None = None) -> dict[str, str] | None:
        """The fingerprint of `job`'s newest cached execution (before Run `before`)."""
        found = run_store.previous_fingerprint(
            self.db,
            project=self.workspace.project,
            job=job,
            before_run=RunId(2**62) if before is None else before,
        )
        return None if found is None else found[1]


def _prepare_signing(state_dir: Path, environ: Mapping[str, str]) -> None:
    """Import and load what signs the event log's tree head after a Run, so that it need not.

    The first key loaded in a process also sets up OpenSSL's key parsing; the
    key itself is read again when signing (a key file replaced meanwhile is
    the one used). A workspace's first key is made when signing, not here.
    """
    from conveyor.engine import audit_key

    audit_key.preload()
    import conveyor.engine.audit  # noqa: F401

    audit_key.public_key(state_dir, environ)


def dry_run(service: RunService, pipeline: Pipeline, request: RunRequest) -> list[PlannedJob]:
    """What `service.run` would do with `request`, predicted from the cache."""
    from conveyor.engine.preview import preview

    service.resolve_secrets(pipeline)
    sources = service.sources(pipeline, request.branch)
    plan = service.plan(pipeline, request, sources)
    return preview(
        plan,
        keys=service.key_maker(pipeline, sources),
        cache=service.cache,
        use_cache=request.use_cache,
        previous=service.previous_fingerprint,
        masker=service.masker(pipeline),
    )

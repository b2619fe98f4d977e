"""Remote Runs: a checkout uploaded as a source bundle, or a project's commit fetched with git.

For a bundle, the server loads `conveyor.yaml` from it and stores the bundle
in the CAS by digest; runners unpack it. For a commit (`submit_commit`, what
webhooks and `POST /api/v1/runs` with JSON start), the server reads the
project's pipeline file at that commit from its own git mirror of the
repository; runners fetch the commit with git. Either way the Run is planned
with the branch, commit and event the caller names (spec errors keep their
`FILE:LINE:COL` messages) and submitted to the dispatch service. Nothing is
stored unless the source and its pipeline file are sound.

A remote Run is recorded with `host` REMOTE_HOST, so no server process
takes it for a local Run whose process died, and `workspace` naming its
bundle or its repository.

A Submission carries the names of the Pipeline's `secrets:`, never values:
runners get those when they claim a job. Retrying a finished Run is
`DispatchService.retry`: what succeeded is carried over as cached.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import BinaryIO

from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock
from conveyor.core.errors import Conflict, Location, SpecError, SpecIssue
from conveyor.core.records import RunId, RunRecord
from conveyor.core.values import frozen
from conveyor.engine.bundles import check_bundle, read_member
from conveyor.engine.conditions import ConditionChecker
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import Source, Submission
from conveyor.engine.git_fetch import GitMirror, check_commit, display_url
from conveyor.engine.plan import Plan, make_plan
from conveyor.engine.projects import ProjectService
from conveyor.engine.sources import GitFacts, Sources
from conveyor.spec.pipeline import Pipeline
from conveyor.store import runs as run_store
from conveyor.store.db import Database

REMOTE_HOST = "runners"
BUNDLE_PREFIX = "bundle:"
GIT_PREFIX = "git:"
PIPELINE_FILE = "conveyor.yaml"


@frozen
class Where:
    """Where a remote Run's files come from, as the Run records it and runners find them."""

    pipeline_path: str
    workspace: str
    source: Source


@frozen
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
        projects: ProjectService,
        mirror: GitMirror,
        scratch_dir: Path,
    ) -> None:
        self.db = db
        self.clock = clock
        self.cas = cas
        self.dispatch = dispatch
        self.projects = projects
        self.mirror = mirror
        self.scratch_dir = scratch_dir

    def submit_bundle(self, bundle: Path, request: RemoteRunRequest, *, actor: str) -> RunId:
        """Check, plan and dispatch the Run of an uploaded bundle; its id."""
        with bundle.open("rb") as blob:
            pipeline = load_pipeline(blob)
        plan = self.plan(pipeline, request)
        digest = self.cas.put_file(bundle).digest
        where = Where(PIPELINE_FILE, BUNDLE_PREFIX + digest, Source(bundle=digest))
        return self.dispatch.submit(self._submission(pipeline, plan, request, where, actor))

    def submit_commit(
        self,
        project: str,
        commit: str,
        *,
        branch: str | None = None,
        event: str = "push",
        actor: str,
        targets: tuple[str, ...] = (),
        keep_going: bool = False,
    ) -> RunId:
        """Read, check, plan and dispatch the Run of a project's commit; its id.

        The branch defaults to the project's default branch. NotFound for an
        unknown project, UsageError for a commit the repository lacks,
        SpecError for a bad pipeline file at that commit, ExecutorError when
        the repository cannot be reached.
        """
        found = self.projects.get(project)
        commit = check_commit(commit)
        request = RemoteRunRequest(
            project=found.name,
            targets=targets,
            branch=branch or found.default_branch,
            commit=commit,
            event=event,
            keep_going=keep_going,
        )
        pipeline = self._pipeline_at(found.repository, commit, found.spec_path)
        plan = self.plan(pipeline, request)
        where = Where(
            found.spec_path,
            f"{GIT_PREFIX}{display_url(found.repository)}",
            Source(git=found.repository, commit=commit, subdir=_directory_of(found.spec_path)),
        )
        return self.dispatch.submit(self._submission(pipeline, plan, request, where, actor))

    def _pipeline_at(self, repository: str, commit: str, spec_path: str) -> Pipeline:
        from conveyor.spec.loader import parse_pipeline  # YAML and pydantic only on this path

        data = self.mirror.read(repository, commit, spec_path)
        if data is None:
            issue = SpecIssue(
                Location(spec_path, 1, 1),
                f"commit {commit[:12]} of {display_url(repository)} has no {spec_path}; "
                "commit one, or set the project's spec path to where it is",
            )
            raise SpecError([issue])
        return parse_pipeline(data, spec_path)

    def plan(self, pipeline: Pipeline, request: RemoteRunRequest) -> Plan:
        """The jobs to run, as `conveyor run` would choose them with the request's facts."""
        facts = GitFacts(None, request.branch, request.commit)
        # Outside git, `changed()` is always true: a bundle carries no history to compare.
        sources = Sources(self.scratch_dir, self.scratch_dir, _facts=facts)
        check = ConditionChecker(pipeline, sources, {}, event=request.event, base=None)
        return make_plan(pipeline, request.targets, check)

    def _submission(
        self, pipeline: Pipeline, plan: Plan, request: RemoteRunRequest, where: Where, actor: str
    ) -> Submission:
        run = run_store.NewRun(
            project=request.project,
            pipeline_path=where.pipeline_path,
            spec_digest=pipeline.digest,
            workspace=where.workspace,
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
            source=where.source,
            concurrency=pipeline.concurrency,
            keep_going=request.keep_going,
            env=env,
            secrets=pipeline.secrets,
        )

    # --- cancel and retry ----------------------------------------------------

    def cancel(self, run_id: RunId, *, actor: str) -> None:
        """Cancel a remote Run; Conflict when it is not remote or has already finished."""
        run = self._remote(run_id, "cancel")
        if not self.dispatch.cancel(run_id, actor=actor, reason=f"canceled by {actor}"):
            raise Conflict(f"run {run_id} has already finished ({run.status}); nothing to cancel")

    def retry(self, run_id: RunId, *, actor: str) -> RunId:
        """A new Run of a finished remote Run: what succeeded carried over as cached, the rest run.

        Conflict when the Run ran on a workstation, is still running, or has no failed job.
        """
        self._remote(run_id, "retry")
        return self.dispatch.retry(run_id, actor=actor)

    def _remote(self, run_id: RunId, verb: str) -> RunRecord:
        run = run_store.get_run(self.db, run_id=run_id)
        if run.host != REMOTE_HOST:
            raise Conflict(
                f"run {run_id} ran on a workstation, not on this server's runners; "
                f"{verb} it where it ran"
            )
        return run


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


def _directory_of(spec_path: str) -> str | None:
    """The directory of a project's pipeline file in its repository; None at the top."""
    parent = PurePosixPath(spec_path).parent
    return None if parent == PurePosixPath(".") else str(parent)

"""The control plane on the local store: no server, direct calls on the services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conveyor.core.digest import is_digest
from conveyor.core.errors import NotFound, UsageError
from conveyor.core.records import RunRecord
from conveyor.engine.history import Explanation, History
from conveyor.engine.preview import PlannedJob
from conveyor.engine.promotion_facts import ContentCheck, current_actor
from conveyor.engine.promotions import PromotionService, RecordAsDeployed
from conveyor.engine.releases import ReleaseOutcome, ReleaseService
from conveyor.engine.reporting import Reporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest, RunResult, RunService, actor_name, dry_run
from conveyor.engine.workspace import Workspace
from conveyor.executors.base import Executor
from conveyor.promotion.model import Actor, Promotion
from conveyor.release.model import Release
from conveyor.release.notes import ReleaseNotes
from conveyor.spec.pipeline import Pipeline


class EmbeddedControlPlane:
    """Runs and history of one workspace, on its own store."""

    def __init__(self, workspace: Workspace, *, executor: Executor) -> None:
        self._runs = RunService(workspace, executor=executor)
        self._history: History | None = None
        self._releases: ReleaseService | None = None
        self._promotions: PromotionService | None = None

    @property
    def history(self) -> History:
        if self._history is None:
            runs = self._runs
            self._history = History(
                runs.workspace, db=runs.db, cas=runs.cas, executor=runs.executor, clock=runs.clock
            )
        return self._history

    @property
    def releases(self) -> ReleaseService:
        if self._releases is None:
            runs = self._runs
            self._releases = ReleaseService(
                runs.workspace,
                db=runs.db,
                cas=runs.cas,
                history=self.history,
                clock=runs.clock,
                environ=runs.environ,
            )
        return self._releases

    @property
    def promotions(self) -> PromotionService:
        if self._promotions is None:
            runs = self._runs
            self._promotions = PromotionService(
                runs.workspace,
                db=runs.db,
                releases=self.releases,
                artifacts=ContentCheck(runs.cas),
                clock=runs.clock,
                # Until Deployments exist, an approved promotion counts as deployed at once.
                deployer=RecordAsDeployed(runs.db, runs.clock, "conveyor"),
            )
        return self._promotions

    def actor(self) -> Actor:
        """Who acts here: CONVEYOR_ACTOR or git's user.email, with roles from the roles map."""
        return current_actor(self._runs.workspace.root, self._runs.environ)

    def run(
        self,
        pipeline: Pipeline,
        request: RunRequest,
        reporter: Reporter,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult:
        # A run killed earlier may have left jobs running; stop them before starting anew.
        self.history.reconcile_interrupted()
        return self._runs.run(pipeline, request, reporter, on_start=on_start)

    def dry_run(self, pipeline: Pipeline, request: RunRequest) -> list[PlannedJob]:
        return dry_run(self._runs, pipeline, request)

    def list_runs(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        branch: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]:
        return self.history.list_runs(limit=limit, status=status, branch=branch, before=before)

    def get_run(self, ref: str | None) -> RunRecord:
        return self.history.get_run(ref)

    def job_log(self, ref: str | None, job: str) -> tuple[str, bool]:
        return self.history.job_log(ref, job)

    def explain(self, ref: str | None, job: str) -> Explanation:
        return self.history.explain(ref, job)

    def artifact_available(self, digest: str) -> bool:
        return self._runs.cas.has(digest)

    def fetch_artifact(self, digest: str, dest: Path) -> None:
        """Write an artifact's content to `dest`, checking its digest."""
        if not is_digest(digest):
            raise UsageError(f"'{digest}' is not an artifact digest; write sha256:<64 hex digits>")
        if not self._runs.cas.has(digest):
            raise NotFound(f"no artifact {digest} here (never stored, or pruned)")
        self._runs.cas.restore(digest, dest)

    def create_release(
        self, pipeline: Pipeline, run_ref: str | None, *, version: str | None = None
    ) -> ReleaseOutcome:
        return self.releases.create(pipeline, run_ref, version=version)

    def list_releases(self, *, service: str | None = None) -> list[Release]:
        return self.releases.list_releases(service=service)

    def get_release(self, version: str, *, service: str | None = None) -> Release:
        return self.releases.get_release(version, service=service)

    def release_notes(self, version: str, *, service: str | None = None) -> ReleaseNotes:
        return self.releases.notes(version, service=service)

    def changelog(self, version: str, *, service: str | None = None) -> list[ReleaseNotes]:
        return self.releases.changelog(version, service=service)

    def promote(
        self, pipeline: Pipeline, service: str, version: str, environment: str
    ) -> Promotion:
        return self.promotions.promote(pipeline, service, version, environment, self.actor())

    def reevaluate(self, promotion_id: int) -> Promotion:
        return self.promotions.reevaluate(
            promotion_id, actor=actor_name(self._runs.workspace.root, self._runs.environ)
        )

    def approve(self, promotion_id: int, *, comment: str = "") -> Promotion:
        return self.promotions.approve(promotion_id, self.actor(), comment=comment)

    def reject(self, promotion_id: int, *, comment: str = "") -> Promotion:
        return self.promotions.reject(promotion_id, self.actor(), comment=comment)

    def why(self, service: str, version: str, environment: str) -> Promotion:
        return self.promotions.why(service, version, environment)

    def list_promotions(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Promotion]:
        return self.promotions.list_promotions(
            service=service, environment=environment, limit=limit
        )

    def close(self) -> None:
        self._runs.close()

"""The control plane on the local store: no server, direct calls on the services."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.core.digest import is_digest
from conveyor.core.errors import NotFound, UsageError
from conveyor.core.records import RunRecord
from conveyor.engine.reporting import Reporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest, RunResult, RunService, actor_name, dry_run
from conveyor.engine.workspace import Workspace
from conveyor.executors.base import Executor
from conveyor.spec.pipeline import Pipeline

# The delivery services (releases, promotions, Deployments, evidence) import policy, CEL,
# YAML and more: they are loaded when a command first needs them, so `conveyor run` and
# the history commands start as fast as they did before delivery existed.
if TYPE_CHECKING:
    from conveyor.control.base import PipelineSource
    from conveyor.engine.auto_release import AutoRelease
    from conveyor.engine.change_records import ChangeRecords
    from conveyor.engine.deployments import Progress
    from conveyor.engine.environments import EnvironmentView
    from conveyor.engine.evidence import EvidenceExport
    from conveyor.engine.history import Explanation, History
    from conveyor.engine.local_deployments import LocalDeployments
    from conveyor.engine.preview import PlannedJob
    from conveyor.engine.promotions import PromotionService
    from conveyor.engine.releases import ReleaseOutcome, ReleaseService
    from conveyor.engine.waivers import WaiverService, WaiverStatus
    from conveyor.policy.waiver import WaiverState
    from conveyor.promotion.model import Actor, Promotion
    from conveyor.release.change_record import ChangeRecord
    from conveyor.release.model import Release
    from conveyor.release.notes import ReleaseNotes
    from conveyor.rollout.deployment import Deployment

# How long `conveyor run` carries out the Deployment of an automatic promotion.
AUTO_DEPLOY_TIMEOUT_S = 600.0


class EmbeddedControlPlane:
    """Runs and history of one workspace, on its own store."""

    def __init__(self, workspace: Workspace, *, executor: Executor) -> None:
        self._runs = RunService(workspace, executor=executor, secrets=self._stored_secrets)
        self._history: History | None = None
        self._releases: ReleaseService | None = None
        self._promotions: PromotionService | None = None
        self._deployments: LocalDeployments | None = None
        self._change_records: ChangeRecords | None = None

    def _stored_secrets(self, names: Sequence[str]) -> dict[str, str]:
        """Secrets a job declares and the caller's environment lacks, from the secret store."""
        from conveyor.engine.secrets import StoredSecrets

        stored = StoredSecrets(
            lambda: self._runs.db, project=self._runs.workspace.project, environ=os.environ
        )
        return stored(names)

    @property
    def history(self) -> History:
        if self._history is None:
            from conveyor.engine.history import History

            runs = self._runs
            self._history = History(
                runs.workspace, db=runs.db, cas=runs.cas, executor=runs.executor, clock=runs.clock
            )
        return self._history

    @property
    def releases(self) -> ReleaseService:
        from conveyor.engine.releases import ReleaseService

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
        from conveyor.engine.promotion_facts import ContentCheck
        from conveyor.engine.promotions import PromotionService

        if self._promotions is None:
            runs = self._runs
            self._promotions = PromotionService(
                runs.workspace,
                db=runs.db,
                releases=self.releases,
                artifacts=ContentCheck(runs.cas),
                clock=runs.clock,
                deployer=self.deployments.deployer,
                observers=(self.change_records,),
            )
        return self._promotions

    @property
    def change_records(self) -> ChangeRecords:
        from conveyor.engine.change_records import ChangeRecords

        if self._change_records is None:
            runs = self._runs
            self._change_records = ChangeRecords(
                db=runs.db,
                releases=self.releases,
                clock=runs.clock,
                environ=runs.environ,
                warn=_warn,
            )
        return self._change_records

    @property
    def deployments(self) -> LocalDeployments:
        from conveyor.engine.local_deployments import LocalDeployments

        if self._deployments is None:
            runs = self._runs
            self._deployments = LocalDeployments(
                runs.workspace, db=runs.db, cas=runs.cas, clock=runs.clock
            )
        return self._deployments

    def actor(self) -> Actor:
        """Who acts here: CONVEYOR_ACTOR or git's user.email, with roles from the roles map."""
        from conveyor.engine.promotion_facts import current_actor

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

    def job_log(self, ref: str | None, job: str, attempt: int | None = None) -> tuple[str, bool]:
        return self.history.job_log(ref, job, attempt)

    def explain(self, ref: str | None, job: str) -> Explanation:
        return self.history.explain(ref, job, self._runs.environ)

    def artifact_available(self, digest: str) -> bool:
        return self._runs.cas.has(digest)

    def fetch_artifact(self, digest: str, dest: Path) -> None:
        """Write an artifact's content to `dest`, checking its digest.

        A digest may be shortened as `conveyor artifacts ls` shows it, when it
        names one stored artifact.
        """
        if not is_digest(digest):
            digest = self._complete(digest)
        if not self._runs.cas.has(digest):
            raise NotFound(f"no artifact {digest} here (never stored, or pruned)")
        self._runs.cas.restore(digest, dest)

    def _complete(self, short: str) -> str:
        shape = "write sha256: and its first hex digits (at least 8), as `artifacts ls` shows"
        hexpart = short.removeprefix("sha256:").lower()
        hexadecimal = all(char in "0123456789abcdef" for char in hexpart)
        if not short.startswith("sha256:") or len(hexpart) < 8 or not hexadecimal:
            raise UsageError(f"'{short}' is not an artifact digest; {shape}")
        found = self._runs.cas.complete(short)
        if not found:
            raise NotFound(f"no artifact {short}... here (never stored, or pruned)")
        if len(found) > 1:
            raise UsageError(f"'{short}' is the start of {len(found)} artifacts; write more of it")
        return found[0]

    def create_release(
        self, pipeline: PipelineSource, run_ref: str | None, *, version: str | None = None
    ) -> ReleaseOutcome:
        read = pipeline()  # a bad conveyor.yaml is reported before the store is opened
        return self.releases.create(read, run_ref, version=version)

    def list_releases(self, *, service: str | None = None) -> list[Release]:
        return self.releases.list_releases(service=service)

    def get_release(self, version: str, *, service: str | None = None) -> Release:
        return self.releases.get_release(version, service=service)

    def release_notes(self, version: str, *, service: str | None = None) -> ReleaseNotes:
        return self.releases.notes(version, service=service)

    def changelog(self, version: str, *, service: str | None = None) -> list[ReleaseNotes]:
        return self.releases.changelog(version, service=service)

    def promote(
        self, pipeline: PipelineSource, service: str, version: str, environment: str
    ) -> Promotion:
        read = pipeline()  # a bad conveyor.yaml is reported before the store is opened
        return self.promotions.promote(read, service, version, environment, self.actor())

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

    def change_record(self, promotion_id: int) -> ChangeRecord:
        return self.change_records.get(self.promotions.get(promotion_id))

    def export_evidence(self, service: str, version: str, dest: Path) -> EvidenceExport:
        from conveyor.engine.evidence import EvidenceService

        runs = self._runs
        evidence = EvidenceService(
            runs.workspace,
            db=runs.db,
            releases=self.releases,
            change_records=self.change_records,
            clock=runs.clock,
            environ=runs.environ,
        )
        actor = actor_name(runs.workspace.root, runs.environ)
        return evidence.export(service, version, dest, actor=actor)

    def await_deployment(
        self, promotion_id: int, *, timeout_s: float, on_progress: Progress | None = None
    ) -> tuple[Promotion, Deployment | None]:
        # Re-evaluating an approved promotion queues its Deployment if it is not yet queued.
        self.reevaluate(promotion_id)
        deployment = self.deployments.drive(
            promotion_id, timeout_s=timeout_s, on_progress=on_progress
        )
        return self.promotions.get(promotion_id), deployment

    def reconcile(
        self, *, timeout_s: float, once: bool = False, on_progress: Progress | None = None
    ) -> list[Deployment]:
        # Each pass first re-evaluates open promotions, so one waiting for a soak or a
        # window proceeds by itself when its time comes.
        return self.deployments.reconcile(
            timeout_s=timeout_s,
            once=once,
            on_progress=on_progress,
            before_pass=self.promotions.reevaluate_open,
        )

    def environment_status(self, pipeline: PipelineSource) -> tuple[str, list[EnvironmentView]]:
        read = pipeline()
        service = read.delivery.service if read.delivery is not None else ""
        return service, self.deployments.environments(read)

    def list_deployments(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Deployment]:
        return self.deployments.list_deployments(
            service=service, environment=environment, limit=limit
        )

    def release_run(self, pipeline: Pipeline, run: RunRecord) -> AutoRelease | None:
        """Release a successful default-branch run; promote it where `auto: true` says."""
        delivery = pipeline.delivery
        if run.status != "success" or delivery is None:
            return None
        if not any(env.auto for env in delivery.environments):
            return None
        from conveyor.engine.auto_release import AutoReleaser

        releaser = AutoReleaser(
            self._runs.workspace.root,
            releases=self.releases,
            promotions=self.promotions,
            drive=lambda promotion_id: self.deployments.drive(
                promotion_id, timeout_s=AUTO_DEPLOY_TIMEOUT_S
            ),
        )
        return releaser.after_run(pipeline, run, self.actor)

    # --- waivers: time-boxed exceptions to one policy rule ---------------------

    @property
    def waivers(self) -> WaiverService:
        from conveyor.engine.waivers import WaiverService

        runs = self._runs
        return WaiverService(runs.workspace, db=runs.db, clock=runs.clock)

    def create_waiver(
        self,
        pipeline: PipelineSource,
        *,
        rule: str,
        environment: str,
        expires_s: float,
        reason: str,
    ) -> WaiverStatus:
        read = pipeline()  # a bad conveyor.yaml is reported before the store is opened
        return self.waivers.create(
            read,
            rule=rule,
            environment=environment,
            expires_s=expires_s,
            reason=reason,
            requester=self.actor(),
        )

    def approve_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        approved = self.waivers.approve(waiver_id, self.actor(), comment=comment)
        # A promotion blocked by the rule it waives proceeds now (and one it excused, on revoke,
        # is judged again): the gates are re-evaluated when what they read changes.
        self.promotions.reevaluate_open()
        return approved

    def reject_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        return self.waivers.reject(waiver_id, self.actor(), comment=comment)

    def revoke_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        revoked = self.waivers.revoke(waiver_id, self.actor(), comment=comment)
        self.promotions.reevaluate_open()
        return revoked

    def get_waiver(self, waiver_id: int) -> WaiverStatus:
        return self.waivers.get(waiver_id)

    def list_waivers(
        self,
        *,
        environment: str | None = None,
        rule: str | None = None,
        state: WaiverState | None = None,
        limit: int = 100,
    ) -> list[WaiverStatus]:
        return self.waivers.list_waivers(
            environment=environment, rule=rule, state=state, limit=limit
        )

    def close(self) -> None:
        if self._deployments is not None:
            self._deployments.close()
        self._runs.close()


def _warn(message: str) -> None:
    """Warnings reach the person at the terminal; they never stop the work."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()

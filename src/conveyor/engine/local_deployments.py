"""The Deployments of one workspace, carried out on its local target.

The local target keeps its instances' records under the workspace's state
directory (`targets/local/`) and takes their artifacts from the workspace's
content store. Without a server nothing runs in the background: whoever waits
for a Deployment (`conveyor promote`) or asks for it (`conveyor reconcile`)
drives it, and any of them takes over from one that was killed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock
from conveyor.engine.deployer import QueueDeployment
from conveyor.engine.deployments import DeploymentController, Progress
from conveyor.engine.environments import EnvironmentView, environment_views
from conveyor.engine.workspace import Workspace
from conveyor.promotion.model import Promotion
from conveyor.rollout.deployment import Deployment
from conveyor.spec.pipeline import Pipeline
from conveyor.store import deployments as deployment_store
from conveyor.store.db import Database
from conveyor.targets.local import LocalTarget

ACTOR = "conveyor"
# Re-evaluates the project's open Promotions; each as it is afterwards.
Reevaluate = Callable[[], Sequence[Promotion]]


def target_root(workspace: Workspace) -> Path:
    """Where the local target of `workspace` records its instances."""
    return workspace.state_dir / "targets" / "local"


class LocalDeployments:
    """Queues, drives and reads the Deployments of one workspace's project."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        db: Database,
        cas: ContentStore,
        clock: Clock,
        interval_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.workspace = workspace
        self.db = db
        self.clock = clock
        self.interval_s = interval_s
        self._sleep = sleep
        self.target = LocalTarget(target_root(workspace), cas, clock=clock)
        self.deployer = QueueDeployment(db, clock, ACTOR)
        self._controller: DeploymentController | None = None

    @property
    def controller(self) -> DeploymentController:
        if self._controller is None:
            self._controller = DeploymentController(
                self.db, self.target, self.clock, project=self.workspace.project, actor=ACTOR
            )
        return self._controller

    def drive(
        self, promotion_id: int, *, timeout_s: float, on_progress: Progress | None = None
    ) -> Deployment | None:
        """Drive the Promotion's Deployment until it settles; None when none was queued."""
        queued = deployment_store.for_promotion(self.db, promotion_id)
        if queued is None:
            return None
        return self.controller.run_until_settled(
            queued.id, timeout_s=timeout_s, on_progress=on_progress
        )

    def reconcile(
        self,
        *,
        timeout_s: float,
        once: bool = False,
        on_progress: Progress | None = None,
        before_pass: Reevaluate | None = None,
    ) -> list[Deployment]:
        """Drive every unsettled Deployment (one pass of each with `once`).

        `before_pass` re-evaluates the open Promotions at the start of every
        pass, so one whose soak ended or whose window opened is approved and
        its Deployment queued and driven in that pass. Without `once`, passes
        go on until no Deployment is unsettled and no Promotion waits only
        for time to pass, or until `timeout_s`.
        """
        deadline = self.clock.monotonic() + timeout_s
        seen: dict[int, Deployment] = {}
        try:
            while True:
                promotions = before_pass() if before_pass is not None else ()
                # Waiting is pointless for a time that comes only after the timeout.
                until = self.clock.now() + deadline - self.clock.monotonic()
                waiting = _waiting_for_time(promotions, until)
                for deployment in self.controller.run_once():
                    seen[deployment.id] = deployment
                    if on_progress is not None:
                        on_progress(deployment)
                unsettled = deployment_store.list_deployments(
                    self.db, project=self.workspace.project, active=True
                )
                left = deadline - self.clock.monotonic()
                if once or (not unsettled and not waiting) or left <= 0:
                    return [deployment_store.get(self.db, d) for d in sorted(seen)]
                # A promotion waiting for a soak or a window is looked at again when its time
                # comes; an unsettled Deployment, at the controller's pace.
                pace = [self.interval_s] if unsettled else []
                self._sleep(min(left, *pace, *_until(waiting, self.clock.now())))
        finally:
            self.controller.close()

    def environments(self, pipeline: Pipeline) -> list[EnvironmentView]:
        """Each environment of the pipeline's delivery: release, Deployment, live instances."""
        return environment_views(
            self.db, self.target, project=self.workspace.project, pipeline=pipeline
        )

    def list_deployments(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Deployment]:
        """The project's Deployments, newest first."""
        return deployment_store.list_deployments(
            self.db,
            project=self.workspace.project,
            service=service,
            environment=environment,
            limit=limit,
        )

    def close(self) -> None:
        """Give up any lease still held."""
        if self._controller is not None:
            self._controller.close()


def _waiting_for_time(promotions: Sequence[Promotion], until: float) -> list[Promotion]:
    """The open Promotions only time moves on (every gate not passed has a retry time),
    whose next retry time comes by `until`."""
    waiting = []
    for promotion in promotions:
        report = promotion.report
        if not promotion.open or report is None or report.final:
            continue
        if report.retry_at is None or report.retry_at > until:
            continue
        if all(gate.passed or gate.retry_at is not None for gate in report.gates):
            waiting.append(promotion)
    return waiting


def _until(waiting: Sequence[Promotion], now: float) -> list[float]:
    """How long until each waiting Promotion's next retry time (never negative)."""
    return [
        max(0.0, p.report.retry_at - now)
        for p in waiting
        if p.report is not None and p.report.retry_at is not None
    ]

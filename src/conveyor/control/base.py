"""The control-plane interface every CLI command goes through.

`EmbeddedControlPlane` answers it on the local store; a remote implementation
will answer it through `conveyor server`'s REST API. Commands never reach
past this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from conveyor.core.records import RunRecord
from conveyor.engine.auto_release import AutoRelease
from conveyor.engine.deployments import Progress
from conveyor.engine.environments import EnvironmentView
from conveyor.engine.evidence import EvidenceExport
from conveyor.engine.history import Explanation
from conveyor.engine.preview import PlannedJob
from conveyor.engine.releases import ReleaseOutcome
from conveyor.engine.reporting import Reporter
from conveyor.engine.runner import Scheduler
from conveyor.engine.service import RunRequest, RunResult
from conveyor.engine.waivers import WaiverStatus
from conveyor.policy.waiver import WaiverState
from conveyor.promotion.model import Promotion
from conveyor.release.change_record import ChangeRecord
from conveyor.release.model import Release
from conveyor.release.notes import ReleaseNotes
from conveyor.rollout.deployment import Deployment
from conveyor.spec.pipeline import Pipeline

# Reads the local pipeline file: only the embedded control plane calls it, so that commands
# against a server work where there is no conveyor.yaml (the server's own decides).
PipelineSource = Callable[[], Pipeline]


class ControlPlane(Protocol):
    """Runs, their history, logs, artifacts and explanations; Releases and their Promotions.

    Who acts (requests, approves, rejects) is the control plane's to know: the
    token's owner against a server; embedded, CONVEYOR_ACTOR or git's
    user.email, with roles from the workspace's roles map.
    """

    def run(
        self,
        pipeline: Pipeline,
        request: RunRequest,
        reporter: Reporter,
        *,
        on_start: Callable[[Scheduler], None] | None = None,
    ) -> RunResult: ...

    def dry_run(self, pipeline: Pipeline, request: RunRequest) -> list[PlannedJob]: ...

    def list_runs(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        branch: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]: ...

    def get_run(self, ref: str | None) -> RunRecord: ...

    def job_log(
        self, ref: str | None, job: str, attempt: int | None = None
    ) -> tuple[str, bool]: ...

    def explain(self, ref: str | None, job: str) -> Explanation: ...

    def artifact_available(self, digest: str) -> bool: ...

    def fetch_artifact(self, digest: str, dest: Path) -> None: ...

    def create_release(
        self, pipeline: PipelineSource, run_ref: str | None, *, version: str | None = None
    ) -> ReleaseOutcome: ...

    def list_releases(self, *, service: str | None = None) -> list[Release]: ...

    def get_release(self, version: str, *, service: str | None = None) -> Release: ...

    def release_notes(self, version: str, *, service: str | None = None) -> ReleaseNotes: ...

    def changelog(self, version: str, *, service: str | None = None) -> list[ReleaseNotes]: ...

    def promote(
        self, pipeline: PipelineSource, service: str, version: str, environment: str
    ) -> Promotion: ...

    def reevaluate(self, promotion_id: int) -> Promotion: ...

    def approve(self, promotion_id: int, *, comment: str = "") -> Promotion: ...

    def reject(self, promotion_id: int, *, comment: str = "") -> Promotion: ...

    def why(self, service: str, version: str, environment: str) -> Promotion: ...

    def list_promotions(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Promotion]: ...

    def change_record(self, promotion_id: int) -> ChangeRecord: ...

    def export_evidence(self, service: str, version: str, dest: Path) -> EvidenceExport: ...

    def await_deployment(
        self, promotion_id: int, *, timeout_s: float, on_progress: Progress | None = None
    ) -> tuple[Promotion, Deployment | None]: ...

    def reconcile(
        self, *, timeout_s: float, once: bool = False, on_progress: Progress | None = None
    ) -> list[Deployment]: ...

    def environment_status(self, pipeline: PipelineSource) -> tuple[str, list[EnvironmentView]]:
        """The service delivered and each of its environments."""
        ...

    def list_deployments(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Deployment]: ...

    def release_run(self, pipeline: Pipeline, run: RunRecord) -> AutoRelease | None: ...

    # --- waivers: time-boxed exceptions to one policy rule ---------------------

    def create_waiver(
        self,
        pipeline: PipelineSource,
        *,
        rule: str,
        environment: str,
        expires_s: float,
        reason: str,
    ) -> WaiverStatus: ...

    def approve_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus: ...

    def reject_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus: ...

    def revoke_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus: ...

    def get_waiver(self, waiver_id: int) -> WaiverStatus: ...

    def list_waivers(
        self,
        *,
        environment: str | None = None,
        rule: str | None = None,
        state: WaiverState | None = None,
        limit: int = 100,
    ) -> list[WaiverStatus]: ...

    def close(self) -> None: ...

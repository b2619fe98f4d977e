"""A Deployment as recorded: one Promotion carried out on a Target, with its rollout status.

A Deployment is queued when its Promotion is approved. The Deployments of one
environment are carried out one at a time, oldest first; a controller works
on the oldest one that is not settled (holding a lease on it), one pass at a
time, until its status settles. Its `due_at` is when the next pass is due;
None once it settled and its outcome was recorded.
"""

from __future__ import annotations

from typing import NewType

from conveyor.core.values import frozen
from conveyor.rollout.status import ABORTED, FAILED, PROGRESSING, DeploymentStatus, Phase

DeploymentId = NewType("DeploymentId", int)


@frozen
class NewDeployment:
    """A Deployment about to be queued: which Release goes where, for which Promotion."""

    project: str
    service: str
    environment: str
    promotion_id: int
    release_id: int
    version: str
    created_at: float


@frozen(kw_only=True)
class Deployment(NewDeployment):
    """A recorded Deployment: its status, when its next pass is due, and who works on it."""

    id: DeploymentId
    status: DeploymentStatus
    revision: int
    updated_at: float
    due_at: float | None
    claimed_by: str | None = None
    lease_until: float | None = None

    @property
    def phase(self) -> Phase:
        """pending, progressing, succeeded, failed or rolled_back (computed from the status)."""
        return self.status.phase

    @property
    def step(self) -> str:
        """The name of the rollout's current step."""
        return self.status.step_name

    @property
    def active(self) -> bool:
        """Whether it is queued or in progress (not yet settled and recorded)."""
        return self.due_at is not None

    @property
    def subject(self) -> str:
        """The subject of its Events, below its Release's."""
        return deployment_subject(self.service, self.version, self.id)

    @property
    def message(self) -> str:
        """Why it is where it is: why it failed or was aborted, else how it progresses."""
        for kind in (FAILED, ABORTED, PROGRESSING):
            condition = self.status.condition(kind)
            if condition is not None:
                return condition.message
        return ""


def deployment_subject(service: str, version: str, deployment_id: int) -> str:
    """`release/<service>/<version>/deployment/<id>`: its Release's Events include it."""
    return f"release/{service}/{version}/deployment/{deployment_id}"

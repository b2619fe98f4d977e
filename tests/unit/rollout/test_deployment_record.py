"""A recorded Deployment: phase and step from its status, and why it is where it is."""

from __future__ import annotations

from dataclasses import replace

from conveyor.rollout.deployment import Deployment, DeploymentId
from conveyor.rollout.status import (
    AWAIT_HEALTH,
    FAILED,
    PROGRESSING,
    Condition,
    DeploymentStatus,
)

T0 = 1_767_225_600.0
QUEUED = Deployment(
    project="shop",
    service="hello",
    environment="prod",
    promotion_id=7,
    release_id=3,
    version="2.0.0",
    created_at=T0,
    id=DeploymentId(4),
    status=DeploymentStatus(4, "2.0.0"),
    revision=1,
    updated_at=T0,
    due_at=T0,
)


def test_a_queued_deployment_is_pending_at_its_first_step_and_active() -> None:
    assert (QUEUED.phase, QUEUED.step, QUEUED.active, QUEUED.message) == (
        "pending",
        "start-new",
        True,
        "",
    )
    assert QUEUED.subject == "release/hello/2.0.0/deployment/4"


def test_a_failed_deployment_says_why_it_failed_rather_than_how_it_rolled_back() -> None:
    status = DeploymentStatus(
        4,
        "2.0.0",
        step=AWAIT_HEALTH,
        conditions=(
            Condition(FAILED, "HealthTimeout", "instance a was not healthy within 30s", T0),
            Condition(PROGRESSING, "RolledBack", "the new instances are stopped", T0 + 1),
        ),
    )

    failed = replace(QUEUED, status=status, due_at=None)

    assert (failed.phase, failed.active) == ("failed", False)
    assert failed.message == "instance a was not healthy within 30s"

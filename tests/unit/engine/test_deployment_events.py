"""A Deployment's rollout events as they are recorded in the event log."""

from __future__ import annotations

from conveyor.engine import deployment_events
from conveyor.rollout.deployment import Deployment, DeploymentId
from conveyor.rollout.model import RolloutEvent
from conveyor.rollout.status import DeploymentStatus

T0 = 1_767_225_600.0
DEPLOYMENT = Deployment(
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


def kinds(*events: RolloutEvent) -> list[str]:
    return [e.kind for e in deployment_events.recorded(DEPLOYMENT, events, "conveyor", T0)]


def test_events_are_recorded_below_the_release_with_the_deployment_and_its_promotion() -> None:
    (event,) = deployment_events.recorded(
        DEPLOYMENT,
        [RolloutEvent("deployment.started", {"instances": ("a", "b"), "previous": ()})],
        "conveyor",
        T0 + 1,
    )

    assert (event.kind, event.subject, event.actor, event.ts) == (
        "deployment.started",
        "release/hello/2.0.0/deployment/4",
        "conveyor",
        T0 + 1,
    )
    assert event.data == {
        "deployment": 4,
        "promotion": 7,
        "environment": "prod",
        "version": "2.0.0",
        "instances": ["a", "b"],
        "previous": [],
    }


def test_a_step_is_recorded_as_progressing() -> None:
    assert kinds(RolloutEvent("deployment.step", {"step": 2})) == ["deployment.progressing"]


def test_the_end_is_recorded_as_succeeded_or_as_rolled_back() -> None:
    assert kinds(
        RolloutEvent("deployment.finished", {"phase": "succeeded"}),
        RolloutEvent("deployment.finished", {"phase": "failed"}),
        RolloutEvent("deployment.finished", {"phase": "rolled_back"}),
    ) == ["deployment.succeeded", "deployment.rolled_back", "deployment.rolled_back"]


def test_other_events_keep_their_names() -> None:
    assert kinds(
        RolloutEvent("deployment.failed"),
        RolloutEvent("instance.healthy", {"instance": "a"}),
    ) == ["deployment.failed", "instance.healthy"]


def test_an_instance_event_names_the_version_of_the_instance() -> None:
    (event,) = deployment_events.recorded(
        DEPLOYMENT,
        [RolloutEvent("instance.stopped", {"instance": "old", "version": "1.0.0"})],
        "conveyor",
        T0,
    )

    assert event.data["version"] == "1.0.0"


def test_queueing_is_recorded_when_the_deployment_was_created() -> None:
    event = deployment_events.queued(DEPLOYMENT, "conveyor")

    assert (event.kind, event.ts, event.data["promotion"]) == ("deployment.queued", T0, 7)

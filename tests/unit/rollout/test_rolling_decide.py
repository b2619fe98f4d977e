"""The rolling strategy, one pass at a time: build a status, decide once, check the change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.rollout.model import (
    CheckHealth,
    Decision,
    Observed,
    ObservedInstance,
    RollingSpec,
    StartInstance,
    StopInstance,
)
from conveyor.rollout.rolling import decide
from conveyor.rollout.status import (
    AWAIT_HEALTH,
    COMPLETE,
    STOP_PREVIOUS,
    DeploymentStatus,
    InstanceState,
    InstanceStatus,
    request_abort,
)

T0 = 1_767_225_600.0
SPEC = RollingSpec(
    deployment=3,
    service="payments-api",
    environment="prod",
    version="2.0.0",
    instances=2,
    within_s=30.0,
)
NEW = [SPEC.instance_id(1), SPEC.instance_id(2)]
OLD = ["payments-api.prod.2.1", "payments-api.prod.2.2"]


def old_seen() -> list[ObservedInstance]:
    return [ObservedInstance(OLD[0], "1.0.0", 9001), ObservedInstance(OLD[1], "1.0.0", 9002)]


def new_seen(index: int, health: str | None = None, detail: str = "") -> ObservedInstance:
    return ObservedInstance(NEW[index], "2.0.0", 8001 + index, health, detail)  # type: ignore[arg-type]


def observed(*instances: ObservedInstance) -> Observed:
    return Observed(tuple(instances))


def awaiting(*states: InstanceState, step: int = AWAIT_HEALTH) -> DeploymentStatus:
    """A status after the start pass: new instances in `states`, seen running when not starting."""
    new = tuple(
        InstanceStatus(
            NEW[index],
            "2.0.0",
            state,
            T0,
            port=None if state == "starting" else 8001 + index,
            requested_at=T0,
        )
        for index, state in enumerate(states)
    )
    previous = tuple(
        InstanceStatus(i, "1.0.0", "serving", T0, port=9001 + n) for n, i in enumerate(OLD)
    )
    return DeploymentStatus(3, "2.0.0", step=step, new=new, previous=previous)


def kinds(decision: Decision) -> list[str]:
    return [event.kind for event in decision.events]


def stops(decision: Decision) -> list[str]:
    return [a.instance for a in decision.actions if isinstance(a, StopInstance)]


def test_a_pending_deployment_adopts_what_runs_and_asks_for_every_new_instance() -> None:
    decision = decide(SPEC, DeploymentStatus(3, "2.0.0"), observed(*old_seen()), T0)

    assert decision.status.phase == "progressing"
    assert decision.status.step == AWAIT_HEALTH
    assert [p.id for p in decision.status.previous] == OLD
    assert [(n.id, n.state, n.requested_at) for n in decision.status.new] == [
        (NEW[0], "starting", T0),
        (NEW[1], "starting", T0),
    ]
    assert decision.actions == (
        StartInstance("deployment/3/start/payments-api.prod.3.1", NEW[0], "2.0.0"),
        StartInstance("deployment/3/start/payments-api.prod.3.2", NEW[1], "2.0.0"),
        CheckHealth("deployment/3/check/payments-api.prod.3.1", NEW[0]),
        CheckHealth("deployment/3/check/payments-api.prod.3.2", NEW[1]),
    )
    assert kinds(decision) == ["deployment.started"]
    assert decision.events[0].data["previous"] == tuple(OLD)


def test_new_instances_already_running_after_a_lost_pass_are_not_taken_for_previous_ones() -> None:
    decision = decide(SPEC, DeploymentStatus(3, "2.0.0"), observed(*old_seen(), new_seen(0)), T0)

    assert [p.id for p in decision.status.previous] == OLD


def test_a_new_instance_seen_running_gets_its_port_and_an_event() -> None:
    decision = decide(SPEC, awaiting("starting", "starting"), observed(new_seen(0)), T0 + 1)

    assert decision.status.new[0].port == 8001
    assert decision.status.new[0].state == "starting"
    assert kinds(decision) == ["instance.started"]
    assert CheckHealth("deployment/3/check/payments-api.prod.3.1", NEW[0]) in decision.actions


def test_the_previous_release_keeps_serving_while_a_new_instance_is_not_healthy() -> None:
    decision = decide(
        SPEC,
        awaiting("starting", "starting"),
        observed(*old_seen(), new_seen(0, "healthy"), new_seen(1, "unhealthy", "HTTP 503")),
        T0 + 5,
    )

    assert decision.status.phase == "progressing"
    assert [(n.state, n.detail) for n in decision.status.new] == [
        ("healthy", ""),
        ("unhealthy", "HTTP 503"),
    ]
    assert stops(decision) == []
    assert decision.actions == (CheckHealth("deployment/3/check/payments-api.prod.3.2", NEW[1]),)


def test_when_every_new_instance_is_healthy_the_previous_ones_are_asked_to_stop() -> None:
    decision = decide(
        SPEC,
        awaiting("healthy", "unhealthy"),
        observed(*old_seen(), new_seen(0), new_seen(1, "healthy")),
        T0 + 6,
    )

    assert decision.status.step == STOP_PREVIOUS
    assert stops(decision) == OLD
    assert decision.actions[0] == StopInstance("deployment/3/stop/payments-api.prod.2.1", OLD[0])
    assert [p.state for p in decision.status.previous] == ["stopping", "stopping"]
    assert kinds(decision) == ["instance.healthy", "deployment.step"]


def test_a_deployment_succeeds_once_no_previous_instance_runs() -> None:
    status = awaiting("healthy", "healthy", step=STOP_PREVIOUS)

    decision = decide(SPEC, status, observed(new_seen(0), new_seen(1)), T0 + 8)

    assert decision.status.phase == "succeeded"
    assert decision.status.step == COMPLETE
    assert decision.status.settled
    assert [p.state for p in decision.status.previous] == ["stopped", "stopped"]
    assert kinds(decision) == ["instance.stopped", "instance.stopped", "deployment.finished"]
    assert decision.actions == ()


def test_a_previous_instance_still_running_is_asked_to_stop_again_with_the_same_key() -> None:
    status = awaiting("healthy", "healthy", step=STOP_PREVIOUS)

    decision = decide(SPEC, status, observed(*old_seen()[:1], new_seen(0), new_seen(1)), T0 + 8)

    assert decision.status.phase == "progressing"
    assert decision.actions == (StopInstance("deployment/3/stop/payments-api.prod.2.1", OLD[0]),)


def test_a_new_instance_that_exits_fails_the_deployment_and_only_the_new_ones_are_stopped() -> None:
    decision = decide(
        SPEC, awaiting("healthy", "unhealthy"), observed(*old_seen(), new_seen(0)), T0 + 3
    )

    assert decision.status.phase == "failed"
    failed = decision.status.condition("Failed")
    assert failed is not None
    assert failed.reason == "InstanceExited"
    assert failed.message == (
        "instance payments-api.prod.3.2 exited before it was healthy: it is no longer running"
    )
    assert stops(decision) == [NEW[0]]
    assert decision.status.previous == awaiting().previous
    assert kinds(decision) == ["instance.exited", "deployment.failed"]


def test_a_start_the_target_could_not_make_fails_the_deployment_with_the_targets_reason() -> None:
    cannot = ObservedInstance(NEW[1], "2.0.0", None, "exited", "artifact is missing")

    decision = decide(SPEC, awaiting("starting", "starting"), observed(new_seen(0), cannot), T0)

    failed = decision.status.condition("Failed")
    assert failed is not None
    assert failed.message.endswith("exited before it was healthy: artifact is missing")


def test_a_new_instance_is_given_until_its_deadline_to_become_healthy() -> None:
    decision = decide(
        SPEC,
        awaiting("unhealthy", "healthy"),
        observed(new_seen(0, "unhealthy", "HTTP 500"), new_seen(1)),
        T0 + 29.9,
    )

    assert decision.status.phase == "progressing"


def test_a_new_instance_not_healthy_by_its_deadline_fails_the_deployment_with_its_last_answer() -> (
    None
):
    decision = decide(
        SPEC,
        awaiting("unhealthy", "healthy"),
        observed(*old_seen(), new_seen(0, "unhealthy", "/healthz answered HTTP 500"), new_seen(1)),
        T0 + 30,
    )

    failed = decision.status.condition("Failed")
    assert failed is not None
    assert (failed.reason, failed.message) == (
        "HealthTimeout",
        "instance payments-api.prod.3.1 was not healthy within 30s: /healthz answered HTTP 500",
    )
    assert sorted(stops(decision)) == NEW


def test_a_start_lost_in_a_crash_is_asked_for_again_with_the_same_key() -> None:
    decision = decide(SPEC, awaiting("starting", "starting"), observed(*old_seen()), T0 + 2)

    assert [a for a in decision.actions if isinstance(a, StartInstance)] == [
        StartInstance("deployment/3/start/payments-api.prod.3.1", NEW[0], "2.0.0"),
        StartInstance("deployment/3/start/payments-api.prod.3.2", NEW[1], "2.0.0"),
    ]
    assert decision.status == awaiting("starting", "starting")


def test_a_new_instance_that_never_starts_fails_as_a_start_timeout() -> None:
    decision = decide(SPEC, awaiting("starting", "healthy"), observed(new_seen(1)), T0 + 31)

    failed = decision.status.condition("Failed")
    assert failed is not None
    assert (failed.reason, failed.message) == (
        "StartTimeout",
        "instance payments-api.prod.3.1 did not start within 30s",
    )


def test_an_abort_while_awaiting_health_rolls_back_and_leaves_the_previous_release() -> None:
    status = request_abort(awaiting("healthy", "unhealthy"), by="ada@example.com", now=T0 + 4)

    decision = decide(SPEC, status, observed(*old_seen(), new_seen(0), new_seen(1)), T0 + 5)

    assert decision.status.phase == "rolled_back"
    aborted = decision.status.condition("Aborted")
    assert aborted is not None
    assert aborted.message == "abort requested by ada@example.com"
    assert sorted(stops(decision)) == NEW
    assert kinds(decision) == ["deployment.aborted"]


def test_an_abort_of_a_pending_deployment_starts_nothing_and_settles() -> None:
    status = request_abort(DeploymentStatus(3, "2.0.0"), by="ada", now=T0)

    decision = decide(SPEC, status, observed(*old_seen()), T0)

    assert decision.status.phase == "rolled_back"
    assert decision.status.settled
    assert decision.actions == ()
    assert kinds(decision) == ["deployment.aborted", "deployment.finished"]


def test_an_abort_once_the_previous_instances_are_stopping_is_ignored_with_a_reason() -> None:
    status = request_abort(awaiting("healthy", "healthy", step=STOP_PREVIOUS), by="ada", now=T0 + 7)

    decision = decide(SPEC, status, observed(*old_seen(), new_seen(0), new_seen(1)), T0 + 7)
    again = decide(SPEC, decision.status, observed(new_seen(0), new_seen(1)), T0 + 8)

    assert decision.status.phase == "progressing"
    assert stops(decision) == OLD
    ignored = decision.status.condition("AbortIgnored")
    assert ignored is not None
    assert "roll back with a new deployment" in ignored.message
    assert kinds(decision) == ["deployment.abort_ignored"]
    assert again.status.phase == "succeeded"
    assert "deployment.abort_ignored" not in kinds(again)


def test_a_failed_deployment_settles_once_every_new_instance_is_gone() -> None:
    failing = decide(
        SPEC, awaiting("healthy", "unhealthy"), observed(*old_seen(), new_seen(0)), T0 + 3
    )

    decision = decide(SPEC, failing.status, observed(*old_seen()), T0 + 4)

    assert decision.status.phase == "failed"
    assert decision.status.settled
    assert [n.state for n in decision.status.new] == ["stopped", "exited"]
    assert kinds(decision) == ["instance.stopped", "deployment.finished"]
    assert decision.events[-1].data == {"phase": "failed"}


def test_a_settled_deployment_decides_nothing() -> None:
    done = decide(
        SPEC,
        awaiting("healthy", "healthy", step=STOP_PREVIOUS),
        observed(new_seen(0), new_seen(1)),
        T0,
    ).status

    decision = decide(SPEC, done, observed(), T0 + 1000)

    assert decision == Decision(done)


def test_deciding_twice_on_the_same_status_and_observation_gives_the_same_decision() -> None:
    status = awaiting("starting", "unhealthy")
    seen = observed(*old_seen(), new_seen(0, "healthy"), new_seen(1, "unhealthy", "HTTP 500"))

    assert decide(SPEC, status, seen, T0 + 3) == decide(SPEC, status, seen, T0 + 3)


def test_a_first_deployment_with_nothing_running_succeeds_without_stopping_anything() -> None:
    spec = replace(SPEC, instances=1)
    first = decide(spec, DeploymentStatus(3, "2.0.0"), observed(), T0)

    healthy = decide(spec, first.status, observed(new_seen(0, "healthy")), T0 + 1)

    assert first.status.previous == ()
    assert healthy.status.phase == "succeeded"
    assert stops(healthy) == []


def test_a_spec_without_instances_or_with_no_time_to_become_healthy_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one instance"):
        replace(SPEC, instances=0)
    with pytest.raises(ValueError, match="must be positive"):
        replace(SPEC, within_s=0.0)

"""Rollout actions performed against the fake target, and whole rollouts driven pass by pass."""

from __future__ import annotations

from pathlib import Path

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import Location
from conveyor.core.records import RunId
from conveyor.release.model import Release, ReleaseId
from conveyor.rollout.model import (
    CheckHealth,
    Observed,
    ObservedInstance,
    RollingSpec,
    StartInstance,
    StopInstance,
)
from conveyor.rollout.rolling import decide
from conveyor.rollout.status import DeploymentStatus
from conveyor.spec.delivery import Delivery, Environment, Health
from conveyor.targets.base import HealthCheck, HealthResult, Instance, InstanceId, Placement
from conveyor.targets.driver import Workload, observe, perform, rolling_spec
from conveyor.targets.fake import FakeTarget

PLACEMENT = Placement("payments-api", "prod")
HERE = Location("conveyor.yaml", 1, 1)


def release(version: str) -> Release:
    return Release(
        project="shop",
        service="payments-api",
        version=version,
        commit_sha=None,
        run_id=RunId(1),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=(),
        created_at=0.0,
        created_by="ci",
        id=ReleaseId(1),
    )


WORKLOAD = Workload(
    PLACEMENT,
    "python -m payments.app",
    HealthCheck("/healthz", 1.0),
    {"1.0.0": release("1.0.0"), "2.0.0": release("2.0.0")},
)


def start(instance: str, version: str = "2.0.0") -> StartInstance:
    return StartInstance(f"deployment/3/start/{instance}", instance, version)


def roll_out(spec: RollingSpec, target: FakeTarget, clock: FrozenClock) -> DeploymentStatus:
    """Loop decide -> perform until the Deployment settles, a second between passes."""
    status = DeploymentStatus(spec.deployment, spec.version)
    observed = observe(target, WORKLOAD)
    for _ in range(50):
        decision = decide(spec, status, observed, clock.now())
        status = decision.status
        if status.settled:
            return status
        observed = perform(decision.actions, target, WORKLOAD)
        clock.advance(1.0)
    raise AssertionError(f"the deployment did not settle: {status}")


def test_an_instance_that_already_runs_is_not_started_again() -> None:
    target = FakeTarget()

    perform([start("a")], target, WORKLOAD)
    perform([start("a"), start("a")], target, WORKLOAD)

    assert target.started == ["a"]
    assert target.prepared == [("2.0.0", "a")]


def test_stopping_an_instance_that_no_longer_runs_does_nothing() -> None:
    target = FakeTarget()
    target.run("old", PLACEMENT, "1.0.0")

    perform([StopInstance("k", "old")], target, WORKLOAD)
    observed = perform([StopInstance("k", "old")], target, WORKLOAD)

    assert target.stopped == ["old"]
    assert observed == Observed()


def test_only_the_instances_asked_for_are_checked() -> None:
    target = FakeTarget(lambda _i, _n: HealthResult("unhealthy", "HTTP 500"))
    target.run("old", PLACEMENT, "1.0.0")

    observed = perform([start("a"), CheckHealth("c", "a")], target, WORKLOAD)

    assert observed.instances == (
        ObservedInstance("a", "2.0.0", 20001, "unhealthy", "HTTP 500"),
        ObservedInstance("old", "1.0.0", 20000),
    )


def test_an_instance_that_cannot_be_started_is_observed_as_exited_with_the_reason() -> None:
    target = FakeTarget(unstartable={"2.0.0"})

    observed = perform([start("a")], target, WORKLOAD)

    assert observed.instances == (
        ObservedInstance(
            "a", "2.0.0", None, "exited", "cannot start instance a: 2.0.0 is unstartable"
        ),
    )


def test_instances_of_other_placements_are_not_observed() -> None:
    target = FakeTarget()
    target.run("staging-1", Placement("payments-api", "staging"), "1.0.0")

    assert observe(target, WORKLOAD) == Observed()


def test_a_rolling_deployment_from_v1_to_v2_leaves_only_v2_serving() -> None:
    clock = FrozenClock()
    target = FakeTarget(clock=clock)
    for n in (1, 2):
        target.run(f"payments-api.prod.2.{n}", PLACEMENT, "1.0.0")
    spec = RollingSpec(3, "payments-api", "prod", "2.0.0", instances=2, within_s=30.0)

    status = roll_out(spec, target, clock)

    assert status.phase == "succeeded"
    assert {i.version for i in target.list_instances(PLACEMENT)} == {"2.0.0"}
    assert sorted(target.running) == ["payments-api.prod.3.1", "payments-api.prod.3.2"]


def test_a_v2_that_never_becomes_healthy_leaves_v1_serving() -> None:
    clock = FrozenClock()

    def v2_fails(instance: Instance, _check: int) -> HealthResult:
        if instance.version == "2.0.0":
            return HealthResult("unhealthy", "/healthz answered HTTP 500")
        return HealthResult("healthy")

    target = FakeTarget(v2_fails, clock=clock)
    target.run("payments-api.prod.2.1", PLACEMENT, "1.0.0")
    spec = RollingSpec(3, "payments-api", "prod", "2.0.0", instances=2, within_s=5.0)

    status = roll_out(spec, target, clock)

    assert status.phase == "failed"
    failed = status.condition("Failed")
    assert failed is not None
    assert failed.message.endswith("was not healthy within 5s: /healthz answered HTTP 500")
    assert list(target.running) == [InstanceId("payments-api.prod.2.1")]


def test_the_workload_and_the_spec_come_from_the_delivery_section() -> None:
    delivery = Delivery(
        service="payments-api",
        artifacts=("dist/*.whl",),
        run="python -m payments.app --port $PORT",
        environments=(Environment("prod", HERE, instances=3),),
        location=HERE,
        health=Health("/ready", 0.5, 12.0),
    )

    workload = Workload.of(delivery, "prod", [release("2.0.0")])
    spec = rolling_spec(delivery, "prod", deployment=7, version="2.0.0")

    assert workload == Workload(
        PLACEMENT,
        "python -m payments.app --port $PORT",
        HealthCheck("/ready", 0.5),
        {"2.0.0": release("2.0.0")},
    )
    assert spec == RollingSpec(7, "payments-api", "prod", "2.0.0", instances=3, within_s=12.0)


def test_the_fake_target_counts_checks_and_sees_a_crashed_instance_as_exited() -> None:
    checks: list[int] = []

    def script(_instance: Instance, check: int) -> HealthResult:
        checks.append(check)
        return HealthResult("healthy")

    target = FakeTarget(script)
    instance = target.run("a", PLACEMENT, "1.0.0")
    target.health(instance)
    target.health(instance)
    target.crash("a")

    assert checks == [1, 2]
    assert target.health(instance) == HealthResult("exited", "it is no longer running")
    assert target.prepare(release("1.0.0"), instance.id).cwd == Path("fake") / "a"

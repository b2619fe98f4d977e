"""The Deployment controller on a real store with a fake target: one pass per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.engine.deployer import QueueDeployment
from conveyor.promotion.model import Promotion
from conveyor.rollout.deployment import Deployment
from conveyor.rollout.status import (
    AWAIT_HEALTH,
    FAILED,
    STOP_PREVIOUS,
    Condition,
    DeploymentStatus,
    InstanceStatus,
)
from conveyor.store import promotions as promotion_store
from conveyor.store.db import SqliteDatabase
from conveyor.targets.base import Instance
from conveyor.targets.fake import FakeTarget

from .deployment_world import DELIVERY, DEV, T0, World, ids


@pytest.fixture
def world(tmp_path: Path, migrated_store: Path) -> Iterator[World]:
    path = tmp_path / "conveyor.db"
    shutil.copyfile(migrated_store, path)
    db = SqliteDatabase(path)
    try:
        yield World(db)
    finally:
        db.close()


def promotion_of(world: World, deployment: Deployment) -> Promotion:
    return promotion_store.get_promotion(world.db, promotion_id=deployment.promotion_id)


def new(instance_id: str, state: str = "starting", port: int | None = 20_100) -> InstanceStatus:
    return InstanceStatus(instance_id, "2.0.0", state, T0, port=port, requested_at=T0)  # type: ignore[arg-type]


def serving(instance: Instance) -> InstanceStatus:
    return InstanceStatus(instance.id, instance.version, "serving", T0, port=instance.port)


def v1_serving_in_dev(world: World) -> list[Instance]:
    """Two instances of 1.0.0 in dev, as an earlier Deployment (numbered 0 here) left them."""
    return [world.target.run(f"hello.dev.0.{n}", DEV, "1.0.0") for n in (1, 2)]


def test_the_first_pass_starts_every_new_instance_and_records_that_the_deployment_started(
    world: World,
) -> None:
    old = v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    controller = world.controller(interval_s=0.5)

    (passed,) = controller.run_once()

    assert (passed.id, passed.phase, passed.step) == (queued.id, "progressing", "await-health")
    assert world.target.started == [f"hello.dev.{queued.id}.1", f"hello.dev.{queued.id}.2"]
    assert [p.id for p in passed.status.previous] == ids(old)
    assert (passed.claimed_by, passed.due_at) == ("controller-a", T0 + 0.5)
    assert world.kinds(passed.subject) == ["deployment.queued", "deployment.started"]
    assert world.get(passed) == passed


def test_a_pass_that_finds_every_new_instance_healthy_saves_before_stopping_the_previous_ones(
    world: World,
) -> None:
    old = v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    fresh = [world.target.run(f"hello.dev.{queued.id}.{n}", DEV, "2.0.0") for n in (1, 2)]
    status = DeploymentStatus(
        queued.id,
        "2.0.0",
        step=AWAIT_HEALTH,
        new=tuple(new(i.id, port=i.port) for i in fresh),
        previous=tuple(serving(i) for i in old),
    )
    world.put(queued, status)
    seen_when_stopping: list[str] = []
    stop = world.target.stop

    def spying_stop(instance: Instance) -> None:
        seen_when_stopping.append(world.get(queued).step)
        stop(instance)

    world.target.stop = spying_stop  # type: ignore[method-assign]

    (passed,) = world.controller().run_once()

    assert seen_when_stopping == ["stop-previous", "stop-previous"]
    assert world.target.stopped == ids(old)
    assert ids(world.target.list_instances(DEV)) == ids(fresh)
    assert (passed.step, [p.state for p in passed.status.previous]) == (
        "stop-previous",
        ["stopping", "stopping"],
    )


def test_a_deployment_whose_previous_instances_are_gone_succeeds_and_records_the_release(
    world: World,
) -> None:
    queued = world.queued("2.0.0")
    fresh = [world.target.run(f"hello.dev.{queued.id}.{n}", DEV, "2.0.0") for n in (1, 2)]
    previous = InstanceStatus("hello.dev.0.1", "1.0.0", "stopping", T0, port=20_000)
    healthy = tuple(new(i.id, "healthy", i.port) for i in fresh)
    world.put(
        queued,
        DeploymentStatus(queued.id, "2.0.0", STOP_PREVIOUS, new=healthy, previous=(previous,)),
    )
    world.clock.advance(5)

    (passed,) = world.controller().run_once()

    assert (passed.phase, passed.active, passed.claimed_by) == ("succeeded", False, None)
    state = promotion_store.environment_states(world.db, project="shop", service="hello")
    assert [(s.environment, s.version, s.healthy_since) for s in state] == [
        ("dev", "2.0.0", T0 + 5)
    ]
    assert promotion_of(world, passed).state == "deployed"
    assert world.kinds(passed.subject)[-2:] == ["instance.stopped", "deployment.succeeded"]
    assert world.kinds("release/hello/2.0.0")[-2:] == ["environment.deployed", "promotion.deployed"]


def test_a_new_instance_unhealthy_past_its_deadline_fails_and_only_the_new_ones_are_stopped(
    world: World,
) -> None:
    old = v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    fresh = [world.target.run(f"hello.dev.{queued.id}.{n}", DEV, "2.0.0") for n in (1, 2)]
    world.unhealthy = {fresh[0].id}
    status = DeploymentStatus(
        queued.id,
        "2.0.0",
        step=AWAIT_HEALTH,
        new=tuple(new(i.id, port=i.port) for i in fresh),
        previous=tuple(serving(i) for i in old),
    )
    world.put(queued, status)
    world.clock.advance(31)

    (passed,) = world.controller().run_once()

    assert passed.phase == "failed"
    assert "was not healthy within 30s: /healthz answered HTTP 503" in passed.message
    assert sorted(world.target.stopped) == ids(fresh)
    assert ids(world.target.list_instances(DEV)) == ids(old)
    assert world.kinds(passed.subject)[-1] == "deployment.failed"
    assert promotion_of(world, passed).state == "approved", "recorded once the rollback ends"


def test_a_failed_deployment_whose_new_instances_are_gone_settles_and_fails_its_promotion(
    world: World,
) -> None:
    old = v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    failed = Condition(FAILED, "HealthTimeout", "instance hello.dev.2.1 was not healthy", T0)
    stopping = tuple(new(f"hello.dev.{queued.id}.{n}", "stopping") for n in (1, 2))
    status = DeploymentStatus(
        queued.id,
        "2.0.0",
        step=AWAIT_HEALTH,
        new=stopping,
        previous=tuple(serving(i) for i in old),
        conditions=(failed,),
    )
    world.put(queued, status)

    (passed,) = world.controller().run_once()

    assert (passed.phase, passed.active) == ("failed", False)
    assert promotion_of(world, passed).state == "failed"
    assert promotion_store.environment_states(world.db, project="shop", service="hello") == []
    assert ids(world.target.list_instances(DEV)) == ids(old)
    assert world.kinds(passed.subject)[-1] == "deployment.rolled_back"
    reason = world.data(promotion_of(world, passed).subject, "promotion.failed")["reason"]
    assert reason == "instance hello.dev.2.1 was not healthy"


def test_a_later_deployment_into_the_same_environment_waits_for_the_earlier_one(
    world: World,
) -> None:
    first = world.queued("1.0.0")
    later = world.queued("2.0.0")

    passed = world.controller().run_once()

    assert [d.id for d in passed] == [first.id]
    assert world.get(later) == later
    assert all(f".{later.id}." not in started for started in world.target.started)


def test_deployments_into_different_environments_progress_in_the_same_pass(
    world: World,
) -> None:
    dev = world.queued("1.0.0", "dev")
    staging = world.queued("1.0.0-rc", "staging")

    passed = world.controller().run_once()

    assert sorted(d.id for d in passed) == [dev.id, staging.id]


def test_a_controller_taking_over_from_a_killed_one_adopts_its_instances(world: World) -> None:
    v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    killed = world.controller(owner="killed")
    killed.run_once()
    started_before = list(world.target.started)
    world.clock.advance(1)
    successor = world.controller(owner="successor", is_abandoned=lambda owner: owner == "killed")

    (passed,) = successor.run_once()

    assert passed.claimed_by == "successor"
    assert world.target.started == started_before, "no instance is started twice"
    assert [i.state for i in passed.status.new] == ["healthy", "healthy"]
    assert passed.id == queued.id


def test_a_controller_waits_for_the_lease_of_a_holder_it_cannot_know_is_gone(
    world: World,
) -> None:
    v1_serving_in_dev(world)
    world.queued("2.0.0")
    world.controller(owner="elsewhere", lease_s=30).run_once()
    other = world.controller(owner="other", is_abandoned=lambda _owner: False)

    during = other.run_once()
    world.clock.advance(31)
    after = other.run_once()

    assert during == []
    assert [d.claimed_by for d in after] == ["other"]


def test_a_promotion_rejected_before_its_deployment_starts_starts_nothing(world: World) -> None:
    queued = world.queued("2.0.0")
    reject(world, queued)

    (passed,) = world.controller().run_once()

    assert (passed.phase, passed.active) == ("rolled_back", False)
    assert world.target.started == []
    assert promotion_of(world, passed).state == "rejected"
    assert "deployment.aborted" in world.kinds(passed.subject)


def reject(world: World, deployment: Deployment) -> None:
    with world.db.write() as tx:
        promotion_store.set_state(
            tx, promotion_id=deployment.promotion_id, state="rejected", now=T0
        )


def test_a_release_made_before_its_environment_existed_fails_without_starting_anything(
    world: World,
) -> None:
    only_dev = replace(DELIVERY, environments=DELIVERY.environments[:1])
    promotion = world.approved(world.release("2.0.0", only_dev), "staging")

    (passed,) = world.controller().run_once()

    assert (passed.phase, passed.active, world.target.started) == ("failed", False, [])
    assert "released before environment 'staging' was configured" in passed.message
    assert promotion_of(world, passed).state == "failed"
    assert passed.promotion_id == promotion.id


def test_an_approved_promotion_handed_over_twice_is_queued_once(world: World) -> None:
    release = world.release("2.0.0")
    promotion = world.approved(release)

    QueueDeployment(world.db, world.clock).start(promotion, release)

    listed = world.controller().run_once()
    assert len(listed) == 1
    assert world.kinds(listed[0].subject).count("deployment.queued") == 1


def test_driving_a_deployment_until_it_settles_ends_with_only_the_new_release_running(
    world: World,
) -> None:
    v1_serving_in_dev(world)
    queued = world.queued("2.0.0")
    controller = world.controller(sleep=world.clock.advance)

    done = controller.run_until_settled(queued.id, timeout_s=60)

    assert (done.phase, done.active, done.claimed_by) == ("succeeded", False, None)
    assert [i.version for i in world.target.list_instances(DEV)] == ["2.0.0", "2.0.0"]


def test_an_instance_the_target_cannot_start_fails_the_deployment_with_the_targets_reason(
    world: World,
) -> None:
    world.target = FakeTarget(unstartable={"2.0.0"}, clock=world.clock)
    queued = world.queued("2.0.0")
    controller = world.controller()
    controller.run_once()
    world.clock.advance(1)

    (passed,) = controller.run_once()

    assert (passed.id, passed.phase, passed.active) == (queued.id, "failed", False)
    assert "cannot start instance hello.dev.1.1: 2.0.0 is unstartable" in passed.message
    assert promotion_of(world, passed).state == "failed"

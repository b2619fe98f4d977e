"""Rollout actions performed against a Target, and what the Target shows afterwards.

`perform` is the side-effecting half of a controller pass: it takes the
actions of a `Decision` and makes them true, idempotently, checking the
Target rather than trusting memory: an instance that already runs is not
started again, one that no longer runs is not stopped. It then returns a
fresh observation for the next `decide`. So a pass repeated after a crash,
or an action performed twice, has the effect of one.

An instance that cannot be started (its artifacts cannot be prepared, its
command cannot be launched) is reported as `exited` with the reason: that is
the Deployment's failure, not a fault of the controller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from conveyor.core.values import frozen
from conveyor.release.model import Release
from conveyor.rollout.model import (
    Action,
    CheckHealth,
    Observed,
    ObservedInstance,
    RollingSpec,
    StartInstance,
    StopInstance,
)
from conveyor.spec.delivery import Delivery
from conveyor.targets.base import (
    HealthCheck,
    Instance,
    InstanceId,
    InstanceSpec,
    Placement,
    Target,
    TargetError,
)


@frozen
class Workload:
    """What the instances of a service in one environment run, and how they are checked."""

    placement: Placement
    command: str
    health: HealthCheck
    releases: Mapping[str, Release]

    @classmethod
    def of(cls, delivery: Delivery, environment: str, releases: Iterable[Release]) -> Workload:
        """The workload of `delivery` in `environment`, able to start any of `releases`."""
        return cls(
            placement=Placement(delivery.service, delivery.environment(environment).name),
            command=delivery.run,
            health=HealthCheck(delivery.health.http, delivery.health.timeout_s),
            releases={release.version: release for release in releases},
        )


def rolling_spec(
    delivery: Delivery, environment: str, *, deployment: int, version: str
) -> RollingSpec:
    """The rolling spec of Deployment `deployment` of `version` into `environment`."""
    env = delivery.environment(environment)
    return RollingSpec(
        deployment=deployment,
        service=delivery.service,
        environment=env.name,
        version=version,
        instances=env.instances,
        within_s=delivery.health.within_s,
    )


def perform(actions: Iterable[Action], target: Target, workload: Workload) -> Observed:
    """Make `actions` true on `target`, in order, and observe the result."""
    actions = tuple(actions)
    live = {instance.id: instance for instance in target.list_instances(workload.placement)}
    started: dict[str, Instance] = {}
    failed: list[ObservedInstance] = []
    for action in actions:
        if isinstance(action, StartInstance) and action.instance not in live:
            try:
                instance = _start(action, target, workload)
            except TargetError as err:
                failed.append(
                    ObservedInstance(action.instance, action.version, None, "exited", str(err))
                )
                continue
            live[instance.id] = started[instance.id] = instance
        elif isinstance(action, StopInstance) and action.instance in live:
            target.stop(live.pop(InstanceId(action.instance)))
    checks = {action.instance for action in actions if isinstance(action, CheckHealth)}
    observed = observe(target, workload, check=checks)
    died = [
        _exited(target, instance)
        for instance in started.values()
        if observed.get(instance.id) is None
    ]
    return Observed((*observed.instances, *died, *failed))


def observe(target: Target, workload: Workload, *, check: Collection[str] = ()) -> Observed:
    """The instances running in the workload's placement, with the health of those in `check`."""
    seen: list[ObservedInstance] = []
    for instance in target.list_instances(workload.placement):
        if instance.id in check:
            result = target.health(instance)
            seen.append(
                ObservedInstance(
                    instance.id, instance.version, instance.port, result.state, result.detail
                )
            )
        else:
            seen.append(ObservedInstance(instance.id, instance.version, instance.port))
    return Observed(tuple(seen))


def _start(action: StartInstance, target: Target, workload: Workload) -> Instance:
    release = workload.releases.get(action.version)
    if release is None:
        raise ValueError(f"release {action.version} is not one the workload can start")
    instance_id = InstanceId(action.instance)
    directory = target.prepare(release, instance_id)
    spec = InstanceSpec(
        directory, workload.placement, action.version, workload.command, workload.health
    )
    return target.start(spec)


def _exited(target: Target, instance: Instance) -> ObservedInstance:
    """An instance started in this pass that no longer runs, with why."""
    result = target.health(instance)
    return ObservedInstance(instance.id, instance.version, instance.port, "exited", result.detail)

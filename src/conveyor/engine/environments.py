"""What runs where: each environment's release, its Deployment, and its live instances.

`conveyor status` reads this. The release and the Deployments come from the
store; the instances and their health from the Target, asked now (a health
check each), so the answer holds even when no controller runs.
"""

from __future__ import annotations

from conveyor.core.errors import UsageError
from conveyor.core.values import frozen
from conveyor.promotion.model import EnvironmentState
from conveyor.rollout.deployment import Deployment
from conveyor.spec.pipeline import Pipeline
from conveyor.store import deployments as deployment_store
from conveyor.store import promotions as promotion_store
from conveyor.store.db import Database
from conveyor.targets.base import Placement, Target


@frozen
class InstanceView:
    """One running instance: what it runs, where it answers, and its health now."""

    id: str
    version: str
    address: str
    health: str
    detail: str = ""


@frozen
class EnvironmentView:
    """One environment: the release deployed there, its current (or last) Deployment,
    how many Deployments wait behind that one, and the instances that run now."""

    name: str
    deployed: EnvironmentState | None
    deployment: Deployment | None
    queued: int
    instances: tuple[InstanceView, ...]


def environment_views(
    db: Database, target: Target, *, project: str, pipeline: Pipeline
) -> list[EnvironmentView]:
    """Every environment of the pipeline's `delivery:` section, in promotion order."""
    delivery = pipeline.delivery
    if delivery is None:
        raise UsageError(f"{pipeline.path} has no `delivery:` section, so no environments")
    states = {
        state.environment: state
        for state in promotion_store.environment_states(
            db, project=project, service=delivery.service
        )
    }
    return [
        EnvironmentView(
            name,
            states.get(name),
            *_deployments(db, project, Placement(delivery.service, name)),
            _instances(target, Placement(delivery.service, name)),
        )
        for name in delivery.names
    ]


def _deployments(db: Database, project: str, placement: Placement) -> tuple[Deployment | None, int]:
    """The environment's current (or last) Deployment, and how many wait behind it."""
    where = {"project": project, "service": placement.service, "environment": placement.environment}
    current = deployment_store.current(db, **where)
    active = deployment_store.list_deployments(db, **where, active=True, limit=1000)
    return current, len(active) - 1 if current is not None and current.active else len(active)


def _instances(target: Target, placement: Placement) -> tuple[InstanceView, ...]:
    instances = []
    for instance in target.list_instances(placement):
        health = target.health(instance)
        instances.append(
            InstanceView(
                instance.id,
                instance.version,
                f"http://{instance.address}",
                health.state,
                health.detail,
            )
        )
    return tuple(instances)

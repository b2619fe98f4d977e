"""From an approved Promotion to a queued Deployment, and from a Deployment to its rollout.

`QueueDeployment` is the Deployer the Promotion service hands approved
promotions to: it queues one Deployment per Promotion (asking twice queues
it once). Controllers carry it out (`engine/deployments.py`).

A Deployment is planned from its Release's recorded `delivery:` config, not
from today's `conveyor.yaml`: the command that starts an instance, its health
check and the environment's instance count are those the Release was made
with, so what runs is what was built and reviewed.
"""

from __future__ import annotations

import json

from conveyor.core.clock import Clock
from conveyor.core.values import frozen
from conveyor.engine import deployment_events
from conveyor.promotion.model import Promotion
from conveyor.release.model import Release
from conveyor.rollout.deployment import Deployment, NewDeployment
from conveyor.rollout.model import RollingSpec
from conveyor.spec.delivery import Delivery
from conveyor.spec.serialize_delivery import delivery_from_config
from conveyor.store import deployments as deployment_store
from conveyor.store import events as event_log
from conveyor.store.db import Database
from conveyor.targets.driver import Workload, rolling_spec


@frozen
class Plan:
    """How one Deployment rolls out: the rolling spec, and what its instances run."""

    spec: RollingSpec
    workload: Workload


class QueueDeployment:
    """Carries out an approved Promotion by queueing its Deployment (once)."""

    def __init__(self, db: Database, clock: Clock, actor: str = "conveyor") -> None:
        self.db = db
        self.clock = clock
        self.actor = actor

    def start(self, promotion: Promotion, release: Release) -> None:
        new = NewDeployment(
            project=promotion.project,
            service=promotion.service,
            environment=promotion.environment,
            promotion_id=int(promotion.id),
            release_id=int(release.id),
            version=release.version,
            created_at=self.clock.now(),
        )
        with self.db.write() as tx:
            created = deployment_store.create(tx, new=new)
            if created is not None:
                event_log.append(tx, [deployment_events.queued(created, self.actor)])


def plan(deployment: Deployment, release: Release) -> Plan | str:
    """The rollout of `deployment` from its Release's recorded config, or why there is none."""
    try:
        delivery: Delivery = delivery_from_config(json.loads(release.config))
    except ValueError as err:
        return f"the delivery config recorded with {release.version} cannot be read: {err}"
    environment = deployment.environment
    if environment not in delivery.names:
        return (
            f"{release.service} {release.version} was released before environment "
            f"'{environment}' was configured (its config has {', '.join(delivery.names)}); "
            "release again and promote the new release"
        )
    spec = rolling_spec(
        delivery, environment, deployment=int(deployment.id), version=release.version
    )
    return Plan(spec, Workload.of(delivery, environment, (release,)))

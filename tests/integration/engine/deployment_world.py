"""A store with releases of `hello` and approved promotions, a fake target and a frozen clock.

Tests build a Deployment where they need it (queued, or saved at some step
with instances running on the fake target), run exactly one controller pass,
and read what changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import FrozenClock
from conveyor.core.digest import canonical_json
from conveyor.core.errors import Location
from conveyor.engine.deployer import QueueDeployment
from conveyor.engine.deployments import DeploymentController
from conveyor.promotion.model import Basis, GateReport, GateResult, NewPromotion, Promotion
from conveyor.release.model import NewRelease, Release, ReleaseArtifact
from conveyor.rollout.deployment import Deployment
from conveyor.rollout.status import DeploymentStatus
from conveyor.spec.delivery import Delivery, Environment, Health, Requirements
from conveyor.spec.serialize_delivery import delivery_config
from conveyor.store import deployments as deployment_store
from conveyor.store import events as event_log
from conveyor.store import promotions as promotion_store
from conveyor.store import releases as release_store
from conveyor.store import runs as run_store
from conveyor.store.db import Database
from conveyor.targets.base import HealthResult, Instance, Placement
from conveyor.targets.fake import FakeTarget

T0 = 1_767_225_600.0
HERE = Location("conveyor.yaml", 1, 1)
DEV = Placement("hello", "dev")
DELIVERY = Delivery(
    service="hello",
    artifacts=("dist/*.py",),
    run="python dist/server.py",
    environments=(
        Environment("dev", HERE, instances=2),
        Environment("staging", HERE, requires=Requirements(after="dev")),
    ),
    location=HERE,
    health=Health("/healthz", 1.0, 30.0),
)
APPROVED = GateReport(T0, (GateResult("after", "passed", "no earlier environment is required"),))


@dataclass
class World:
    """One project's store and a fake target whose instances answer as `unhealthy` says."""

    db: Database
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(T0))
    unhealthy: set[str] = field(default_factory=set)
    target: FakeTarget = field(init=False)
    run_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.target = FakeTarget(self._health, clock=self.clock)
        new_run = run_store.NewRun(
            project="shop",
            pipeline_path="conveyor.yaml",
            spec_digest="sha256:" + "ab" * 32,
            workspace="/srv/shop",
            branch="main",
            commit_sha=None,
            event="manual",
            actor="dev@example.com",
            targets=(),
            options={},
            host="build-1",
            pid=1,
            created_at=T0,
        )
        self.run_id, _ = run_store.create_run(self.db, run=new_run, jobs=())

    def _health(self, instance: Instance, _check: int) -> HealthResult:
        if instance.id in self.unhealthy:
            return HealthResult("unhealthy", "/healthz answered HTTP 503")
        return HealthResult("healthy")

    def release(self, version: str, delivery: Delivery = DELIVERY) -> Release:
        new = NewRelease(
            project="shop",
            service="hello",
            version=version,
            commit_sha=None,
            run_id=self.run_id,  # type: ignore[arg-type]
            config_digest="sha256:" + "cc" * 32,
            config=canonical_json(delivery_config(delivery)).decode(),
            artifacts=(ReleaseArtifact("dist/server.py", "sha256:" + "11" * 32, 10),),
            created_at=T0,
            created_by="dev@example.com",
        )
        event = NewEvent("release.created", f"release/hello/{version}", "dev", T0)
        return release_store.create_release(self.db, release=new, event=event)[0]

    def approved(self, release: Release, environment: str = "dev") -> Promotion:
        """An approved promotion of `release`, handed to the product's Deployer."""
        new = NewPromotion(
            project="shop",
            service="hello",
            version=release.version,
            release_id=release.id,
            release_digest="sha256:" + "d1" * 32,
            environment=environment,
            requested_by="dev@example.com",
            requested_at=self.clock.now(),
            basis=Basis(Requirements()),
        )
        with self.db.write() as tx:
            promotion_id = promotion_store.insert(tx, new=new, report=APPROVED)
        promotion = promotion_store.get_promotion(self.db, promotion_id=promotion_id)
        QueueDeployment(self.db, self.clock).start(promotion, release)
        return promotion

    def queued(self, version: str, environment: str = "dev") -> Deployment:
        """A release of `version`, promoted and approved into `environment`: its Deployment."""
        promotion = self.approved(self.release(version), environment)
        found = deployment_store.for_promotion(self.db, promotion.id)
        assert found is not None
        return found

    def put(self, deployment: Deployment, status: DeploymentStatus) -> Deployment:
        """Save `status` as if earlier passes had made it (unclaimed, due now)."""
        current = deployment_store.get(self.db, deployment.id)
        with self.db.write() as tx:
            saved = deployment_store.save(
                tx,
                deployment=current,
                status=replace(status, deployment=deployment.id),
                now=self.clock.now(),
                due_at=self.clock.now(),
                owner=None,
                lease_until=None,
                events=(),
            )
        assert saved is not None
        return saved

    def controller(self, **kwargs: object) -> DeploymentController:
        return DeploymentController(
            self.db,
            self.target,
            self.clock,
            project="shop",
            owner=str(kwargs.pop("owner", "controller-a")),
            **kwargs,  # type: ignore[arg-type]
        )

    def get(self, deployment: Deployment) -> Deployment:
        return deployment_store.get(self.db, deployment.id)

    def kinds(self, subject: str) -> list[str]:
        """The kinds of the Events of `subject` and below it, in order."""
        return [event.kind for event in event_log.for_subject(self.db, subject)]

    def data(self, subject: str, kind: str) -> dict[str, object]:
        """The data of the last Event of `kind` under `subject`."""
        found = [e for e in event_log.for_subject(self.db, subject) if e.kind == kind]
        assert found, f"no {kind} under {subject}"
        return json.loads(json.dumps(dict(found[-1].data)))  # type: ignore[no-any-return]


def ids(instances: Iterable[Instance]) -> list[str]:
    return sorted(instance.id for instance in instances)

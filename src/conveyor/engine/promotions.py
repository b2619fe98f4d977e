"""The Promotion service: what `conveyor promote`, `approve`, `reject`, `why` and `promotions` do.

A Promotion asks to move one Release into one Environment. Its Gates are
evaluated when it is requested and again whenever what they read may have
changed (an approval arrives, a window opens); a promotion whose gates all
pass is `approved` and handed to the Deployer. Segregation of duties is
enforced here, not in an interface: every refusal is recorded as an Event
and raised as `ApprovalRefused` with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import NotFound, PolicyViolation, UsageError
from conveyor.engine import promotion_events as recorded
from conveyor.engine import waiver_events
from conveyor.engine.promotion_facts import ArtifactCheck, gather, required_rules
from conveyor.engine.releases import ReleaseService
from conveyor.engine.workspace import Workspace
from conveyor.policy.waiver import Waiver
from conveyor.promotion.duties import allowed_roles, deciding_role, people_of, refusal
from conveyor.promotion.gates import evaluate_gates
from conveyor.promotion.model import (
    OPEN_STATES,
    Actor,
    Approval,
    Basis,
    GateReport,
    NewPromotion,
    Promotion,
    Verdict,
)
from conveyor.release.model import Release, identity_digest
from conveyor.spec.delivery import Delivery, Environment
from conveyor.spec.pipeline import Pipeline
from conveyor.spec.suggest import did_you_mean, one_of
from conveyor.store import events as event_log
from conveyor.store import promotions as promotion_store
from conveyor.store import releases as release_store
from conveyor.store import waivers as waiver_store
from conveyor.store.db import Database, Transaction


class ApprovalRefused(PolicyViolation):
    """An approval or rejection that segregation of duties or the promotion's state forbids."""


class Deployer(Protocol):
    """What carries out an approved Promotion (a Deployment on the environment's Target)."""

    def start(self, promotion: Promotion, release: Release) -> None: ...


class PromotionObserver(Protocol):
    """Told of each Promotion once it is recorded, with the Environment it goes into.

    Called after the request is committed and before an approved one is handed
    to the Deployer (a change record is filed then); what it does cannot undo
    the request.
    """

    def recorded(self, promotion: Promotion, environment: Environment) -> None: ...


class PromotionService:
    """Requests, re-evaluates and decides on the Promotions of one workspace's project."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        db: Database,
        releases: ReleaseService,
        artifacts: ArtifactCheck,
        clock: Clock | None = None,
        deployer: Deployer | None = None,
        observers: Sequence[PromotionObserver] = (),
    ) -> None:
        self.workspace = workspace
        self.db = db
        self.releases = releases
        self.artifacts = artifacts
        self.clock = clock or SystemClock()
        self.deployer = deployer
        self.observers = tuple(observers)

    # --- requesting ------------------------------------------------------------

    def promote(
        self, pipeline: Pipeline, service: str, version: str, environment: str, requester: Actor
    ) -> Promotion:
        """Request a Release into `environment`; an older open request there is superseded."""
        delivery = _delivery(pipeline, service, environment)
        release = self.releases.get_release(version, service=service)
        requires = delivery.environment(environment).requires
        basis = Basis(requires, required_rules(self.workspace.root, requires), requester.roles)
        now = self.clock.now()
        new = NewPromotion(
            project=self.workspace.project,
            service=release.service,
            version=release.version,
            release_id=release.id,
            release_digest=identity_digest(release),
            environment=environment,
            requested_by=requester.name,
            requested_at=now,
            basis=basis,
        )
        report = self._evaluate(new, release, (), now)
        used = self._used(report)
        with self.db.write() as tx:
            promotion_store.lock(tx)
            older = promotion_store.open_into(
                tx, project=new.project, service=new.service, environment=environment
            )
            promotion_id = promotion_store.insert(tx, new=new, report=report)
            events = [recorded.requested(new, promotion_id)]
            for stale in older:
                promotion_store.set_state(tx, promotion_id=stale.id, state="superseded", now=now)
                events.append(recorded.superseded(stale, promotion_id, requester.name, now))
            events.append(recorded.decided(new, promotion_id, report, requester.name))
            events.extend(_uses(used, new, promotion_id, report, requester.name))
            event_log.append(tx, events)
            promotion = promotion_store.get(tx, promotion_id)
        for observer in self.observers:
            observer.recorded(promotion, delivery.environment(environment))
        return self._hand_over(promotion, release)

    # --- re-evaluating ---------------------------------------------------------

    def reevaluate(self, promotion_id: int, *, actor: str = "conveyor") -> Promotion:
        """Run the gates of an open promotion again; record the report when it changed."""
        promotion = self.get(promotion_id)
        release = self._release(promotion)
        if not promotion.open:
            return self._hand_over(promotion, release)
        now = self.clock.now()
        report = self._evaluate(promotion, release, promotion.approvals, now)
        if report.same_as(promotion.report):
            return promotion
        used = self._used(report)
        with self.db.write() as tx:
            saved = promotion_store.set_state(
                tx,
                promotion_id=promotion.id,
                state=report.state,
                now=now,
                report=report,
                revision=promotion.revision,
            )
            if saved:  # else another process decided meanwhile; its decision stands
                event_log.append(
                    tx,
                    [
                        recorded.decided(promotion, promotion.id, report, actor, promotion),
                        *_uses(used, promotion, promotion.id, report, actor),
                    ],
                )
            current = promotion_store.get(tx, promotion.id)
        return self._hand_over(current, release)

    def reevaluate_open(self) -> list[Promotion]:
        """One pass over the project's open and approved promotions (a loop's `run_once`)."""
        found = promotion_store.list_promotions(
            self.db,
            project=self.workspace.project,
            states=(*sorted(OPEN_STATES), "approved"),
            limit=1000,
        )
        return [self.reevaluate(promotion.id) for promotion in reversed(found)]

    def _evaluate(
        self, promotion: NewPromotion, release: Release, approvals: Sequence[Approval], now: float
    ) -> GateReport:
        facts = gather(self.db, promotion, release, approvals=approvals, artifacts=self.artifacts)
        return evaluate_gates(facts, promotion.basis.requirements, now)

    def _used(self, report: GateReport) -> list[Waiver]:
        """The Waivers `report` relied on (read before the write that records it)."""
        ids = waiver_events.used_ids(report)
        return waiver_store.by_ids(self.db, ids) if ids else []

    def _hand_over(self, promotion: Promotion, release: Release) -> Promotion:
        """Give an approved promotion to the Deployer; the promotion as it is afterwards."""
        if promotion.state != "approved" or self.deployer is None:
            return promotion
        self.deployer.start(promotion, release)
        return promotion_store.get_promotion(self.db, promotion_id=promotion.id)

    # --- deciding --------------------------------------------------------------

    def approve(self, promotion_id: int, actor: Actor, *, comment: str = "") -> Promotion:
        """Record `actor`'s approval and re-evaluate; ApprovalRefused with the reason if refused."""
        self._decide(promotion_id, actor, "approve", comment)
        return self.reevaluate(promotion_id, actor=actor.name)

    def reject(self, promotion_id: int, actor: Actor, *, comment: str = "") -> Promotion:
        """Record `actor`'s rejection: the promotion is `rejected` and never approved."""
        self._decide(promotion_id, actor, "reject", comment)
        return self.get(promotion_id)

    def _decide(self, promotion_id: int, actor: Actor, verdict: Verdict, comment: str) -> None:
        promotion = self.get(promotion_id)
        release = self._release(promotion)
        authors = people_of(release.commits)
        digest = identity_digest(release)
        now = self.clock.now()
        with self.db.write() as tx:
            promotion_store.lock(tx)
            current = promotion_store.get(tx, promotion_id, for_update=True)
            reason = refusal(current, actor, verdict, authors=authors, release_digest=digest)
            if reason is None:
                reason = _record(tx, current, actor, verdict=verdict, comment=comment, now=now)
            if reason is not None:
                event_log.append(tx, [recorded.refused(current, actor, verdict, reason, now)])
        if reason is not None:
            raise ApprovalRefused(reason)

    # --- reading ---------------------------------------------------------------

    def get(self, promotion_id: int) -> Promotion:
        """One Promotion of this project; NotFound for another project's, as for none at all."""
        promotion = promotion_store.get_promotion(self.db, promotion_id=promotion_id)
        if promotion.project != self.workspace.project:
            raise NotFound(
                f"there is no promotion {promotion_id} in project {self.workspace.project}; "
                "`conveyor promotions` lists them"
            )
        return promotion

    def why(self, service: str, version: str, environment: str) -> Promotion:
        """The latest Promotion of a Release into `environment`, with its last Gate report."""
        release = self.releases.get_release(version, service=service)
        found = promotion_store.latest_promotion(
            self.db,
            project=self.workspace.project,
            service=release.service,
            version=release.version,
            environment=environment,
        )
        if found is None:
            promoted = {
                p.environment
                for p in self.list_promotions(service=release.service, limit=500)
                if p.version == release.version
            }
            hint = did_you_mean(environment, promoted) or (
                f"`conveyor promote {release.service} {release.version} --to {environment}`"
            )
            raise NotFound(
                f"{release.service} {release.version} was never promoted to {environment}; {hint}"
            )
        return found

    def list_promotions(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Promotion]:
        """The project's Promotions, newest first."""
        return promotion_store.list_promotions(
            self.db,
            project=self.workspace.project,
            service=service,
            environment=environment,
            limit=limit,
        )

    def _release(self, promotion: Promotion) -> Release:
        return release_store.get_release(
            self.db, project=promotion.project, service=promotion.service, version=promotion.version
        )


class RecordAsDeployed:
    """A Deployer without a Target: an approved promotion is recorded as deployed, and
    healthy, the moment it is handed over.

    For exercising promotion alone (tests of gates that read what runs
    where); the product queues a Deployment instead (`engine/deployer.py`),
    whose controller records the outcome once instances are healthy.
    """

    def __init__(self, db: Database, clock: Clock, actor: str) -> None:
        self.db = db
        self.clock = clock
        self.actor = actor

    def start(self, promotion: Promotion, release: Release) -> None:
        now = self.clock.now()
        promotion_store.record_deployed(
            self.db,
            project=promotion.project,
            service=promotion.service,
            environment=promotion.environment,
            release_id=release.id,
            version=release.version,
            deployed_at=now,
            healthy_since=now,
            promotion_id=promotion.id,
            events=[
                recorded.deployed_event(promotion, self.actor, now, healthy_since=now),
                recorded.state_event(promotion, "deployed", self.actor, now, {"stand_in": True}),
            ],
        )


def _record(
    tx: Transaction,
    promotion: Promotion,
    actor: Actor,
    *,
    verdict: Verdict,
    comment: str,
    now: float,
) -> str | None:
    """Record the decision and its Events; the refusal when one was recorded meanwhile."""
    role = deciding_role(actor.roles, allowed_roles(promotion.basis.requirements))
    approval = promotion_store.insert_approval(
        tx,
        promotion_id=promotion.id,
        release_digest=promotion.release_digest,
        actor=actor.identity,
        role=role or "requester",
        verdict=verdict,
        comment=comment,
        at=now,
    )
    if approval is None:
        return f"{actor.name} already decided on promotion {promotion.id}; each person counts once"
    events = [recorded.decision_event(promotion, approval, actor.name)]
    if verdict == "reject":
        promotion_store.set_state(tx, promotion_id=promotion.id, state="rejected", now=now)
        events.append(
            recorded.state_event(promotion, "rejected", actor.name, now, {"by": actor.name})
        )
    event_log.append(tx, events)
    return None


def _uses(
    used: Sequence[Waiver],
    promotion: NewPromotion,
    promotion_id: int,
    report: GateReport,
    actor: str,
) -> list[NewEvent]:
    """A `waiver.used` Event for each Waiver the recorded decision `report` relied on."""
    return waiver_events.uses(
        used,
        service=promotion.service,
        version=promotion.version,
        promotion_id=promotion_id,
        report=report,
        actor=actor,
    )


def _delivery(pipeline: Pipeline, service: str, environment: str) -> Delivery:
    """The delivery section that has `environment`; bad input naming what is wrong otherwise."""
    delivery = pipeline.delivery
    if delivery is None:
        raise UsageError(
            f"{pipeline.path} has no `delivery:` section, so no environments to promote into"
        )
    if delivery.service != service:
        raise UsageError(
            f"{pipeline.path} delivers '{delivery.service}', not '{service}'; "
            "promote from the workspace of that service, or with -f naming its conveyor.yaml"
        )
    if environment not in delivery.names:
        hint = did_you_mean(environment, delivery.names) or (
            f"the environments are {one_of(delivery.names)}"
        )
        raise UsageError(f"{pipeline.path} has no environment '{environment}'; {hint}")
    return delivery

"""The Deployment controller: carries queued Deployments out on a Target, one pass at a time.

A pass over one Deployment:

1. claim it: the oldest unsettled Deployment of its environment, when due,
   leased to this controller (a holder on this host whose process is gone
   is taken over at once, any other when its lease ends);
2. observe the Target (the instances of the environment, with the health of
   the new ones still awaited), or take the observation the previous pass
   made right after acting, when nobody else wrote the Deployment since;
3. decide with the rollout's pure `decide(spec, status, observed, now)`;
4. act and save: the actions go through the driver (idempotent: an instance
   that runs is not started again, one that is gone is not stopped) and the
   new status is saved with its Events over the revision that was read. A
   decision that stops instances is saved *before* they are stopped, so the
   recorded status never counts a stopped instance as serving; one that
   starts instances is saved after, so a crash in between leaves the
   Deployment where it was and the next pass adopts what was started;
5. when the status settles, the same transaction records the outcome: on
   success the Release is deployed in the environment (what the `after` and
   `soak` gates of later environments read) and the Promotion `deployed`;
   otherwise the Promotion `failed`, and the previous release keeps serving.

Killing the controller at any point is safe: instances outlive it, the next
pass observes them again and converges. A Promotion rejected while its
Deployment has not yet stopped the previous instances is an abort.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.engine import deployment_events
from conveyor.engine import promotion_events as promotion_recorded
from conveyor.engine.deployer import Plan, plan
from conveyor.engine.leases import abandoned, new_owner
from conveyor.promotion.model import Promotion, PromotionState
from conveyor.release.model import ReleaseId
from conveyor.rollout.deployment import Deployment
from conveyor.rollout.model import Decision, Observed, RolloutEvent, StopInstance
from conveyor.rollout.rolling import decide
from conveyor.rollout.status import (
    AWAIT_HEALTH,
    FAILED,
    Condition,
    DeploymentStatus,
    request_abort,
)
from conveyor.store import deployments as store
from conveyor.store import events as event_log
from conveyor.store import promotions as promotion_store
from conveyor.store import releases as release_store
from conveyor.store.db import Database, Transaction
from conveyor.targets.base import Target
from conveyor.targets.driver import observe, perform

Progress = Callable[[Deployment], None]


class DeploymentController:
    """Drives the Deployments of one project on one Target; see the module's docstring.

    `lease_s` is how long a claim lasts without a pass (each pass renews it);
    `interval_s` is how soon a Deployment in progress is due again.
    """

    def __init__(
        self,
        db: Database,
        target: Target,
        clock: Clock,
        *,
        project: str,
        actor: str = "conveyor",
        owner: str | None = None,
        lease_s: float = 30.0,
        interval_s: float = 0.25,
        is_abandoned: Callable[[str], bool] = abandoned,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.target = target
        self.clock = clock
        self.project = project
        self.actor = actor
        self.owner = owner or new_owner()
        self.lease_s = lease_s
        self.interval_s = interval_s
        self._is_abandoned = is_abandoned
        self._sleep = sleep
        self._held: set[int] = set()
        # Per Deployment: the revision this controller saved, and what it observed after acting.
        self._after: dict[int, tuple[int, Observed]] = {}

    # --- passes ------------------------------------------------------------------------

    def run_once(self) -> list[Deployment]:
        """One pass over every Deployment that is due; each as it is afterwards."""
        self._take_over_abandoned()
        passed: list[Deployment] = []
        while True:
            claimed = store.claim(
                self.db,
                project=self.project,
                owner=self.owner,
                now=self.clock.now(),
                lease_s=self.lease_s,
                skip=[d.id for d in passed],
            )
            if claimed is None:
                return passed
            self._held.add(claimed.id)
            passed.append(self._pass(claimed))

    def run_until_settled(
        self, deployment_id: int, *, timeout_s: float, on_progress: Progress | None = None
    ) -> Deployment:
        """Pass after pass until the Deployment settles or `timeout_s` passes; it, then."""
        deadline = self.clock.monotonic() + timeout_s
        try:
            while True:
                self.run_once()
                current = store.get(self.db, deployment_id)
                if on_progress is not None:
                    on_progress(current)
                if not current.active or self.clock.monotonic() >= deadline:
                    return current
                self._sleep(self.interval_s)
        finally:
            self.close()

    def run_until_idle(
        self, *, timeout_s: float, on_progress: Progress | None = None
    ) -> list[Deployment]:
        """Pass after pass until no Deployment of the project is unsettled (or the timeout)."""
        deadline = self.clock.monotonic() + timeout_s
        seen: dict[int, Deployment] = {}
        try:
            while True:
                for deployment in self.run_once():
                    seen[deployment.id] = deployment
                    if on_progress is not None:
                        on_progress(deployment)
                left = store.list_deployments(self.db, project=self.project, active=True)
                if not left or self.clock.monotonic() >= deadline:
                    return [store.get(self.db, d) for d in sorted(seen)]
                self._sleep(self.interval_s)
        finally:
            self.close()

    def close(self) -> None:
        """Give up every lease this controller holds, so others may take over at once."""
        for deployment_id in sorted(self._held):
            store.release(self.db, deployment_id=deployment_id, owner=self.owner)
        self._held.clear()
        self._after.clear()

    # --- one pass ----------------------------------------------------------------------

    def _pass(self, claimed: Deployment) -> Deployment:
        now = self.clock.now()
        release = release_store.get_release(
            self.db, project=claimed.project, service=claimed.service, version=claimed.version
        )
        planned = plan(claimed, release)
        if isinstance(planned, str):
            return self._save(claimed, _unplanned(claimed.status, planned, now), now) or claimed
        status = self._interpret_rejection(claimed, now)
        decision = decide(planned.spec, status, self._observe(claimed, planned), now)
        if any(isinstance(action, StopInstance) for action in decision.actions):
            saved = self._save(claimed, decision, now)
            if saved is not None:
                self._act(saved, decision, planned)
        else:
            after = self._perform(decision, planned)
            saved = self._save(claimed, decision, now)
            if saved is not None and saved.active and after is not None:
                self._after[saved.id] = (saved.revision, after)
        return saved or self._lost(claimed)

    def _observe(self, claimed: Deployment, planned: Plan) -> Observed:
        """What the previous pass saw right after acting, if still current; else look again."""
        carried = self._after.pop(claimed.id, None)
        # The claim that handed the Deployment back to this controller is one write.
        if carried is not None and carried[0] + 1 == claimed.revision:
            return carried[1]
        return observe(self.target, planned.workload, check=_awaited(claimed.status))

    def _act(self, saved: Deployment, decision: Decision, planned: Plan) -> None:
        after = self._perform(decision, planned)
        if saved.active and after is not None:
            self._after[saved.id] = (saved.revision, after)

    def _perform(self, decision: Decision, planned: Plan) -> Observed | None:
        """Make the decision's actions true; what the Target shows right afterwards."""
        if not decision.actions:
            return None
        return perform(decision.actions, self.target, planned.workload)

    def _interpret_rejection(self, claimed: Deployment, now: float) -> DeploymentStatus:
        """A Promotion rejected after it was approved is an abort of its Deployment."""
        promotion = promotion_store.get_promotion(self.db, promotion_id=claimed.promotion_id)
        if promotion.state != "rejected":
            return claimed.status
        return request_abort(claimed.status, by=f"promotion {promotion.id} rejected", now=now)

    def _save(self, claimed: Deployment, decision: Decision, now: float) -> Deployment | None:
        """Save the pass (and, once settled, its outcome) over the revision that was read."""
        status = decision.status
        settled = status.settled
        events = deployment_events.recorded(claimed, decision.events, self.actor, now)
        with self.db.write() as tx:
            saved = store.save(
                tx,
                deployment=claimed,
                status=status,
                now=now,
                due_at=None if settled else now + self.interval_s,
                owner=None if settled else self.owner,
                lease_until=now + self.lease_s,
                events=events,
            )
            if saved is not None and settled:
                _record_outcome(tx, saved, self.actor, now)
        if saved is None or settled:
            self._held.discard(claimed.id)
        return saved

    def _lost(self, claimed: Deployment) -> Deployment:
        """Another controller wrote the Deployment meanwhile: its word stands."""
        self._held.discard(claimed.id)
        self._after.pop(claimed.id, None)
        return store.get(self.db, claimed.id)

    def _take_over_abandoned(self) -> None:
        """Free the leases of holders known to be gone, so their work goes on now."""
        now = self.clock.now()
        for deployment in store.list_deployments(self.db, project=self.project, active=True):
            holder = deployment.claimed_by
            if holder is None or holder == self.owner:
                continue
            if deployment.lease_until is not None and deployment.lease_until < now:
                continue  # expired: claimed like any free one
            if self._is_abandoned(holder):
                store.release(self.db, deployment_id=deployment.id, owner=holder)


def _awaited(status: DeploymentStatus) -> frozenset[str]:
    """The new instances whose health a fresh observation must check."""
    if status.step != AWAIT_HEALTH or status.rolling_back:
        return frozenset()
    return frozenset(i.id for i in status.new if i.state not in ("healthy", "exited"))


def _unplanned(status: DeploymentStatus, reason: str, now: float) -> Decision:
    """A Deployment that cannot be planned fails before it starts anything."""
    failed = status.with_condition(Condition(FAILED, "NotPlanned", reason, now))
    event = RolloutEvent("deployment.failed", {"reason": "NotPlanned", "message": reason})
    return Decision(failed, (), (event,))


def _record_outcome(tx: Transaction, deployment: Deployment, actor: str, now: float) -> None:
    """What a settled Deployment changes: the environment's release, the Promotion's state."""
    promotion = promotion_store.get(tx, deployment.promotion_id)
    carried_out = promotion.state == "approved"
    if deployment.phase == "succeeded":
        events = [promotion_recorded.deployed_event(promotion, actor, now, healthy_since=now)]
        if carried_out:
            events.append(_promotion_event(promotion, "deployed", deployment, actor, now))
        promotion_store.mark_deployed(
            tx,
            project=deployment.project,
            service=deployment.service,
            environment=deployment.environment,
            release_id=ReleaseId(deployment.release_id),
            version=deployment.version,
            deployed_at=now,
            healthy_since=now,
            events=events,
            promotion_id=promotion.id if carried_out else None,
        )
    elif carried_out:
        promotion_store.set_state(tx, promotion_id=promotion.id, state="failed", now=now)
        event_log.append(tx, [_promotion_event(promotion, "failed", deployment, actor, now)])


def _promotion_event(
    promotion: Promotion, state: PromotionState, deployment: Deployment, actor: str, now: float
) -> NewEvent:
    data: dict[str, object] = {"deployment": int(deployment.id), "phase": deployment.phase}
    if state == "failed":
        data["reason"] = deployment.message
    return promotion_recorded.state_event(promotion, state, actor, now, data)

"""The Waiver service: what `conveyor waiver create|approve|reject|revoke|list|show` do.

A Waiver excuses one Policy rule in one Environment of this project for a
bounded time, once a second person approved it. Segregation of duties is
enforced here, not in an interface: the requester cannot approve their own,
the decider needs a role allowed to decide (`DECIDING_ROLES`, from the roles
map), and only a pending Waiver can be decided. Every change and every
refusal is an Event in the same transaction as the change.
"""

from __future__ import annotations

from typing import Literal

from conveyor.core.clock import Clock, SystemClock, iso
from conveyor.core.errors import NotFound, PolicyViolation, UsageError
from conveyor.core.values import frozen
from conveyor.engine import waiver_events
from conveyor.engine.policies import load_workspace_rules
from conveyor.engine.workspace import Workspace
from conveyor.policy.waiver import (
    DECIDING_ROLES,
    NewWaiver,
    Waiver,
    WaiverDecision,
    WaiverState,
    duration_problem,
)
from conveyor.promotion.duties import ROLES_FILE, deciding_role
from conveyor.promotion.model import Actor, identity
from conveyor.spec.pipeline import Pipeline
from conveyor.spec.suggest import did_you_mean, one_of
from conveyor.store import events as event_log
from conveyor.store import waivers as waiver_store
from conveyor.store.db import Database, Transaction

Action = Literal["approve", "reject", "revoke"]
_DONE = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}


class WaiverRefused(PolicyViolation):
    """A decision on a Waiver that segregation of duties or the Waiver's state forbids."""


@frozen
class WaiverStatus:
    """A Waiver and what it is at the time it was read."""

    waiver: Waiver
    state: WaiverState
    at: float


class WaiverService:
    """Requests, decides on, revokes and reads the Waivers of one workspace's project."""

    def __init__(self, workspace: Workspace, *, db: Database, clock: Clock | None = None) -> None:
        self.workspace = workspace
        self.db = db
        self.clock = clock or SystemClock()

    # --- requesting ------------------------------------------------------------

    def create(
        self,
        pipeline: Pipeline,
        *,
        rule: str,
        environment: str,
        expires_s: float,
        reason: str,
        requester: Actor,
    ) -> WaiverStatus:
        """Request a Waiver of `rule` in `environment` lasting `expires_s` from now (pending)."""
        self._check_environment(pipeline, environment)
        self._check_rule(rule)
        problem = duration_problem(expires_s)
        if problem is not None:
            raise UsageError(f"--expires: {problem}")
        if not reason.strip():
            raise UsageError(
                "--reason is empty; say why the rule must be waived, for the approver and the audit"
            )
        now = self.clock.now()
        new = NewWaiver(
            project=self.workspace.project,
            rule=rule,
            environment=environment,
            reason=reason.strip(),
            requested_by=requester.name,
            requested_at=now,
            expires_at=now + expires_s,
        )
        with self.db.write() as tx:
            waiver = waiver_store.insert(tx, new)
            event = waiver_events.lifecycle(
                "requested", waiver, requester.name, now, roles=list(requester.roles)
            )
            event_log.append(tx, [event])
        return self._status(waiver, now)

    def _check_environment(self, pipeline: Pipeline, environment: str) -> None:
        delivery = pipeline.delivery
        if delivery is None:
            raise UsageError(
                f"{pipeline.path} has no `delivery:` section, so no environment to waive a rule in"
            )
        if environment not in delivery.names:
            hint = did_you_mean(environment, delivery.names) or (
                f"the environments are {one_of(delivery.names)}"
            )
            raise UsageError(f"--env: {pipeline.path} has no environment '{environment}'; {hint}")

    def _check_rule(self, rule: str) -> None:
        names = tuple(r.name for r in load_workspace_rules(self.workspace.root))
        if rule in names:
            return
        if not names:
            raise UsageError(f"--rule: there is no rule '{rule}': policies/*.yaml defines no rules")
        hint = did_you_mean(rule, names) or f"the rules are {one_of(names)}"
        raise UsageError(f"--rule: policies/*.yaml defines no rule '{rule}'; {hint}")

    # --- deciding --------------------------------------------------------------

    def approve(self, waiver_id: int, actor: Actor, *, comment: str = "") -> WaiverStatus:
        """Approve a pending Waiver as `actor`; WaiverRefused with the reason otherwise."""
        return self._change(waiver_id, actor, "approve", comment)

    def reject(self, waiver_id: int, actor: Actor, *, comment: str = "") -> WaiverStatus:
        """Reject a pending Waiver (its requester may withdraw it); it never takes effect."""
        return self._change(waiver_id, actor, "reject", comment)

    def revoke(self, waiver_id: int, actor: Actor, *, comment: str = "") -> WaiverStatus:
        """End a pending or active Waiver now; promotions re-evaluated after it are not excused."""
        return self._change(waiver_id, actor, "revoke", comment)

    def _change(self, waiver_id: int, actor: Actor, action: Action, comment: str) -> WaiverStatus:
        self.get(waiver_id)  # NotFound for another project's waiver
        now = self.clock.now()
        with self.db.write() as tx:
            current = waiver_store.get(tx, waiver_id, for_update=True)
            reason = refusal(current, actor, action, now)
            if reason is None:
                reason = _record(tx, current, actor, action, comment=comment, now=now)
            if reason is not None:
                data = {"action": action, "reason": reason}
                event = waiver_events.lifecycle("refused", current, actor.name, now, **data)
                event_log.append(tx, [event])
            else:
                current = waiver_store.get(tx, waiver_id)
        if reason is not None:
            raise WaiverRefused(reason)
        return self._status(current, now)

    # --- reading ---------------------------------------------------------------

    def get(self, waiver_id: int) -> WaiverStatus:
        """One Waiver of this project; NotFound for another project's, as for none at all."""
        waiver = waiver_store.get_waiver(self.db, waiver_id=waiver_id)
        if waiver.project != self.workspace.project:
            raise NotFound(
                f"there is no waiver {waiver_id} in project {self.workspace.project}; "
                "`conveyor waiver list` lists them"
            )
        return self._status(waiver, self.clock.now())

    def list_waivers(
        self,
        *,
        environment: str | None = None,
        rule: str | None = None,
        state: WaiverState | None = None,
        limit: int = 100,
    ) -> list[WaiverStatus]:
        """The project's Waivers, newest first, with their state now."""
        now = self.clock.now()
        found = waiver_store.list_waivers(
            self.db,
            project=self.workspace.project,
            environment=environment,
            rule=rule,
            limit=limit if state is None else 10_000,
        )
        listed = [self._status(w, now) for w in found]
        if state is not None:
            listed = [s for s in listed if s.state == state][:limit]
        return listed

    def _status(self, waiver: Waiver, now: float) -> WaiverStatus:
        return WaiverStatus(waiver, waiver.state(now), now)


def refusal(waiver: Waiver, actor: Actor, action: Action, now: float) -> str | None:
    """Why `actor` may not `action` `waiver` at `now`, or None when they may."""
    state = waiver.state(now)
    open_states = ("pending", "active") if action == "revoke" else ("pending",)
    if state not in open_states:
        return _closed(waiver, state, action)
    own = actor.identity == identity(waiver.requested_by)
    if action == "approve" and own:
        return (
            f"{actor.name} requested waiver {waiver.id}, so cannot approve it; "
            "someone else must (segregation of duties)"
        )
    if own or deciding_role(actor.roles, DECIDING_ROLES) is not None:
        return None  # the requester may withdraw or revoke their own
    held = ", ".join(actor.roles) if actor.roles else "no roles"
    return (
        f"{actor.name} has {held}; to {action} a waiver takes one of the roles "
        f"{', '.join(DECIDING_ROLES)} (given in {ROLES_FILE})"
    )


def _closed(waiver: Waiver, state: WaiverState, action: Action) -> str:
    what = {
        "expired": f"expired at {iso(waiver.expires_at)}",
        "rejected": f"was rejected by {waiver.decided_by}",
        "revoked": f"was revoked by {waiver.revoked_by}",
        "active": f"is approved already (by {waiver.decided_by})",
    }.get(state, f"is {state}")
    again = "" if state == "active" else "; request a new one with `conveyor waiver create`"
    return f"waiver {waiver.id} {what}, so it cannot be {_DONE[action]}{again}"


def _record(
    tx: Transaction, waiver: Waiver, actor: Actor, action: Action, *, comment: str, now: float
) -> str | None:
    """Record the change and its Event; the refusal when another was recorded meanwhile."""
    role = deciding_role(actor.roles, DECIDING_ROLES) or "requester"
    if action == "revoke":
        changed = waiver_store.revoke(tx, waiver_id=waiver.id, by=actor.name, at=now)
    else:
        decision: WaiverDecision = "approved" if action == "approve" else "rejected"
        changed = waiver_store.decide(
            tx, waiver_id=waiver.id, by=actor.name, decision=decision, comment=comment, at=now
        )
    if not changed:
        return f"waiver {waiver.id} was decided on meanwhile; `conveyor waiver show {waiver.id}`"
    data = {"by": actor.name, "role": role, "comment": comment}
    event_log.append(tx, [waiver_events.lifecycle(_DONE[action], waiver, actor.name, now, **data)])
    return None

"""The Events a Promotion's changes are recorded as, each appended with the change itself.

Subjects sit below the Release's (`release/<service>/<version>/promotion/<id>`),
so a Release's Events include everything that happened to it.
"""

from __future__ import annotations

from conveyor.audit.chain import NewEvent
from conveyor.promotion.codec import requirements_json
from conveyor.promotion.model import (
    Actor,
    Approval,
    GateReport,
    NewPromotion,
    Promotion,
    PromotionState,
    Verdict,
    promotion_subject,
)
from conveyor.release.model import release_subject


def deployed_event(
    promotion: Promotion, actor: str, at: float, *, healthy_since: float | None
) -> NewEvent:
    """The `environment.deployed` Event for a Release running in the promotion's environment."""
    subject = f"{release_subject(promotion.service, promotion.version)}/environment/"
    return NewEvent(
        "environment.deployed",
        subject + promotion.environment,
        actor,
        at,
        {
            "environment": promotion.environment,
            "version": promotion.version,
            "promotion": int(promotion.id),
            "healthy_since": healthy_since,
        },
    )


def requested(new: NewPromotion, promotion_id: int) -> NewEvent:
    """`promotion.requested`: who asked, for which Release identity, under which requirements."""
    return NewEvent(
        "promotion.requested",
        promotion_subject(new.service, new.version, promotion_id),
        new.requested_by,
        new.requested_at,
        {
            "promotion": promotion_id,
            "project": new.project,
            "service": new.service,
            "version": new.version,
            "environment": new.environment,
            "release_digest": new.release_digest,
            "requester_roles": list(new.basis.requester_roles),
            "requirements": requirements_json(new.basis.requirements),
            "rules": [rule.name for rule in new.basis.rules],
        },
    )


def superseded(stale: Promotion, by: int, actor: str, now: float) -> NewEvent:
    """`promotion.superseded`: a newer promotion into the environment replaced `stale`."""
    return state_event(stale, "superseded", actor, now, {"superseded_by": by})


def decided(
    new: NewPromotion,
    promotion_id: int,
    report: GateReport,
    actor: str,
    before: Promotion | None = None,
) -> NewEvent:
    """`promotion.<state>` when the state changes, else `promotion.evaluated`."""
    changed = before is None or before.state != report.state
    kind = f"promotion.{report.state}" if changed else "promotion.evaluated"
    gates = [{"gate": g.gate, "outcome": g.outcome, "reason": g.reason} for g in report.gates]
    return NewEvent(
        kind,
        promotion_subject(new.service, new.version, promotion_id),
        actor,
        report.evaluated_at,
        {"promotion": promotion_id, "state": report.state, "gates": gates},
    )


def state_event(
    promotion: Promotion, state: PromotionState, actor: str, now: float, data: dict[str, object]
) -> NewEvent:
    """`promotion.<state>` for a change a person or a later step made."""
    body: dict[str, object] = {"promotion": int(promotion.id), "state": state, **data}
    return NewEvent(f"promotion.{state}", promotion.subject, actor, now, body)


def decision_event(promotion: Promotion, approval: Approval, actor: str) -> NewEvent:
    """`approval.granted` or `approval.rejected`, with the role and the identity it binds to."""
    kind = "approval.granted" if approval.verdict == "approve" else "approval.rejected"
    return NewEvent(
        kind,
        promotion.subject,
        actor,
        approval.at,
        {
            "promotion": int(promotion.id),
            "approval": approval.id,
            "by": approval.by,
            "role": approval.role,
            "comment": approval.comment,
            "release_digest": approval.release_digest,
        },
    )


def refused(
    promotion: Promotion, actor: Actor, verdict: Verdict, reason: str, now: float
) -> NewEvent:
    """`approval.refused`: a decision that segregation of duties or the state forbids, and why."""
    data = {"promotion": int(promotion.id), "verdict": verdict, "reason": reason}
    return NewEvent("approval.refused", promotion.subject, actor.name, now, data)

"""The Events a Waiver's life is recorded as, each appended with the change itself.

A Waiver's own Events sit at `waiver/<project>/<id>`. Each use sits below the
Promotion that relied on it (`release/<service>/<version>/promotion/<id>`),
so a Release's Events (and its evidence bundle) include every waiver it used.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import iso
from conveyor.policy.waiver import Waiver
from conveyor.promotion.model import GateReport, promotion_subject


def lifecycle(kind: str, waiver: Waiver, actor: str, at: float, **extra: object) -> NewEvent:
    """`waiver.requested|approved|rejected|revoked` with what the waiver is."""
    data: dict[str, object] = {
        "waiver": int(waiver.id),
        "project": waiver.project,
        "rule": waiver.rule,
        "environment": waiver.environment,
        "reason": waiver.reason,
        "requested_by": waiver.requested_by,
        "expires_at": iso(waiver.expires_at),
        **extra,
    }
    return NewEvent(f"waiver.{kind}", waiver.subject, actor, at, data)


def used_ids(report: GateReport) -> tuple[int, ...]:
    """The Waivers a Gate report relied on, in order."""
    return tuple(dict.fromkeys(w for gate in report.gates for w in gate.waivers))


def uses(
    waivers: Sequence[Waiver],
    *,
    service: str,
    version: str,
    promotion_id: int,
    report: GateReport,
    actor: str,
) -> list[NewEvent]:
    """One `waiver.used` per Waiver the recorded decision `report` relied on."""
    subject = promotion_subject(service, version, promotion_id)
    return [
        NewEvent(
            "waiver.used",
            subject,
            actor,
            report.evaluated_at,
            {
                "waiver": int(waiver.id),
                "promotion": promotion_id,
                "rule": waiver.rule,
                "environment": waiver.environment,
                "state": report.state,
                "expires_at": iso(waiver.expires_at),
            },
        )
        for waiver in waivers
    ]

"""Promotions as people and programs read them: text with every gate, and JSON."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.clock import iso
from conveyor.promotion.codec import gate_json, requirements_json
from conveyor.promotion.duties import ROLES_FILE, allowed_roles
from conveyor.promotion.model import Approval, GateResult, Promotion

SYMBOLS = {"passed": "✓", "waiting": "…", "blocked": "✗"}
STATE_WORDS = {
    "approved": "approved: ready to deploy",
    "deployed": "deployed",
    "pending": "pending: waiting for time to pass",
    "blocked": "blocked",
    "rejected": "rejected",
    "superseded": "superseded by a newer promotion",
    "failed": "failed to deploy",
}


def promotion_json(promotion: Promotion) -> dict[str, object]:
    """One Promotion as every promotion command's `--json` prints it."""
    report = promotion.report
    return {
        "id": int(promotion.id),
        "project": promotion.project,
        "service": promotion.service,
        "version": promotion.version,
        "environment": promotion.environment,
        "state": promotion.state,
        "release_digest": promotion.release_digest,
        "requested_by": promotion.requested_by,
        "requested_at": iso(promotion.requested_at),
        "updated_at": iso(promotion.updated_at),
        "evaluated_at": None if report is None else iso(report.evaluated_at),
        "retry_at": None if report is None or not promotion.open else iso(report.retry_at),
        "gates": [] if report is None else [_gate_json(gate) for gate in report.gates],
        "approvals": [_approval_json(a) for a in promotion.approvals],
        "requirements": requirements_json(promotion.basis.requirements),
        "rules": [rule.name for rule in promotion.basis.rules],
    }


def _gate_json(gate: GateResult) -> dict[str, object]:
    doc = gate_json(gate)
    doc["retry_at"] = iso(gate.retry_at)
    return doc


def _approval_json(approval: Approval) -> dict[str, object]:
    return {
        "by": approval.by,
        "role": approval.role,
        "decision": approval.verdict,
        "comment": approval.comment,
        "at": iso(approval.at),
    }


def promotion_text(promotion: Promotion) -> str:
    """The promotion, its state, every gate with outcome and reason, approvals, what next."""
    lines = [
        f"promotion {promotion.id}: {promotion.service} {promotion.version} -> "
        f"{promotion.environment}: {STATE_WORDS.get(promotion.state, promotion.state)}",
        f"  requested by {promotion.requested_by} at {iso(promotion.requested_at)}",
    ]
    report = promotion.report
    if report is not None:
        lines.append(f"gates (evaluated at {iso(report.evaluated_at)}):")
        lines.extend(_gate_lines(report.gates))
    if promotion.approvals:
        lines.append("approvals:")
        lines.extend(f"  {_approval_text(a)}" for a in promotion.approvals)
    hint = next_hint(promotion)
    if hint:
        lines.append(f"next: {hint}")
    return "\n".join(lines)


def _gate_lines(gates: Sequence[GateResult]) -> list[str]:
    width = max(len(gate.gate) for gate in gates)
    lines = []
    for gate in gates:
        symbol = SYMBOLS[gate.outcome]
        lines.append(f"  {symbol} {gate.gate.ljust(width)}  {gate.outcome.ljust(7)}  {gate.reason}")
        lines.extend(f"      {note}" for note in gate.notes)
    return lines


def _approval_text(approval: Approval) -> str:
    verb = "approved" if approval.verdict == "approve" else "rejected"
    text = f"{approval.by} {verb} as {approval.role} at {iso(approval.at)}"
    return f"{text}: {approval.comment}" if approval.comment else text


def next_hint(promotion: Promotion) -> str | None:
    """What would move an open promotion on, for the person reading."""
    report = promotion.report
    if not promotion.open or report is None:
        return None
    if report.final:
        return "a gate blocks for good; fix what it names and promote again"
    approvals = report.gate("approvals")
    if approvals.outcome == "blocked" and not approvals.final:
        roles = " or ".join(allowed_roles(promotion.basis.requirements))
        return (
            f"`conveyor approve {promotion.id}` by someone with the role {roles} "
            f"in {ROLES_FILE} who neither requested it nor wrote a change in it"
        )
    if report.retry_at is not None:
        at = iso(report.retry_at)
        return f"a gate may change by itself at {at}; `conveyor promote` waits for it"
    return None


def promotions_table(promotions: Sequence[Promotion]) -> str:
    """One line per promotion, newest first."""
    from conveyor.cli.render import table

    rows = [("ID", "SERVICE", "VERSION", "ENV", "STATE", "REQUESTED", "BY")]
    for p in promotions:
        rows.append(
            (
                str(p.id),
                p.service,
                p.version,
                p.environment,
                p.state,
                iso(p.requested_at) or "",
                p.requested_by,
            )
        )
    return table(rows)

"""Waivers as people and programs read them: text and JSON."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.clock import iso
from conveyor.engine.waivers import WaiverStatus

STATE_WORDS = {
    "pending": "pending: needs someone else's approval",
    "active": "active",
    "expired": "expired",
    "rejected": "rejected",
    "revoked": "revoked",
}


def waiver_json(status: WaiverStatus) -> dict[str, object]:
    """One Waiver as every waiver command's `--json` prints it."""
    waiver = status.waiver
    return {
        "id": int(waiver.id),
        "project": waiver.project,
        "rule": waiver.rule,
        "environment": waiver.environment,
        "state": status.state,
        "reason": waiver.reason,
        "requested_by": waiver.requested_by,
        "requested_at": iso(waiver.requested_at),
        "expires_at": iso(waiver.expires_at),
        "decision": waiver.decision,
        "decided_by": waiver.decided_by,
        "decided_at": iso(waiver.decided_at),
        "comment": waiver.comment,
        "revoked_by": waiver.revoked_by,
        "revoked_at": iso(waiver.revoked_at),
    }


def waiver_text(status: WaiverStatus) -> str:
    """The waiver, its state, who asked and decided, and what would move it on."""
    waiver = status.waiver
    lines = [
        f"waiver {waiver.id}: '{waiver.rule}' in {waiver.environment}: {STATE_WORDS[status.state]}",
        f"  reason: {waiver.reason}",
        f"  requested by {waiver.requested_by} at {iso(waiver.requested_at)}",
        f"  expires at {iso(waiver.expires_at)}",
    ]
    if waiver.decision is not None:
        decided = f"  {waiver.decision} by {waiver.decided_by} at {iso(waiver.decided_at)}"
        lines.append(f"{decided}: {waiver.comment}" if waiver.comment else decided)
    if waiver.revoked_at is not None:
        lines.append(f"  revoked by {waiver.revoked_by} at {iso(waiver.revoked_at)}")
    if status.state == "pending":
        lines.append(
            f"next: `conveyor waiver approve {waiver.id}` by someone else with the role "
            "approver, release-manager or admin in conveyor-roles.yaml"
        )
    return "\n".join(lines)


def waivers_table(statuses: Sequence[WaiverStatus]) -> str:
    """One line per waiver, newest first."""
    from conveyor.cli.render import table

    rows = [("ID", "RULE", "ENV", "STATE", "EXPIRES", "BY", "REASON")]
    for status in statuses:
        w = status.waiver
        rows.append(
            (
                str(w.id),
                w.rule,
                w.environment,
                status.state,
                iso(w.expires_at) or "",
                w.requested_by,
                w.reason,
            )
        )
    return table(rows)

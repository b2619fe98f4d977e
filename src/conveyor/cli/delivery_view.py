"""What releasing a run did, as people and programs read it (`conveyor run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `conveyor run` loads this module; the delivery services only if it released
    from conveyor.engine.auto_release import AutoRelease


def auto_release_json(outcome: AutoRelease) -> dict[str, object]:
    """The `release` key of `conveyor run --json`."""
    return {
        "version": outcome.version,
        "created": outcome.created,
        "promotions": [
            {
                "id": int(p.promotion.id),
                "environment": p.promotion.environment,
                "state": p.promotion.state,
                "deployment": None
                if p.deployment is None
                else {"id": p.deployment.id, "phase": p.deployment.phase},
            }
            for p in outcome.promotions
        ],
        "notes": list(outcome.notes),
    }


def auto_release_text(outcome: AutoRelease) -> str:
    """A line for the release, one per promotion, one per note."""
    lines = []
    if outcome.version is not None and outcome.created:
        lines.append(f"released {outcome.version}")
    for auto in outcome.promotions:
        promotion = auto.promotion
        lines.append(
            f"  promotion {promotion.id}: {promotion.service} {promotion.version} -> "
            f"{promotion.environment}: {promotion.state}"
        )
        if promotion.open:
            lines.append(
                f"    `conveyor why {promotion.service} {promotion.version} "
                f"--env {promotion.environment}` says what it waits for"
            )
    lines.extend(f"note: {note}" for note in outcome.notes)
    return "\n".join(lines)

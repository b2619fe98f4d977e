"""Waiting for a Promotion: when to look again, and when waiting is over (pure)."""

from __future__ import annotations

from conveyor.core.clock import iso
from conveyor.core.values import frozen
from conveyor.promotion.model import Promotion

# States in which the Release is ready to deploy (or deployed): `promote` succeeds.
SUCCEEDED = frozenset({"approved", "deployed"})


@frozen
class WaitStep:
    """Whether to stop waiting, why, and otherwise until when to sleep."""

    done: bool
    reason: str = ""
    sleep_until: float = 0.0


def next_step(promotion: Promotion, *, now: float, deadline: float, poll_s: float) -> WaitStep:
    """Stop once the promotion is decided or cannot pass before `deadline`; else when to look."""
    if promotion.state in SUCCEEDED:
        return WaitStep(True, "approved: ready to deploy")
    if not promotion.open:
        return WaitStep(True, f"{promotion.state}")
    report = promotion.report
    if report is not None and report.final:
        return WaitStep(True, "blocked: waiting cannot clear it")
    earliest = None if report is None else report.earliest_pass
    if earliest is not None and earliest > deadline:
        return WaitStep(True, f"cannot pass before {iso(earliest)}, after the timeout")
    if now >= deadline:
        return WaitStep(True, "timed out waiting")
    wake = min(now + poll_s, deadline)
    if report is not None and report.retry_at is not None:
        wake = min(wake, max(report.retry_at, now))
    return WaitStep(False, sleep_until=wake)


def can_proceed(promotion: Promotion) -> bool:
    """Whether the promotion is approved, or open and able to pass by itself or by people."""
    if promotion.state in SUCCEEDED:
        return True
    return promotion.open and not (promotion.report is not None and promotion.report.final)

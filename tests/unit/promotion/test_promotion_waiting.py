"""Waiting for a Promotion: stop when it is decided or cannot pass in time; else sleep well."""

from __future__ import annotations

from conveyor.promotion.model import (
    Basis,
    GateReport,
    GateResult,
    Promotion,
    PromotionId,
    PromotionState,
)
from conveyor.promotion.waiting import can_proceed, next_step
from conveyor.release.model import ReleaseId
from conveyor.spec.delivery import Requirements

T0 = 1_767_225_600.0
PASSED = GateResult("after", "passed", "fine")


def promotion(state: PromotionState, *gates: GateResult) -> Promotion:
    return Promotion(
        id=PromotionId(1),
        project="shop",
        service="api",
        version="1.0.0",
        release_id=ReleaseId(1),
        release_digest="sha256:" + "0" * 64,
        environment="prod",
        requested_by="dev@example.com",
        requested_at=T0,
        basis=Basis(Requirements()),
        state=state,
        updated_at=T0,
        revision=1,
        report=GateReport(T0, (PASSED, *gates)),
    )


APPROVALS = GateResult("approvals", "blocked", "0 of 1")
WINDOW = GateResult("window", "waiting", "later", retry_at=T0 + 30)
FREEZE = GateResult("freeze", "blocked", "frozen", retry_at=T0 + 86_400)
DENIED = GateResult("policies", "blocked", "denied", final=True)


def test_an_approved_or_deployed_promotion_ends_the_wait() -> None:
    for state in ("approved", "deployed"):
        step = next_step(promotion(state), now=T0, deadline=T0 + 600, poll_s=1)
        assert step.done
        assert step.reason == "approved: ready to deploy"


def test_a_closed_promotion_ends_the_wait_with_its_state() -> None:
    step = next_step(promotion("superseded"), now=T0, deadline=T0 + 600, poll_s=1)
    assert (step.done, step.reason) == (True, "superseded")


def test_a_gate_that_blocks_for_good_ends_the_wait() -> None:
    step = next_step(promotion("blocked", DENIED), now=T0, deadline=T0 + 600, poll_s=1)
    assert (step.done, step.reason) == (True, "blocked: waiting cannot clear it")


def test_a_freeze_that_ends_after_the_deadline_ends_the_wait_at_once() -> None:
    step = next_step(promotion("blocked", FREEZE), now=T0, deadline=T0 + 600, poll_s=1)
    assert step.done
    assert step.reason == "cannot pass before 2026-01-02T00:00:00Z, after the timeout"


def test_waiting_for_people_polls_until_the_deadline() -> None:
    waiting = next_step(promotion("blocked", APPROVALS), now=T0, deadline=T0 + 600, poll_s=2)
    late = next_step(promotion("blocked", APPROVALS), now=T0 + 600, deadline=T0 + 600, poll_s=2)

    assert (waiting.done, waiting.sleep_until) == (False, T0 + 2)
    assert (late.done, late.reason) == (True, "timed out waiting")


def test_a_window_opening_before_the_next_poll_wakes_the_wait_then() -> None:
    step = next_step(promotion("pending", WINDOW), now=T0, deadline=T0 + 600, poll_s=60)
    assert (step.done, step.sleep_until) == (False, T0 + 30)


def test_a_promotion_can_proceed_unless_closed_or_blocked_for_good() -> None:
    assert can_proceed(promotion("approved"))
    assert can_proceed(promotion("blocked", APPROVALS))
    assert can_proceed(promotion("pending", WINDOW))
    assert not can_proceed(promotion("blocked", DENIED))
    assert not can_proceed(promotion("rejected"))

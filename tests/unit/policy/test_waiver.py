"""Waivers as values: their state at a time, what they cover, how long they may last."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.policy.waiver import (
    MAX_DURATION_S,
    Waiver,
    WaiverId,
    covering,
    duration_problem,
    waiver_subject,
)

T0 = 1_767_225_600.0
HOUR = 3600.0


def waiver(**changes: object) -> Waiver:
    base = Waiver(
        id=WaiverId(1),
        project="shop",
        rule="no-friday-prod",
        environment="prod",
        reason="hotfix INC-42",
        requested_by="dev@example.com",
        requested_at=T0,
        expires_at=T0 + 48 * HOUR,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


APPROVED = {"decision": "approved", "decided_by": "lead@example.com", "decided_at": T0 + 60}


def test_a_requested_waiver_is_pending_until_decided() -> None:
    assert waiver().state(T0 + 1) == "pending"


def test_an_approved_waiver_is_active_until_it_expires_and_expired_from_then_on() -> None:
    approved = waiver(**APPROVED)

    assert approved.state(T0 + 47 * HOUR) == "active"
    assert approved.state(T0 + 48 * HOUR) == "expired"


def test_a_pending_waiver_past_its_expiry_is_expired() -> None:
    assert waiver().state(T0 + 49 * HOUR) == "expired"


def test_rejected_and_revoked_are_final_whatever_the_time() -> None:
    rejected = waiver(decision="rejected", decided_by="lead@example.com", decided_at=T0)
    revoked = waiver(**APPROVED, revoked_by="lead@example.com", revoked_at=T0 + HOUR)

    assert [rejected.state(t) for t in (T0, T0 + 99 * HOUR)] == ["rejected", "rejected"]
    assert [revoked.state(t) for t in (T0 + 2 * HOUR, T0 + 99 * HOUR)] == ["revoked", "revoked"]


def test_a_waiver_covers_only_its_rule_in_its_environment_while_active() -> None:
    active = waiver(**APPROVED)

    assert active.covers("no-friday-prod", "prod", T0 + HOUR)
    assert not active.covers("tests-green", "prod", T0 + HOUR)
    assert not active.covers("no-friday-prod", "staging", T0 + HOUR)
    assert not active.covers("no-friday-prod", "prod", T0 + 48 * HOUR)
    assert not waiver().covers("no-friday-prod", "prod", T0 + HOUR)


def test_of_several_active_waivers_the_one_lasting_longest_covers() -> None:
    short = waiver(**APPROVED)
    long = waiver(**APPROVED, id=WaiverId(2), expires_at=T0 + 72 * HOUR)
    expired = waiver(**APPROVED, id=WaiverId(3), expires_at=T0 + HOUR)

    assert covering([short, long, expired], "no-friday-prod", "prod", T0 + 2 * HOUR) == long
    assert covering([expired], "no-friday-prod", "prod", T0 + 2 * HOUR) is None


@pytest.mark.parametrize("seconds", [0.0, -1.0, MAX_DURATION_S + 1])
def test_a_waiver_must_last_a_positive_time_of_at_most_30_days(seconds: float) -> None:
    problem = duration_problem(seconds)

    assert problem is not None
    assert ("30d" in problem) == (seconds > 0)


def test_a_duration_of_30_days_or_less_is_fine() -> None:
    assert duration_problem(MAX_DURATION_S) is None
    assert duration_problem(48 * HOUR) is None


def test_a_waivers_events_sit_under_its_project() -> None:
    assert waiver().subject == waiver_subject("shop", 1) == "waiver/shop/1"

"""The policies Gate with Waivers: an active one excuses its rule's deny, and says so."""

from __future__ import annotations

from dataclasses import replace

from conveyor.core.errors import Location
from conveyor.policy.model import Rule
from conveyor.policy.waiver import Waiver, WaiverId
from conveyor.promotion.gates import evaluate_gates, policies_gate
from conveyor.promotion.model import GateReport, PromotionFacts
from conveyor.release.model import ReleaseId
from conveyor.spec.delivery import Approvals, Requirements

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
HOUR = 3600.0
HERE = Location("policies/release.yaml", 1, 1)
NO_THURSDAY = Rule("no-thursday", "deny", "time.weekday == 'Thu'", "not on Thursdays", HERE)
ALWAYS = Rule("always", "deny", "true", "never", HERE)
BROKEN = Rule("broken", "deny", "release.nope.nothing > 1", "broken", HERE)
REQUIRES = Requirements(policies=("no-thursday",), signed=False)


def waiver(rule: str = "no-thursday", env: str = "prod", **changes: object) -> Waiver:
    base = Waiver(
        id=WaiverId(3),
        project="shop",
        rule=rule,
        environment=env,
        reason="hotfix INC-42",
        requested_by="dev@example.com",
        requested_at=T0 - HOUR,
        expires_at=T0 + 47 * HOUR,
        decision="approved",
        decided_by="lead@example.com",
        decided_at=T0 - 60,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(*waivers: Waiver, rules: tuple[Rule, ...] = (NO_THURSDAY,)) -> PromotionFacts:
    return PromotionFacts(
        environment="prod",
        version="1.4.0",
        release_id=ReleaseId(7),
        release_digest="sha256:" + "d1" * 32,
        requester="dev@example.com",
        rules=rules,
        waivers=waivers,
    )


def test_an_active_waiver_lets_the_gate_pass_naming_the_waiver_its_reason_and_expiry() -> None:
    gate = policies_gate(facts(waiver()), REQUIRES, T0)

    assert gate.outcome == "passed"
    assert gate.reason == (
        "allowed by 'no-thursday', with 'no-thursday' waived by waiver 3 until "
        "2026-01-02T23:00:00Z (hotfix INC-42)"
    )
    assert gate.waivers == (3,)
    assert gate.retry_at == T0 + 47 * HOUR


def test_without_a_waiver_the_deny_blocks_for_good_and_says_how_to_ask_for_one() -> None:
    gate = policies_gate(facts(), REQUIRES, T0)

    assert (gate.outcome, gate.final, gate.waivers) == ("blocked", True, ())
    assert gate.reason == "denied by 'no-thursday': not on Thursdays"
    assert gate.notes == (
        "an exception to 'no-thursday' needs an approved waiver: `conveyor waiver create "
        "--rule no-thursday --env prod --expires 48h --reason ...`",
    )


def test_an_expired_pending_or_revoked_waiver_excuses_nothing() -> None:
    expired = waiver(expires_at=T0)
    pending = waiver(decision=None, decided_by=None, decided_at=None)
    revoked = waiver(revoked_by="lead@example.com", revoked_at=T0 - 1)

    for stale in (expired, pending, revoked):
        assert policies_gate(facts(stale), REQUIRES, T0).outcome == "blocked"


def test_a_waiver_of_another_rule_or_environment_excuses_nothing() -> None:
    assert policies_gate(facts(waiver(rule="other")), REQUIRES, T0).outcome == "blocked"
    assert policies_gate(facts(waiver(env="staging")), REQUIRES, T0).outcome == "blocked"


def test_a_waiver_excuses_only_its_rule_when_two_deny() -> None:
    requires = Requirements(policies=("no-thursday", "always"), signed=False)

    gate = policies_gate(facts(waiver(), rules=(NO_THURSDAY, ALWAYS)), requires, T0)

    assert gate.outcome == "blocked"
    assert gate.reason == "denied by 'always': never"


def test_a_rule_that_cannot_be_evaluated_is_never_waived() -> None:
    requires = Requirements(policies=("broken",), signed=False)

    gate = policies_gate(facts(waiver(rule="broken"), rules=(BROKEN,)), requires, T0)

    assert (gate.outcome, gate.waivers) == ("blocked", ())


def test_a_waiver_expiry_is_when_a_waiting_promotion_may_change_by_itself() -> None:
    requires = replace(REQUIRES, approvals=Approvals(1, ("approver",)))

    report = evaluate_gates(facts(waiver()), requires, T0)

    assert report.state == "blocked"
    assert report.retry_at == T0 + 47 * HOUR
    assert report.earliest_pass is None


def test_a_report_relying_on_another_waiver_is_a_different_decision() -> None:
    first = evaluate_gates(facts(waiver()), REQUIRES, T0)
    other = evaluate_gates(facts(waiver(id=WaiverId(4))), REQUIRES, T0)

    assert isinstance(first, GateReport)
    assert not first.same_as(other)

"""Each Gate of a Promotion, from facts and a frozen clock to an outcome with a reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.errors import Location
from conveyor.policy.model import Effect, Rule
from conveyor.promotion.gates import (
    after_gate,
    approvals_gate,
    evaluate_gates,
    freeze_gate,
    policies_gate,
    signed_gate,
    soak_gate,
    window_gate,
)
from conveyor.promotion.model import (
    GATES,
    Approval,
    EnvironmentState,
    PromotionFacts,
    PromotionId,
    Verdict,
)
from conveyor.release.model import ReleaseId
from conveyor.spec.delivery import Approvals, Freeze, Requirements
from conveyor.spec.windows import parse_window

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
DIGEST = "sha256:" + "d1" * 32
RELEASE = ReleaseId(7)
HERE = Location("policies/release.yaml", 1, 1)


def facts(**changes: object) -> PromotionFacts:
    base = PromotionFacts(
        environment="prod",
        version="1.4.0",
        release_id=RELEASE,
        release_digest=DIGEST,
        requester="dev@example.com",
        authors=frozenset({"ada@example.com", "ada lovelace"}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def running(
    release: int = 7, *, deployed_at: float = T0, healthy_since: float | None = T0
) -> EnvironmentState:
    return EnvironmentState("staging", ReleaseId(release), "1.4.0", deployed_at, healthy_since)


def approval(
    by: str,
    role: str = "approver",
    *,
    verdict: Verdict = "approve",
    digest: str = DIGEST,
    comment: str = "",
) -> Approval:
    return Approval(1, PromotionId(3), digest, by, role, verdict, comment, T0 + 60)


def needs(count: int = 1, roles: tuple[str, ...] = ("approver",)) -> Requirements:
    return Requirements(approvals=Approvals(count, roles))


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def rule(name: str, expression: str, effect: Effect = "deny", message: str = "no") -> Rule:
    return Rule(name, effect, expression, message, HERE)


# --- after -----------------------------------------------------------------------------


def test_after_passes_when_no_earlier_environment_is_required() -> None:
    result = after_gate(facts(), Requirements())
    assert (result.outcome, result.reason) == ("passed", "no earlier environment is required")


def test_after_blocks_until_the_release_is_deployed_in_the_previous_environment() -> None:
    result = after_gate(facts(), Requirements(after="staging"))

    assert result.outcome == "blocked"
    assert result.reason == "1.4.0 is not deployed in staging; promote it to staging first"
    assert not result.final


def test_after_blocks_when_the_previous_environment_runs_another_release() -> None:
    previous = replace(running(release=6), version="1.3.0")
    result = after_gate(facts(previous=previous), Requirements(after="staging"))

    assert result.outcome == "blocked"
    assert "staging runs 1.3.0, not 1.4.0" in result.reason


def test_after_blocks_while_the_release_is_deployed_but_not_healthy() -> None:
    result = after_gate(facts(previous=running(healthy_since=None)), Requirements(after="staging"))

    assert result.outcome == "blocked"
    assert result.reason == "1.4.0 is deployed in staging since 2026-01-01T00:00:00Z, not healthy"


def test_after_passes_when_the_release_is_healthy_in_the_previous_environment() -> None:
    result = after_gate(facts(previous=running()), Requirements(after="staging"))

    assert result.outcome == "passed"
    assert result.reason == "1.4.0 is deployed in staging and healthy since 2026-01-01T00:00:00Z"


# --- soak ------------------------------------------------------------------------------


def test_soak_waits_until_the_release_has_been_healthy_long_enough() -> None:
    clock = FrozenClock(T0)
    requires = Requirements(after="staging", soak_s=600)
    clock.advance(120)

    early = soak_gate(facts(previous=running()), requires, clock.now())
    clock.advance(480)
    done = soak_gate(facts(previous=running()), requires, clock.now())

    assert early.outcome == "waiting"
    assert early.retry_at == T0 + 600
    assert early.reason == (
        "healthy in staging since 2026-01-01T00:00:00Z; the 10m soak ends at 2026-01-01T00:10:00Z"
    )
    assert done.outcome == "passed"


def test_soak_blocks_while_the_release_is_not_healthy_in_the_previous_environment() -> None:
    requires = Requirements(after="staging", soak_s=600)

    absent = soak_gate(facts(), requires, T0)
    unhealthy = soak_gate(facts(previous=running(healthy_since=None)), requires, T0)

    assert absent.outcome == unhealthy.outcome == "blocked"
    assert absent.retry_at is None
    assert "soak starts once 1.4.0 is healthy in staging" in absent.reason


@pytest.mark.parametrize(
    ("soak_s", "words"), [(600, "10m"), (7200, "2h"), (5400, "1h30m"), (45, "45.0s")]
)
def test_soak_times_read_as_people_write_them(soak_s: float, words: str) -> None:
    result = soak_gate(facts(previous=running()), Requirements(after="staging", soak_s=soak_s), T0)

    assert f"the {words} soak ends" in result.reason


def test_soak_passes_when_none_is_required() -> None:
    assert soak_gate(facts(), Requirements(after="staging"), T0).outcome == "passed"


# --- approvals -------------------------------------------------------------------------


def test_approvals_pass_when_none_are_required() -> None:
    assert approvals_gate(facts(), Requirements()).reason == "no approvals are required"


def test_approvals_block_until_enough_people_in_allowed_roles_approved() -> None:
    one = facts(approvals=(approval("lead@example.com"),))

    missing = approvals_gate(facts(), needs(2, ("approver", "release-manager")))
    half = approvals_gate(one, needs(2, ("approver", "release-manager")))
    enough = approvals_gate(one, needs(1))

    assert missing.outcome == half.outcome == "blocked"
    assert missing.reason.startswith("0 of 2 approvals; needs 2 more from someone with the role ")
    assert "approver or release-manager" in missing.reason
    assert half.reason.startswith("1 of 2 approvals (by lead@example.com (approver)); needs 1 more")
    assert (enough.outcome, enough.reason) == ("passed", "approved by lead@example.com (approver)")


@pytest.mark.parametrize(
    ("recorded", "note"),
    [
        (approval("dev@example.com"), "dev@example.com requested the promotion"),
        (approval("ada@example.com"), "ada@example.com wrote or committed a change"),
        (approval("ada lovelace"), "ada lovelace wrote or committed a change"),
        (approval("lead@example.com", "developer"), "approved as developer, which may not"),
        (
            approval("lead@example.com", digest="sha256:" + "00" * 32),
            "lead@example.com's approval is for another release identity",
        ),
    ],
)
def test_an_approval_that_breaks_segregation_of_duties_does_not_count(
    recorded: Approval, note: str
) -> None:
    result = approvals_gate(facts(approvals=(recorded,)), needs())

    assert result.outcome == "blocked"
    assert result.reason.startswith("0 of 1 approvals")
    assert len(result.notes) == 1
    assert note in result.notes[0]


def test_two_approvals_by_one_person_count_once() -> None:
    twice = (approval("lead@example.com"), approval("lead@example.com", "release-manager"))

    result = approvals_gate(facts(approvals=twice), needs(2, ("approver", "release-manager")))

    assert result.outcome == "blocked"
    assert result.reason.startswith("1 of 2 approvals")


def test_a_rejection_blocks_for_good_with_who_and_why() -> None:
    recorded = (
        approval("lead@example.com"),
        approval("rm@example.com", "release-manager", verdict="reject", comment="not in Dec"),
    )

    result = approvals_gate(facts(approvals=recorded), needs(1, ("approver", "release-manager")))

    assert (result.outcome, result.final) == ("blocked", True)
    assert result.reason == "rejected by rm@example.com (release-manager): not in Dec"


# --- window ----------------------------------------------------------------------------


def test_the_window_passes_inside_it() -> None:
    requires = Requirements(windows=(parse_window("Mon-Fri 08:00-17:00 Europe/Berlin"),))
    now = utc("2026-01-06T09:00:00")  # Tuesday 10:00 in Berlin

    result = window_gate(requires, now)

    assert result.outcome == "passed"
    assert result.reason == "inside the window 'Mon-Fri 08:00-17:00 Europe/Berlin'"


def test_outside_the_window_it_waits_until_it_opens() -> None:
    requires = Requirements(windows=(parse_window("Mon-Thu 08:00-17:00 Europe/Berlin"),))
    clock = FrozenClock(utc("2026-01-02T12:00:00"))  # Friday

    closed = window_gate(requires, clock.now())
    clock.advance(closed.retry_at - clock.now() if closed.retry_at else 0)
    opened = window_gate(requires, clock.now())

    assert closed.outcome == "waiting"
    assert closed.retry_at == utc("2026-01-05T07:00:00")  # Monday 08:00 in Berlin
    assert closed.reason.endswith("the next opens at 2026-01-05T07:00:00Z")
    assert opened.outcome == "passed"


def test_with_several_windows_it_waits_for_the_first_to_open() -> None:
    requires = Requirements(
        windows=(parse_window("Mon 08:00-09:00 UTC"), parse_window("Sat 10:00-11:00 UTC"))
    )

    result = window_gate(requires, utc("2026-01-02T12:00:00"))

    assert result.retry_at == utc("2026-01-03T10:00:00")
    assert "outside the windows 'Mon 08:00-09:00 UTC', 'Sat 10:00-11:00 UTC'" in result.reason


# --- freeze ----------------------------------------------------------------------------


def freeze(start: str, end: str, reason: str) -> Freeze:
    return Freeze(
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
        reason,
    )


YEAR_END = freeze("2026-12-20T00:00:00", "2027-01-04T00:00:00", "year-end freeze")


def test_a_freeze_blocks_with_its_reason_until_it_ends() -> None:
    requires = Requirements(freezes=(YEAR_END,))

    result = freeze_gate(requires, utc("2026-12-24T12:00:00"))

    assert (result.outcome, result.final) == ("blocked", False)
    assert result.reason == "frozen until 2027-01-04T00:00:00Z: year-end freeze"
    assert result.retry_at == utc("2027-01-04T00:00:00")


def test_a_freeze_that_runs_into_another_blocks_until_the_last_ends() -> None:
    audit = freeze("2027-01-03T00:00:00", "2027-01-10T00:00:00", "audit")
    requires = Requirements(freezes=(YEAR_END, audit))

    result = freeze_gate(requires, utc("2026-12-24T12:00:00"))

    assert result.retry_at == utc("2027-01-10T00:00:00")


def test_outside_every_freeze_the_gate_passes() -> None:
    requires = Requirements(freezes=(YEAR_END,))

    assert freeze_gate(requires, utc("2027-01-04T00:00:00")).reason == "no freeze now"
    assert freeze_gate(Requirements(), T0).reason == "no freeze is declared"


# --- policies --------------------------------------------------------------------------


def test_policies_pass_when_none_are_required() -> None:
    assert policies_gate(facts(), Requirements(), T0).outcome == "passed"


def test_a_denying_rule_blocks_for_good_with_its_message() -> None:
    rules = (rule("no-thursday", "time.weekday == 'Thu'", message="not on {time.weekday}"),)

    result = policies_gate(facts(rules=rules), Requirements(policies=("no-thursday",)), T0)

    assert (result.outcome, result.final) == ("blocked", True)
    assert result.reason == "denied by 'no-thursday': not on Thu"


def test_a_warning_rule_passes_with_the_warning_as_a_note() -> None:
    rules = (rule("careful", "true", effect="warn", message="watch the rollout"),)

    result = policies_gate(facts(rules=rules), Requirements(policies=("careful",)), T0)

    assert result.outcome == "passed"
    assert result.notes == ("'careful' warns: watch the rollout",)


def test_a_rule_that_cannot_be_evaluated_blocks_fail_closed() -> None:
    rules = (rule("first", "approvals[0].role != 'approver'"),)

    result = policies_gate(facts(rules=rules), Requirements(policies=("first",)), T0)

    assert (result.outcome, result.final) == ("blocked", True)
    assert "rule 'first' failed, so it denies" in result.reason


def test_a_required_rule_no_file_defines_blocks_fail_closed() -> None:
    result = policies_gate(facts(), Requirements(policies=("tests-green",)), T0)

    assert (result.outcome, result.final) == ("blocked", True)
    assert "requires policy rule 'tests-green', which no rule file defines" in result.reason


def test_rules_see_the_time_of_the_decision_and_the_approvals_so_far() -> None:
    rules = (rule("two-people", "approvals.size() < 1 || time.date != '2026-01-01'"),)
    requires = Requirements(policies=("two-people",))

    before = policies_gate(facts(rules=rules), requires, T0)
    after = policies_gate(
        facts(rules=rules, approvals=(approval("lead@example.com"),)), requires, T0
    )

    assert (before.outcome, after.outcome) == ("blocked", "passed")


# --- signed ----------------------------------------------------------------------------


def test_artifacts_that_do_not_match_their_digests_block_for_good() -> None:
    problems = ("artifact dist/app.whl is sha256:0000, not the released sha256:d1d1",)

    result = signed_gate(facts(artifact_problems=problems), Requirements())

    assert (result.outcome, result.final, result.reason) == ("blocked", True, problems[0])


def test_matching_artifacts_pass_and_an_unsigned_environment_is_not_checked() -> None:
    problems = ("artifact dist/app.whl is not in the content store",)

    assert signed_gate(facts(), Requirements()).outcome == "passed"
    assert signed_gate(facts(artifact_problems=problems), Requirements(signed=False)).reason == (
        "not required (signed: false)"
    )


# --- the report ------------------------------------------------------------------------


def test_every_gate_is_reported_in_order_and_all_passing_approves() -> None:
    report = evaluate_gates(facts(), Requirements(), T0)

    assert tuple(gate.gate for gate in report.gates) == GATES
    assert report.state == "approved"
    assert report.evaluated_at == T0


def test_a_blocking_gate_blocks_and_a_waiting_one_alone_leaves_it_pending() -> None:
    window = Requirements(windows=(parse_window("Mon 08:00-09:00 UTC"),))
    blocked = evaluate_gates(facts(), replace(window, approvals=Approvals(1, ("approver",))), T0)
    pending = evaluate_gates(facts(), window, T0)

    assert blocked.state == "blocked"
    assert pending.state == "pending"
    assert pending.retry_at == utc("2026-01-05T08:00:00")
    assert not pending.final


def test_the_same_situation_later_gives_the_same_gates() -> None:
    requires = Requirements(
        after="staging", soak_s=600, windows=(parse_window("Mon 08:00-09:00 UTC"),)
    )
    first = evaluate_gates(facts(previous=running()), requires, T0 + 10)
    again = evaluate_gates(facts(previous=running()), requires, T0 + 20)

    assert again.same_as(first)
    assert again.evaluated_at != first.evaluated_at

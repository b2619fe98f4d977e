"""Evaluating rules: deny wins, guards, failing closed, messages, zones and daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.core.errors import Location, NotFound
from conveyor.policy.decision_input import DecisionInput, time_facts
from conveyor.policy.evaluate import UnknownRule, check_required, evaluate
from conveyor.policy.model import Effect, Rule
from conveyor.policy.reading import read_input
from conveyor.spec.delivery import Environment, Requirements

HERE = Location("policies/test.yaml", 1, 1)


def rule(
    name: str,
    expression: str,
    *,
    effect: Effect = "deny",
    message: str = "stopped",
    when: str | None = None,
    zone: str = "UTC",
) -> Rule:
    return Rule(name, effect, expression, message, HERE, when=when, zone=zone)


def at(iso: str) -> DecisionInput:
    return DecisionInput(time=time_facts(datetime.fromisoformat(iso)))


def test_no_rules_allow() -> None:
    decision = evaluate([], DecisionInput())
    assert decision.outcome == "allow"
    assert decision.results == ()


def test_a_deny_wins_over_a_warn() -> None:
    rules = [rule("w", "true", effect="warn", message="careful"), rule("d", "true")]
    decision = evaluate(rules, DecisionInput())
    assert decision.outcome == "deny"
    assert decision.reasons == ("careful", "stopped")


def test_a_warn_alone_warns() -> None:
    rules = [rule("w", "true", effect="warn"), rule("d", "false")]
    decision = evaluate(rules, DecisionInput())
    assert decision.outcome == "warn"
    assert [result.outcome for result in decision.results] == ["warn", "allow"]


def test_a_false_guard_means_the_rule_does_not_apply() -> None:
    guarded = rule("prod-only", "true", when="environment.name == 'prod'")
    result = evaluate([guarded], read_input({"environment": {"name": "staging"}})).results[0]
    assert (result.outcome, result.applied, result.message) == ("allow", False, None)


def test_a_true_guard_lets_the_rule_decide() -> None:
    guarded = rule("prod-only", "true", when="environment.name == 'prod'")
    result = evaluate([guarded], read_input({"environment": {"name": "prod"}})).results[0]
    assert (result.outcome, result.applied) == ("deny", True)


def test_an_evaluation_error_denies_and_says_which_rule_failed() -> None:
    first = rule("first-approver", "approvals[0].role != 'approver'")
    decision = evaluate([first], DecisionInput())
    [result] = decision.results
    assert result.outcome == "deny"
    assert result.error == (
        "its 'deny' cannot be evaluated: a list index is out of range (the list may be empty)"
    )
    assert result.message == f"rule 'first-approver' failed, so it denies: {result.error}"
    assert decision.errors == (result,)


def test_a_normal_deny_is_not_an_error() -> None:
    decision = evaluate([rule("d", "true")], DecisionInput())
    assert decision.errors == ()


def test_a_type_error_fails_closed_even_for_a_warning_rule() -> None:
    mixed = rule("mixed", "release.version > 1", effect="warn")
    result = evaluate([mixed], DecisionInput()).results[0]
    assert result.outcome == "deny"
    assert result.error is not None
    assert "wrong types" in result.error


def test_a_guard_that_cannot_be_evaluated_fails_closed() -> None:
    broken = rule("b", "false", when="approvals[0].by == 'x'")
    result = evaluate([broken], DecisionInput()).results[0]
    assert result.outcome == "deny"
    assert result.error is not None
    assert result.error.startswith("its 'when' cannot be evaluated")


def test_a_message_shows_values_from_the_input() -> None:
    tests = rule("tests-green", "release.tests.failed > 0", message="{release.tests.failed} failed")
    roles = rule(
        "roles", "true", message="roles: {requester.roles}; came from {environment.previous}"
    )
    facts = read_input(
        {"release": {"tests": {"failed": 3}}, "requester": {"roles": ["developer", "admin"]}}
    )
    assert evaluate([tests, roles], facts).reasons == (
        "3 failed",
        "roles: developer, admin; came from none",
    )


def test_doubled_braces_in_a_message_are_literal() -> None:
    braces = rule("b", "true", message="{{release.version}} is {release.version}")
    facts = read_input({"release": {"version": "1.2.0"}})
    assert evaluate([braces], facts).reasons == ("{release.version} is 1.2.0",)


def test_names_choose_the_rules_and_their_order() -> None:
    rules = [rule("a", "false"), rule("b", "false"), rule("c", "false")]
    decision = evaluate(rules, DecisionInput(), ["c", "a", "c"])
    assert [result.rule for result in decision.results] == ["c", "a"]


def test_an_unknown_required_rule_names_the_environment_and_the_closest_rule() -> None:
    rules = [rule("no-friday-prod", "false"), rule("tests-green", "false")]
    facts = read_input({"environment": {"name": "prod"}})
    with pytest.raises(UnknownRule) as caught:
        evaluate(rules, facts, ["no-friday-prd"])
    assert isinstance(caught.value, NotFound)
    assert str(caught.value) == (
        "environment 'prod' requires policy rule 'no-friday-prd', which no rule file "
        "defines; did you mean 'no-friday-prod'?"
    )


def test_an_environment_requiring_an_unknown_rule_is_located_at_the_environment() -> None:
    where = Location("conveyor.yaml", 12, 7)
    prod = Environment("prod", where, requires=Requirements(policies=("tests-gren",)))
    [issue] = check_required([rule("tests-green", "false")], [prod])
    assert issue.location == where
    assert issue.message == (
        "environment 'prod' requires policy rule 'tests-gren', which no rule file defines"
    )
    assert issue.hint == "did you mean 'tests-green'?"


FRIDAY = "time.weekday == 'Fri' && time.hour >= 12"


def test_time_is_seen_in_utc_by_default() -> None:
    decision = evaluate([rule("friday", FRIDAY)], at("2026-11-27T11:30:00+00:00"))
    assert decision.outcome == "allow"


def test_a_rule_in_a_zone_sees_local_time() -> None:
    berlin = rule("friday", FRIDAY, zone="Europe/Berlin")
    # 11:30 UTC is 12:30 in Berlin in November (UTC+1).
    assert evaluate([berlin], at("2026-11-27T11:30:00+00:00")).outcome == "deny"


def test_two_rules_in_different_zones_see_the_same_instant_each_in_its_own() -> None:
    local = "{time.weekday} {time.hour}:{time.minute} {time.zone}"
    rules = [
        rule("utc", "true", message=local),
        rule("tokyo", "true", message=local, zone="Asia/Tokyo"),
    ]
    decision = evaluate(rules, at("2026-11-27T20:05:00+00:00"))
    assert decision.reasons == ("Fri 20:5 UTC", "Sat 5:5 Asia/Tokyo")


def test_local_hours_follow_the_spring_daylight_saving_change() -> None:
    hour = rule("h", "true", message="{time.hour} {time.iso}", zone="Europe/Berlin")
    before = evaluate([hour], at("2026-03-29T00:30:00+00:00")).reasons
    after = evaluate([hour], at("2026-03-29T01:30:00+00:00")).reasons
    assert before == ("1 2026-03-29T01:30:00+01:00",)
    assert after == ("3 2026-03-29T03:30:00+02:00",)


def test_the_repeated_hour_of_the_autumn_change_is_told_apart_by_its_offset() -> None:
    hour = rule("h", "time.hour == 2", message="{time.iso}", zone="Europe/Berlin")
    first = evaluate([hour], at("2026-10-25T00:30:00+00:00")).reasons
    second = evaluate([hour], at("2026-10-25T01:30:00+00:00")).reasons
    assert first == ("2026-10-25T02:30:00+02:00",)
    assert second == ("2026-10-25T02:30:00+01:00",)


def test_a_rule_can_compare_instants_as_cel_timestamps() -> None:
    fresh = rule(
        "fresh-approval",
        "approvals.exists(a, timestamp(time.iso) - timestamp(a.at) > duration('24h'))",
    )
    facts = read_input(
        {
            "time": {"iso": "2026-11-27T13:00:00+01:00"},
            "approvals": [{"by": "a", "role": "approver", "at": "2026-11-25T09:00:00Z"}],
        }
    )
    assert evaluate([fresh], facts).outcome == "deny"


OUTCOME_RULES = st.lists(
    st.tuples(st.sampled_from(["deny", "warn"]), st.sampled_from(["true", "false", "[][0]"])),
    max_size=6,
)


@given(OUTCOME_RULES)
def test_the_decision_is_the_strongest_outcome_of_its_rules(specs: list[tuple[str, str]]) -> None:
    rules = [
        rule(f"r{i}", expression, effect="deny" if effect == "deny" else "warn")
        for i, (effect, expression) in enumerate(specs)
    ]
    decision = evaluate(rules, DecisionInput())
    outcomes = {result.outcome for result in decision.results}
    expected = "deny" if "deny" in outcomes else "warn" if "warn" in outcomes else "allow"
    assert decision.outcome == expected
    for (effect, expression), result in zip(specs, decision.results, strict=True):
        assert result.outcome == {"true": effect, "false": "allow", "[][0]": "deny"}[expression]
        assert (result.error is not None) == (expression == "[][0]")


def test_time_facts_need_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="time zone"):
        time_facts(datetime(2026, 1, 1))


def test_time_facts_describe_utc_with_its_offset() -> None:
    facts = time_facts(datetime(2026, 11, 27, 13, 0, tzinfo=UTC))
    assert (facts.iso, facts.weekday, facts.date) == (
        "2026-11-27T13:00:00+00:00",
        "Fri",
        "2026-11-27",
    )

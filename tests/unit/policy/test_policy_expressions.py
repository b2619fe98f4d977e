"""Rule expressions are checked against the decision input's shape before they ever run."""

from __future__ import annotations

import pytest

from conveyor.policy.expressions import check_expression

VALID = [
    "time.weekday == 'Fri' && time.hour >= 12",
    "approvals.exists(a, a.role == 'approver' && a.by != requester.name)",
    "approvals.filter(a, a.role == 'approver').size() < 2",
    "approvals.map(a, a.by).exists(b, b == requester.name)",
    "size(approvals) >= 2",
    "requester.roles.exists(r, r == 'admin')",
    "has(release.tests.failed)",
    "approvals[0].role == 'approver'",
    "release['tests'].failed > 0",
    "environment.previous == null",
    "!(time.weekday in ['Sat', 'Sun'])",
    "release.change.lines_added + release.change.lines_removed > 1000",
    "timestamp(time.iso) - timestamp(approvals[0].at) < duration('1h')",
    "previous_deployments.exists(d, d.environment == environment.previous"
    " && d.version == release.version && d.outcome == 'succeeded')",
    "release.version.startsWith('0.') ? release.tests.failed > 0 : false",
]


@pytest.mark.parametrize("source", VALID)
def test_an_expression_over_the_documented_input_has_no_problems(source: str) -> None:
    assert check_expression(source) == []


@pytest.mark.parametrize(
    ("source", "offset", "message", "hint"),
    [
        ("relase.version == '1'", 0, "unknown variable 'relase'", "did you mean 'release'?"),
        ("env.name == 'prod'", 0, "unknown variable 'env'", "did you mean 'environment'?"),
        ("tests.failed > 0", 0, "unknown variable 'tests'", "did you mean 'release.tests'?"),
        ("hour > 3", 0, "unknown variable 'hour'", "did you mean 'time.hour'?"),
        (
            "approvals.exists(a, a.bye == 'x')",
            22,
            "a has no field 'bye'",
            "did you mean 'by'?",
        ),
        (
            "release['tests'].faild > 1",
            17,
            "release['tests'] has no field 'faild'",
            "did you mean 'failed'?",
        ),
        (
            "approvals.by == 'x'",
            10,
            "approvals is a list; it has no field 'by'",
            "pick one, like approvals[0].by, or test each with approvals.exists(x, ...)",
        ),
        ("time.hour.x > 1", 10, "time.hour is a number; it has no fields", None),
        ("foo(1)", 0, "unknown function 'foo'", None),
    ],
)
def test_a_name_that_is_not_in_the_input_is_found_with_a_suggestion(
    source: str, offset: int, message: str, hint: str | None
) -> None:
    assert check_expression(source) == [(offset, message, hint)]


def test_an_expression_that_gives_a_list_says_how_to_test_it() -> None:
    [(_, message, hint)] = check_expression("approvals")
    assert message == "the expression gives a list, not true or false"
    assert hint == "test it, like size(approvals) > 0 or approvals.exists(x, ...)"


def test_an_empty_expression_is_a_problem() -> None:
    [(_, message, _)] = check_expression("  ")
    assert message == "the expression is empty"


def test_a_quote_that_is_never_closed_is_a_syntax_problem() -> None:
    [(_, message, _)] = check_expression("environment.name == 'prod")
    assert message == "a quoted text in the expression is never closed"


def test_every_unknown_name_is_reported_in_source_order() -> None:
    found = check_expression("relase.version == '1' && enviroment.name == 'x'")
    assert [offset for offset, _, _ in found] == [0, 25]

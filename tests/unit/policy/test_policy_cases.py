"""Policy tests: example inputs with expected outcomes, run against the rules."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.policy.cases import Case, read_cases, run_cases
from conveyor.policy.loader import read_rules

RULES = read_rules(
    {
        "policies/release.yaml": b"""\
version: 1
zone: Europe/Berlin
rules:
  - name: no-friday-prod
    when: environment.name == 'prod'
    deny: time.weekday == 'Fri' && time.hour >= 12
    message: "Friday afternoon: promote on Monday"
  - name: tests-green
    deny: release.tests.failed > 0
    message: "{release.tests.failed} test(s) failed"
  - name: first-approver
    warn: approvals[0].role != 'release-manager'
    message: the first approval is not by a release manager
"""
    }
)
FILE = "policies/tests/release.yaml"


def cases_from(text: str) -> tuple[Case, ...]:
    return read_cases({FILE: textwrap.dedent(text).encode()}, RULES)


def issues(text: str) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        cases_from(text)
    return caught.value.issues


def test_a_case_that_meets_its_expectations_passes() -> None:
    cases = cases_from(
        """\
        version: 1
        cases:
          - name: friday afternoon prod is denied
            input:
              environment: {name: prod}
              time: {iso: "2026-11-27T13:00:00+01:00"}
              approvals: [{by: ann, role: release-manager, at: "2026-11-27T09:00:00Z"}]
            expect: {outcome: deny, rules: {no-friday-prod: deny, tests-green: allow}}
        """
    )
    [result] = run_cases(RULES, cases)
    assert result.passed
    assert result.case.name == "friday afternoon prod is denied"
    assert str(result.case.location) == f"{FILE}:3:5"


def test_a_case_that_does_not_names_each_difference() -> None:
    cases = cases_from(
        """\
        version: 1
        cases:
          - name: failed tests are fine (they are not)
            input: {release: {tests: {failed: 2}}}
            expect: {outcome: allow, rules: {tests-green: allow}}
        """
    )
    [result] = run_cases(RULES, cases)
    assert not result.passed
    assert [(m.subject, m.expected, m.actual, m.detail) for m in result.mismatches] == [
        ("outcome", "allow", "deny", None),
        ("tests-green", "allow", "deny", "2 test(s) failed"),
    ]


def test_a_rule_that_cannot_be_evaluated_is_expected_as_an_error_not_a_deny() -> None:
    cases = cases_from(
        """\
        version: 1
        cases:
          - name: no approvals yet
            expect: {outcome: deny, rules: {first-approver: error}}
          - name: no approvals yet, as a plain deny
            expect: {rules: {first-approver: deny}}
        """
    )
    as_error, as_deny = run_cases(RULES, cases)
    assert as_error.passed
    [miss] = as_deny.mismatches
    assert (miss.expected, miss.actual) == ("deny", "error")


def test_every_problem_in_a_case_file_is_located() -> None:
    found = issues(
        """\
        version: 1
        cases:
          - name: one
            input: {release: {tests: {faild: 1}}, time: {iso: "2026-11-27T13:00:00"}}
            expect: {outcome: dny, rules: {tests-gren: deny, tests-green: maybe}}
          - name: one
            expect: {}
          - name: three
            inputs: {}
            expect: {outcome: allow}
        """
    )
    assert [(str(i.location), i.message, i.hint) for i in found] == [
        (f"{FILE}:4:31", "release.tests has no field 'faild'", "did you mean 'failed'?"),
        (
            f"{FILE}:4:55",
            "time.iso must be an RFC 3339 instant, found the text '2026-11-27T13:00:00'",
            "like 2026-11-27T13:00:00+01:00, with an offset or Z",
        ),
        (f"{FILE}:5:23", "'dny' is not an outcome", "did you mean 'deny'?"),
        (f"{FILE}:5:36", "there is no rule 'tests-gren'", "did you mean 'tests-green'?"),
        (f"{FILE}:5:67", "'maybe' is not an outcome", "write 'allow', 'warn', 'deny' or 'error'"),
        (
            f"{FILE}:6:11",
            f"case 'one' is defined twice; the first is at {FILE}:3:11",
            "give each case its own name",
        ),
        (f"{FILE}:7:13", "'expect' is empty", "name an 'outcome', or 'rules' outcomes"),
        (f"{FILE}:9:5", "unknown key 'inputs'", "did you mean 'input'?"),
    ]


def test_a_case_file_without_cases_says_what_to_add() -> None:
    [issue] = issues("version: 1\n")
    assert issue.message == "the file has no 'cases'"

"""`conveyor policy` end to end: check, test, eval and schema through the real command."""

from __future__ import annotations

import json

import jsonschema

from .support import Workspace, WorkspaceFactory

SPEC = """
version: 1
jobs:
  build: {run: 'true'}
delivery:
  service: payments-api
  artifacts: [dist/*.whl]
  run: python -m payments.app --port $PORT
  environments:
    - name: dev
    - name: staging
      requires: {after: dev}
    - name: prod
      requires:
        after: staging
        policies: [no-friday-prod, tests-green]
"""

RULES = """\
version: 1
zone: Europe/Berlin
rules:
  - name: no-friday-prod
    description: No production deploys on Fridays after noon (Berlin).
    when: environment.name == 'prod'
    deny: time.weekday == 'Fri' && time.hour >= 12
    message: "Friday afternoon: promote on Monday, or ask for a waiver"
  - name: tests-green
    deny: release.tests.failed > 0
    message: "{release.tests.failed} test(s) failed in the release's run"
  - name: big-change
    warn: release.change.lines_added > 1000
    message: "a big change: {release.change.lines_added} lines added"
"""

CASES = """\
version: 1
cases:
  - name: friday afternoon prod is denied
    input: {environment: {name: prod}, time: {iso: "2026-11-27T13:00:00+01:00"}}
    expect: {outcome: deny, rules: {no-friday-prod: deny, tests-green: allow}}
  - name: friday afternoon staging is allowed
    input: {environment: {name: staging}, time: {iso: "2026-11-27T13:00:00+01:00"}}
    expect: {outcome: allow}
  - name: a big change warns
    input: {release: {change: {lines_added: 5000}}}
    expect: {outcome: warn, rules: {big-change: warn}}
"""

FAILING_CASE = """\
version: 1
cases:
  - name: failed tests are allowed (they are not)
    input: {release: {tests: {failed: 3}}}
    expect: {outcome: allow}
"""


def policy_workspace(
    workspace: WorkspaceFactory, rules: str = RULES, cases: str = CASES
) -> Workspace:
    return workspace(
        SPEC, files={"policies/release.yaml": rules, "policies/tests/release.yaml": cases}
    )


def test_check_lists_valid_rules_and_exits_0(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    result = ws.cli("policy", "check")
    assert result.code == 0, result.err
    assert "3 rules in 1 file: valid" in result.out
    assert "no-friday-prod" in result.out


def test_check_as_json_describes_each_rule(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    result = ws.cli("policy", "check", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["valid"] is True
    friday = doc["rules"][0]
    assert (friday["name"], friday["effect"], friday["zone"]) == (
        "no-friday-prod",
        "deny",
        "Europe/Berlin",
    )
    assert (friday["file"], friday["line"]) == ("policies/release.yaml", 4)


def test_check_reports_every_bad_rule_located_and_exits_2(workspace: WorkspaceFactory) -> None:
    bad = RULES.replace("release.tests.failed > 0", "release.tests.faild > 0").replace(
        "time.hour >= 12", "time.hour >== 12"
    )
    ws = policy_workspace(workspace, rules=bad)
    result = ws.cli("policy", "check")
    assert result.code == 2
    assert "policies/release.yaml:7:48: unexpected '=' in the expression" in result.err
    assert "policies/release.yaml:10:25: release.tests has no field 'faild'" in result.err
    assert "hint: did you mean 'failed'?" in result.err
    assert "2 errors found" in result.err


def test_check_as_json_lists_the_errors(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace, rules=RULES.replace("zone: Europe/Berlin", "zone: Berlin"))
    result = ws.cli("policy", "check", "--json")
    assert result.code == 2
    doc = result.json()
    assert doc["valid"] is False
    [error] = doc["errors"]
    assert (error["file"], error["line"], error["column"]) == ("policies/release.yaml", 2, 7)
    assert error["message"] == "'Berlin' is not a time zone"


def test_check_finds_an_environment_requiring_an_unknown_rule(
    workspace: WorkspaceFactory,
) -> None:
    ws = policy_workspace(workspace)
    ws.spec(SPEC.replace("policies: [no-friday-prod", "policies: [no-friday-prd"))
    result = ws.cli("policy", "check")
    assert result.code == 2
    assert (
        "conveyor.yaml:12:7: environment 'prod' requires policy rule 'no-friday-prd', "
        "which no rule file defines"
    ) in result.err
    assert "hint: did you mean 'no-friday-prod'?" in result.err


def test_a_rule_name_defined_in_two_files_names_both_places(
    workspace: WorkspaceFactory,
) -> None:
    ws = policy_workspace(workspace)
    ws.write("policies/more.yaml", RULES.replace("zone: Europe/Berlin\n", ""))
    result = ws.cli("policy", "check")
    assert result.code == 2
    assert (
        "policies/release.yaml:4:11: rule 'no-friday-prod' is defined twice; "
        "the first is at policies/more.yaml:3:11"
    ) in result.err


def test_test_runs_every_case_and_exits_0_when_all_pass(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    result = ws.cli("policy", "test")
    assert result.code == 0, result.out + result.err
    assert "✓ friday afternoon prod is denied" in result.out
    assert "3 cases: 3 passed, 0 failed" in result.out


def test_a_failing_case_shows_expected_and_actual_and_exits_1(
    workspace: WorkspaceFactory,
) -> None:
    ws = policy_workspace(workspace)
    ws.write("policies/tests/wrong.yaml", FAILING_CASE)
    result = ws.cli("policy", "test")
    assert result.code == 1
    assert (
        "✗ failed tests are allowed (they are not)  (policies/tests/wrong.yaml:3:5)" in result.out
    )
    assert "    outcome: expected allow, got deny" in result.out
    assert "4 cases: 3 passed, 1 failed" in result.out


def test_test_as_json_gives_each_case_with_expected_and_actual(
    workspace: WorkspaceFactory,
) -> None:
    ws = policy_workspace(workspace, cases=FAILING_CASE)
    result = ws.cli("policy", "test", "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["passed"] is False
    assert doc["summary"] == {"cases": 1, "passed": 0, "failed": 1}
    [case] = doc["cases"]
    assert case["expected"] == {"outcome": "allow", "rules": {}}
    assert case["actual"]["outcome"] == "deny"
    assert case["actual"]["rules"]["tests-green"] == "deny"
    assert case["mismatches"] == [
        {"subject": "outcome", "expected": "allow", "actual": "deny", "detail": None}
    ]


def test_a_bad_case_file_is_bad_input(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace, cases=CASES.replace("tests-green: allow", "tests-gren: allow"))
    result = ws.cli("policy", "test")
    assert result.code == 2
    assert "policies/tests/release.yaml:5:59: there is no rule 'tests-gren'" in result.err


def write_input(ws: Workspace, data: dict[str, object]) -> None:
    ws.write("input.json", json.dumps(data))


FRIDAY_INPUT: dict[str, object] = {
    "release": {"tests": {"failed": 1}},
    "time": {"iso": "2026-11-27T13:00:00+01:00"},
}


def test_eval_prints_each_rule_and_exits_1_on_deny(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    write_input(ws, FRIDAY_INPUT)
    result = ws.cli("policy", "eval", "--input", "input.json")
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0] == "decision: deny"
    assert "its 'when' is false" in lines[1]
    assert "1 test(s) failed in the release's run" in lines[2]


def test_eval_for_an_environment_uses_only_its_rules(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    write_input(ws, {**FRIDAY_INPUT, "release": {"change": {"lines_added": 5000}}})
    result = ws.cli("policy", "eval", "--input", "input.json", "--env", "prod", "--json")
    assert result.code == 1, result.err
    doc = result.json()
    assert doc["outcome"] == "deny"
    assert [rule["rule"] for rule in doc["rules"]] == ["no-friday-prod", "tests-green"]
    assert doc["reasons"] == ["Friday afternoon: promote on Monday, or ask for a waiver"]


def test_eval_exits_0_when_rules_only_warn(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    write_input(ws, {"release": {"change": {"lines_added": 5000}}})
    result = ws.cli("policy", "eval", "-i", "input.json", "--json")
    assert result.code == 0, result.err
    assert result.json()["outcome"] == "warn"


def test_eval_reports_a_rule_that_cannot_be_evaluated_as_an_error(
    workspace: WorkspaceFactory,
) -> None:
    rules = RULES + (
        "  - name: first-approver\n"
        "    deny: approvals[0].role != 'release-manager'\n"
        "    message: the first approval must be a release manager's\n"
    )
    ws = policy_workspace(workspace, rules=rules)
    write_input(ws, {})
    result = ws.cli("policy", "eval", "-i", "input.json", "--json")
    assert result.code == 1
    failed = result.json()["rules"][-1]
    assert failed["rule"] == "first-approver"
    assert failed["outcome"] == "deny"
    assert failed["error"].startswith("its 'deny' cannot be evaluated")


def test_eval_with_a_bad_input_file_is_located(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    ws.write("input.json", '{\n  "release": {"tests": {"failed": "many"}}\n}\n')
    result = ws.cli("policy", "eval", "-i", "input.json")
    assert result.code == 2
    assert "input.json:2:35: release.tests.failed must be a whole number" in result.err


def test_eval_for_an_unknown_environment_suggests_one(workspace: WorkspaceFactory) -> None:
    ws = policy_workspace(workspace)
    write_input(ws, {})
    result = ws.cli("policy", "eval", "-i", "input.json", "--env", "prd")
    assert result.code == 2
    assert "conveyor.yaml has no environment 'prd'; did you mean 'prod'?" in result.err


def test_schema_prints_a_json_schema_that_accepts_an_input(workspace: WorkspaceFactory) -> None:
    ws = workspace(SPEC)
    result = ws.cli("policy", "schema")
    assert result.code == 0, result.err
    schema = result.json()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"version": 1, **FRIDAY_INPUT}, schema)


def test_a_workspace_without_policies_has_nothing_to_check(workspace: WorkspaceFactory) -> None:
    ws = workspace(SPEC.replace("        policies: [no-friday-prod, tests-green]\n", ""))
    check = ws.cli("policy", "check")
    assert check.code == 0, check.err
    assert "no rules yet" in check.out
    test = ws.cli("policy", "test")
    assert test.code == 0, test.err
    assert "no policy tests yet" in test.out

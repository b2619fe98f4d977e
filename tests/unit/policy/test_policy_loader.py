"""Rule files: every class of mistake is reported at its file, line and column, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.policy.loader import load_input, load_rules, read_rules

FILE = "policies/release.yaml"

GOOD = """\
version: 1
zone: Europe/Berlin
rules:
  - name: no-friday-prod
    description: No production deploys on Fridays after noon (Berlin).
    when: environment.name == 'prod'
    deny: time.weekday == 'Fri' && time.hour >= 12
    message: "Friday afternoon: promote on Monday, or ask for a waiver"
  - name: tests-green
    zone: UTC
    deny: release.tests.failed > 0
    message: "{release.tests.failed} test(s) failed in the release's run"
  - name: big-change
    warn: release.change.lines_added > 1000
    message: a big change
"""


def issues(text: str, **more: str) -> list[SpecIssue]:
    sources = {FILE: textwrap.dedent(text).encode()}
    sources.update({name: textwrap.dedent(body).encode() for name, body in more.items()})
    with pytest.raises(SpecError) as caught:
        read_rules(sources)
    return caught.value.issues


def only(text: str) -> SpecIssue:
    found = issues(text)
    assert len(found) == 1, [issue.render() for issue in found]
    return found[0]


def rule_file(body: str) -> str:
    return "version: 1\nrules:\n" + textwrap.indent(textwrap.dedent(body), "  ")


def test_a_valid_file_gives_its_rules_in_order_with_their_zones() -> None:
    rules = read_rules({FILE: GOOD.encode()})
    assert [rule.name for rule in rules] == ["no-friday-prod", "tests-green", "big-change"]
    friday, tests, big = rules
    assert friday.effect == "deny"
    assert friday.when == "environment.name == 'prod'"
    assert friday.zone == "Europe/Berlin"
    assert friday.description == "No production deploys on Fridays after noon (Berlin)."
    assert str(friday.location) == f"{FILE}:4:11"
    assert tests.zone == "UTC"
    assert big.effect == "warn"
    assert big.zone == "Europe/Berlin"


def test_an_unknown_top_level_key_suggests_rules() -> None:
    issue = only("version: 1\npolicies: []\n")
    assert str(issue.location) == f"{FILE}:2:1"
    assert issue.message == "unknown key 'policies'"
    assert issue.hint == "did you mean 'rules'?"


def test_a_missing_version_is_reported_at_the_top() -> None:
    issue = only("rules: []\n")
    assert str(issue.location) == f"{FILE}:1:1"
    assert issue.message == "the file has no 'version'"


def test_an_unsupported_version_is_located_at_its_value() -> None:
    issue = only("version: 2\nrules: []\n")
    assert str(issue.location) == f"{FILE}:1:10"
    assert issue.hint == "write 'version: 1'"


def test_an_unknown_rule_key_is_located_at_the_key_with_a_suggestion() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  message: m\n  mesage: x\n"))
    assert str(issue.location) == f"{FILE}:6:5"
    assert issue.message == "unknown key 'mesage'"
    assert issue.hint == "did you mean 'message'?"


def test_a_word_from_other_tools_is_mapped_to_ours() -> None:
    issue = only(rule_file("- name: a\n  if: 'true'\n  deny: 'true'\n  message: m\n"))
    assert issue.message == "unknown key 'if'"
    assert issue.hint == "did you mean 'when'?"


def test_a_rule_without_a_name_is_reported_at_the_rule() -> None:
    issue = only(rule_file("- deny: 'true'\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:3:5"
    assert issue.message == "a rule needs a 'name'"


def test_a_rule_name_with_spaces_suggests_a_fixed_one() -> None:
    issue = only(rule_file("- name: no friday\n  deny: 'true'\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:3:11"
    assert issue.hint == "try 'no-friday'"


def test_a_rule_needs_deny_or_warn() -> None:
    issue = only(rule_file("- name: a\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:3:5"
    assert issue.message == "rule 'a' has neither 'deny' nor 'warn'"


def test_a_rule_with_deny_and_warn_is_reported_at_warn() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  warn: 'false'\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:5:5"
    assert "has both 'deny' and 'warn'" in issue.message


def test_a_misspelt_key_is_not_also_reported_as_missing() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  mesage: m\n"))
    assert issue.message == "unknown key 'mesage'"


def test_a_rule_without_a_message_is_reported() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n"))
    assert issue.message == "a rule needs a 'message'"


def test_an_unknown_variable_is_located_inside_the_expression() -> None:
    issue = only(rule_file("- name: a\n  deny: enviroment.name == 'prod'\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:4:11"
    assert issue.message == "unknown variable 'enviroment'"
    assert issue.hint == "did you mean 'environment'?"


def test_an_unknown_field_is_located_at_the_field_with_a_suggestion() -> None:
    issue = only(rule_file("- name: a\n  deny: release.tests.faild > 0\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:4:25"
    assert issue.message == "release.tests has no field 'faild'"
    assert issue.hint == "did you mean 'failed'?"


def test_an_unknown_field_in_a_quoted_guard_is_located_inside_the_quotes() -> None:
    text = rule_file("- name: a\n  when: \"time.hur > 1\"\n  deny: 'true'\n  message: m\n")
    issue = only(text)
    assert str(issue.location) == f"{FILE}:4:17"
    assert issue.hint == "did you mean 'hour'?"


def test_a_syntax_error_is_a_bad_input_error_at_its_position() -> None:
    issue = only(rule_file("- name: a\n  deny: environment.name = 'prod'\n  message: m\n"))
    assert str(issue.location) == f"{FILE}:4:28"
    assert issue.message == "unexpected '=' in the expression"
    assert issue.hint == "compare with '=='"


def test_an_expression_in_a_block_scalar_points_at_the_value_start() -> None:
    text = rule_file(
        "- name: a\n  deny: >-\n    release.tests.failed > 0 &&\n    tim.hour > 1\n  message: m\n"
    )
    issue = only(text)
    assert str(issue.location) == f"{FILE}:4:11"
    assert issue.message == "unknown variable 'tim'"


def test_an_expression_that_is_not_true_or_false_is_refused() -> None:
    issue = only(rule_file("- name: a\n  deny: release.tests.failed\n  message: m\n"))
    assert issue.message == "the expression gives a number, not true or false"
    assert issue.hint == "compare it, like release.tests.failed > 0"


def test_an_unknown_function_suggests_the_closest() -> None:
    issue = only(rule_file("- name: a\n  deny: release.version.startWith('0.')\n  message: m\n"))
    assert issue.message == "unknown function 'startWith'"
    assert issue.hint == "did you mean 'startsWith'?"


def test_a_message_placeholder_must_name_a_field_of_the_input() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  message: 'version {relase.version}'\n"))
    assert str(issue.location) == f"{FILE}:5:24"
    assert issue.message == "the decision input has no field 'relase'"
    assert issue.hint == "did you mean 'release'?"


def test_a_message_placeholder_cannot_show_a_whole_object() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  message: '{release.tests}'\n"))
    assert issue.message == "release.tests is an object"
    assert issue.hint == "name one of its fields: 'passed', 'failed' or 'skipped'"


def test_a_lone_brace_in_a_message_is_reported() -> None:
    issue = only(rule_file("- name: a\n  deny: 'true'\n  message: 'set {x'\n"))
    assert issue.message == "a '{' without its '}'"
    assert issue.hint == "write {{ or }} for a brace itself"


def test_an_unknown_zone_suggests_the_closest_name() -> None:
    issue = only("version: 1\nzone: Europe/Berln\nrules: []\n")
    assert str(issue.location) == f"{FILE}:2:7"
    assert issue.message == "'Europe/Berln' is not a time zone"
    assert issue.hint == "did you mean 'Europe/Berlin'?"


def test_a_yaml_boolean_is_taken_as_the_cel_literal() -> None:
    [rule] = read_rules({FILE: rule_file("- name: a\n  deny: true\n  message: m\n").encode()})
    assert rule.expression == "true"


def test_a_name_defined_in_two_files_reports_both_places() -> None:
    other = rule_file("- name: tests-green\n  deny: 'false'\n  message: m\n")
    found = issues(GOOD, **{"policies/other.yaml": other})
    assert len(found) == 1
    assert str(found[0].location) == "policies/other.yaml:3:11"
    assert found[0].message == (f"rule 'tests-green' is defined twice; the first is at {FILE}:9:11")


def test_a_duplicate_name_is_found_even_when_the_first_rule_has_errors() -> None:
    text = rule_file("- name: a\n  deny: 'true'\n- name: a\n  deny: 'true'\n  message: m\n")
    messages = [issue.message for issue in issues(text)]
    assert messages == [
        "a rule needs a 'message'",
        f"rule 'a' is defined twice; the first is at {FILE}:3:11",
    ]


def test_every_problem_in_every_file_is_reported_at_once() -> None:
    text = rule_file(
        """\
        - name: a
          deny: relase.version == '1'
          message: '{release.tests}'
        - name: b
          warn: time.hour >
          message: m
          zone: Mars/Olympus
        """
    )
    found = issues(text, **{"policies/empty.yaml": ""})
    assert [str(issue.location) for issue in found] == [
        "policies/empty.yaml:1:1",
        f"{FILE}:4:11",
        f"{FILE}:5:16",
        f"{FILE}:7:22",
        f"{FILE}:9:11",
    ]
    assert (
        found[0].message == "the file is empty; expected a mapping with 'version: 1' and 'rules:'"
    )


def test_invalid_yaml_is_located() -> None:
    issue = only("version: 1\nrules:\n  - name: a\n   deny: x\n")
    assert issue.location.line == 4
    assert issue.message.startswith("invalid YAML")


def test_rule_files_are_read_and_named_as_given(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(GOOD)
    rules = load_rules([path])
    assert rules[0].location.file == str(path)


def test_an_unreadable_rule_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_rules([tmp_path / "missing.yaml"])
    assert "cannot read" in caught.value.issues[0].message


def test_an_input_file_in_json_indented_with_tabs_is_read(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{\n\t"release": {\n\t\t"tests": {"failed": 2}\n\t}\n}\n')
    assert load_input(path).release.tests.failed == 2


def test_a_problem_in_an_input_file_is_located(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"release": {"tests": {"failed": "two"}}}')
    with pytest.raises(SpecError) as caught:
        load_input(path)
    [issue] = caught.value.issues
    assert (issue.location.line, issue.location.column) == (1, 34)
    assert issue.message == (
        "release.tests.failed must be a whole number, 0 or more, found the text 'two'"
    )


def test_invalid_json_is_located_by_the_json_parser(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"release": ')
    with pytest.raises(SpecError) as caught:
        load_input(path)
    [issue] = caught.value.issues
    assert issue.message == "invalid JSON: Expecting value"
    assert (issue.location.line, issue.location.column) == (1, 13)

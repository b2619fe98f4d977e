"""Job conditions: checked when the file is read, evaluated when a run is planned."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.spec.conditions import (
    ConditionFacts,
    check_condition,
    evaluate_condition,
    explain_condition,
)
from conveyor.spec.loader import parse_pipeline

FACTS = ConditionFacts(branch="main", commit="abc123", event="push", env={"DEPLOY": "yes"})


def only(text: str) -> SpecIssue:
    with pytest.raises(SpecError) as caught:
        parse_pipeline(textwrap.dedent(text))
    found = caught.value.issues
    assert len(found) == 1, [issue.render() for issue in found]
    return found[0]


def never_changed(glob: str) -> bool:
    return False


def test_a_valid_condition_has_no_problems() -> None:
    assert check_condition("branch == 'main' && changed('src/**') || has(env.X)") == []


def test_a_single_equals_sign_is_located_inside_a_plain_value() -> None:
    issue = only("version: 1\njobs:\n  t:\n    run: x\n    if: branch = 'main'\n")
    assert str(issue.location) == "conveyor.yaml:5:16"
    assert issue.message == "unexpected '=' in the condition"
    assert issue.hint == "compare with '=='"


def test_a_syntax_error_is_located_inside_a_quoted_value() -> None:
    issue = only("version: 1\njobs:\n  t:\n    run: x\n    if: \"branch == 'a' and x\"\n")
    assert str(issue.location) == "conveyor.yaml:5:24"
    assert issue.hint == "write 'and' as '&&'"


def test_an_unknown_variable_suggests_the_closest_one() -> None:
    issue = only("version: 1\njobs:\n  t:\n    run: x\n    if: branch == 'main' || evnt == 'tag'\n")
    assert str(issue.location) == "conveyor.yaml:5:29"
    assert issue.message == "unknown variable 'evnt'"
    assert issue.hint == "did you mean 'event'?"


def test_an_unknown_function_suggests_changed() -> None:
    issue = only("version: 1\njobs:\n  t:\n    run: x\n    if: chnged('src/**')\n")
    assert str(issue.location) == "conveyor.yaml:5:9"
    assert issue.message == "unknown function 'chnged'"
    assert issue.hint == "did you mean 'changed'?"


def test_a_condition_in_a_block_scalar_points_at_the_value_start() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          t:
            run: x
            if: >-
              branch == 'main' &&
              brnch == 'x'
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:9"
    assert issue.message == "unknown variable 'brnch'"


def test_a_condition_with_escapes_points_at_the_value_start() -> None:
    issue = only('version: 1\njobs:\n  t:\n    run: x\n    if: "branch == \\"x\\" && brnch"\n')
    assert str(issue.location) == "conveyor.yaml:5:9"


def test_an_unfinished_condition_points_after_its_end() -> None:
    issue = only("version: 1\njobs:\n  t:\n    run: x\n    if: branch == 'x' &&\n")
    assert str(issue.location) == "conveyor.yaml:5:25"
    assert "ends too early" in issue.message


def test_an_unclosed_parenthesis_is_named() -> None:
    assert check_condition("(branch == 'x'") == [
        (14, "the condition ends too early; a ')' is missing", None)
    ]


def test_an_unclosed_quote_is_named() -> None:
    ((offset, message, _),) = check_condition("branch == 'main")
    assert offset == 10
    assert "never closed" in message


def test_changed_used_as_a_variable_says_to_call_it() -> None:
    assert check_condition("changed") == [
        (0, "'changed' is a function", "call it, like changed('src/**')")
    ]


def test_changed_takes_exactly_one_glob() -> None:
    ((_, message, _),) = check_condition("changed('a', 'b')")
    assert message == "changed() takes one glob, found 2 arguments"


def test_changed_takes_text() -> None:
    assert check_condition("changed(3)") == [
        (8, "changed() takes a glob as text", "write changed('src/**')")
    ]


@pytest.mark.parametrize("glob", ["../../etc/**", "/etc/passwd", "src/../../x"])
def test_changed_of_a_glob_outside_the_workspace_is_a_problem(glob: str) -> None:
    assert check_condition(f"branch == 'main' || changed('{glob}')") == [
        (
            28,
            f"changed('{glob}') leads outside the workspace, where no change is seen",
            "globs are relative to the directory that holds conveyor.yaml",
        )
    ]
    assert check_condition("changed('src/../docs/**') && changed('[')") == []


def test_variables_bound_by_macros_are_known() -> None:
    assert check_condition("['a', 'b'].exists(x, x == branch)") == []


def test_an_empty_condition_is_a_problem() -> None:
    ((_, message, _),) = check_condition("  ")
    assert message == "the condition is empty"


def test_a_condition_is_evaluated_over_the_facts() -> None:
    assert evaluate_condition("branch == 'main' && event == 'push'", FACTS, never_changed)
    assert not evaluate_condition("commit.startsWith('f')", FACTS, never_changed)


def test_changed_asks_the_callback_with_the_glob() -> None:
    asked: list[str] = []

    def changed(glob: str) -> bool:
        asked.append(glob)
        return glob == "src/**"

    assert evaluate_condition("changed('src/**')", FACTS, changed)
    assert not evaluate_condition("changed('docs/**')", FACTS, changed)
    assert asked == ["src/**", "docs/**"]


def test_env_is_a_map_that_has_can_guard() -> None:
    assert evaluate_condition("has(env.DEPLOY) && env.DEPLOY == 'yes'", FACTS, never_changed)
    assert not evaluate_condition("has(env.MISSING) && env.MISSING == 'x'", FACTS, never_changed)


def test_reading_a_missing_env_key_is_a_clear_error() -> None:
    where = Location("conveyor.yaml", 7, 9)
    with pytest.raises(SpecError) as caught:
        evaluate_condition("env.MISSING == 'x'", FACTS, never_changed, location=where)
    (issue,) = caught.value.issues
    assert issue.location == where
    assert issue.message == "the condition `env.MISSING == 'x'` reads env.MISSING, which is not set"
    assert issue.hint == "guard it: has(env.MISSING) && env.MISSING == '...'"


def test_a_condition_that_is_not_true_or_false_is_an_error() -> None:
    with pytest.raises(SpecError, match="gives the text 'main', not true or false"):
        evaluate_condition("branch", FACTS, never_changed)


def test_an_evaluation_error_names_the_expression() -> None:
    with pytest.raises(SpecError, match=r"the condition `1 / 0 == 1` cannot be evaluated"):
        evaluate_condition("1 / 0 == 1", FACTS, never_changed)


def test_explain_lists_what_the_condition_reads_in_order() -> None:
    source = "branch == 'main' && changed('src/**') || env.DEPLOY == 'yes' && has(env.X)"
    assert explain_condition(source, FACTS, never_changed) == [
        ("branch", "'main'"),
        ("changed('src/**')", "false"),
        ("env.DEPLOY", "'yes'"),
        ("env.X", "not set"),
    ]


def test_explain_of_an_invalid_condition_is_empty() -> None:
    assert explain_condition("branch ==", FACTS) == []


def test_explain_without_a_callback_leaves_changed_out() -> None:
    assert explain_condition("changed('a') && event == 'tag'", FACTS) == [("event", "'push'")]


def test_the_condition_location_is_its_value() -> None:
    pipeline = parse_pipeline("version: 1\njobs:\n  t:\n    run: x\n    if: branch == 'main'\n")
    job = pipeline.jobs[0]
    assert job.condition == "branch == 'main'"
    assert str(job.condition_location) == "conveyor.yaml:5:9"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("1 + 1", "gives a number, not true or false"),
        ("env.X", "gives text, not true or false"),
        ('size(branch) > "a"', "cannot be evaluated: '>' cannot be applied to a number and text"),
        ("'a' + 1 == 'a1'", "cannot be evaluated: '+' cannot be applied to text and a number"),
        ("branch.startsWith(1)", "a function is given a value of the wrong type"),
        # Behind changed(), which a check cannot know: it is tried both ways.
        ("changed('src/**') && env.N > 3", "'>' cannot be applied to text and a number"),
    ],
)
def test_a_condition_whose_types_cannot_work_is_found_when_the_file_is_read(
    condition: str, message: str
) -> None:
    quoted = "'" + condition.replace("'", "''") + "'"
    issue = only(f"version: 1\njobs:\n  t:\n    run: x\n    if: {quoted}\n")
    assert issue.location.line == 5  # at the value (inside its quotes, without escapes)
    assert message in issue.message
    assert "celpy" not in issue.message and "Token" not in issue.message


@pytest.mark.parametrize(
    "condition",
    [
        "int(env.COUNT) > 3",
        "[1, 2][env.I == '' ? 0 : 5] == 1",
        "env.DEPLOY == 'yes'",
        "1 / size(env.A) > 0",
    ],
)
def test_what_depends_on_a_runs_facts_is_left_to_the_run(condition: str) -> None:
    pipeline = parse_pipeline(f'version: 1\njobs:\n  t:\n    run: x\n    if: "{condition}"\n')
    assert pipeline.jobs[0].condition == condition


@pytest.mark.parametrize(
    "condition",
    [
        "[0, 1].exists(i, i == int(env.CI_NODE_INDEX))",
        "[1, 2].map(x, x * int(env.K)).size() > 0",
        "['web', 'api'].exists(s, changed('services/' + s + '/**'))",
    ],
)
def test_conditions_whose_values_decide_pass_the_check_of_the_file(condition: str) -> None:
    pipeline = parse_pipeline(f'version: 1\njobs:\n  t:\n    run: x\n    if: "{condition}"\n')
    assert pipeline.jobs[0].condition == condition


def test_changed_takes_a_glob_built_from_text() -> None:
    asked: list[str] = []

    def changed(glob: str) -> bool:
        asked.append(glob)
        return glob == "services/api/**"

    source = "['web', 'api'].exists(s, changed('services/' + s + '/**'))"
    assert evaluate_condition(source, FACTS, changed)
    assert asked == ["services/web/**", "services/api/**"]


@pytest.mark.parametrize(
    ("source", "holds"),
    [
        ("branch.matches('^ma')", True),
        ("branch.matches('^release/[0-9]+$')", False),
        ("matches(env.DEPLOY, '^y')", True),
    ],
)
def test_matches_takes_an_re2_pattern_in_both_call_forms(source: str, holds: bool) -> None:
    assert evaluate_condition(source, FACTS, never_changed) is holds


def test_a_problem_in_a_literal_block_condition_points_at_its_line_and_column() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          deploy:
            run: ./deploy
            if: |
              branch == 'main' &&
              env.TARGET = 'prod'
        """
    )
    # `=` on the block's second line: line 7, after 6 spaces of indentation and `env.TARGET `.
    assert str(issue.location) == "conveyor.yaml:7:18"

"""Problems found while reading the YAML itself, before any rule of the format."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.source import read_yaml


def issues(text: str | bytes) -> list[SpecIssue]:
    source = textwrap.dedent(text) if isinstance(text, str) else text
    with pytest.raises(SpecError) as caught:
        parse_pipeline(source)
    return caught.value.issues


def only(text: str | bytes) -> SpecIssue:
    found = issues(text)
    assert len(found) == 1, [issue.render() for issue in found]
    return found[0]


def test_a_yaml_syntax_error_points_at_the_problem_mark() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint: {run: x
        """
    )
    assert str(issue.location) == "conveyor.yaml:4:1"
    assert "invalid YAML" in issue.message
    assert "flow mapping at line 3, column 9" in issue.message


def test_an_unquoted_colon_in_a_value_suggests_quoting() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint:
            run: echo a: b
        """
    )
    assert str(issue.location) == "conveyor.yaml:4:16"
    assert "':'" in issue.message
    assert issue.hint is not None and "quotes" in issue.hint


def test_an_empty_file_says_what_a_pipeline_file_holds() -> None:
    issue = only("")
    assert str(issue.location) == "conveyor.yaml:1:1"
    assert "empty" in issue.message
    assert "version: 1" in issue.message


def test_a_file_of_comments_only_is_empty() -> None:
    assert "empty" in only("# nothing here yet\n").message


def test_a_top_level_list_is_rejected_where_it_starts() -> None:
    issue = only("\n- version: 1\n")
    assert str(issue.location) == "conveyor.yaml:2:1"
    assert "top level must be a mapping" in issue.message
    assert "found a list" in issue.message


def test_a_top_level_scalar_is_rejected() -> None:
    assert "found the text 'hello'" in only("hello\n").message


def test_a_tab_used_for_indentation_is_located_and_explained() -> None:
    issue = only("version: 1\njobs:\n\tlint:\n    run: x\n")
    assert str(issue.location) == "conveyor.yaml:3:1"
    assert "tab" in issue.message
    assert issue.hint == "replace the tab with spaces"


def test_a_tab_after_spaces_is_located_at_the_tab() -> None:
    issue = only("version: 1\njobs:\n  lint:\n  \trun: x\n")
    assert str(issue.location) == "conveyor.yaml:4:3"


def test_a_duplicate_top_level_key_names_the_line_of_the_first() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint: {run: x}
        jobs:
          test: {run: y}
        """
    )
    assert str(issue.location) == "conveyor.yaml:4:1"
    assert "duplicate key 'jobs'" in issue.message
    assert "line 2, column 1" in issue.message
    assert issue.hint is not None and "silently keep only the last" in issue.hint


def test_a_duplicate_job_is_reported_at_the_second_definition() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint:
            run: x
          lint:
            run: y
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:3"
    assert "duplicate key 'lint'" in issue.message
    assert "line 3" in issue.message


def test_a_duplicate_key_deep_in_a_job_is_found() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint:
            run: x
            env:
              A: "1"
              B: "2"
              A: "3"
        """
    )
    assert str(issue.location) == "conveyor.yaml:8:7"
    assert "duplicate key 'A'" in issue.message
    assert "line 6, column 7" in issue.message


def test_a_duplicate_key_in_a_flow_mapping_is_found() -> None:
    issue = only("version: 1\njobs: {lint: {run: x, run: y}}\n")
    assert str(issue.location) == "conveyor.yaml:2:23"
    assert "duplicate key 'run'" in issue.message


def test_more_than_one_document_is_rejected() -> None:
    issue = only("version: 1\n---\njobs: {}\n")
    assert str(issue.location) == "conveyor.yaml:2:1"
    assert "more than one YAML document" in issue.message


def test_text_that_is_not_utf8_is_located() -> None:
    issue = only(b"version: 1\njobs:\n  lint: {run: \xff}\n")
    assert str(issue.location) == "conveyor.yaml:3:15"
    assert "UTF-8" in issue.message


def test_a_control_character_is_located() -> None:
    issue = only("version: 1\njobs:\n  lint: {run: \x07}\n")
    assert str(issue.location) == "conveyor.yaml:3:15"
    assert "control character (#x07)" in issue.message


def test_an_unknown_yaml_tag_is_reported_with_the_rest() -> None:
    found = issues("version: 1\njobs:\n  lint: {run: !reference [a, b]}\n")
    assert any("unsupported YAML tag '!reference'" in issue.message for issue in found)


def test_an_alias_to_a_missing_anchor_is_a_syntax_error() -> None:
    issue = only("version: 1\njobs:\n  lint: {run: *script}\n")
    assert str(issue.location) == "conveyor.yaml:3:15"
    assert "alias" in issue.message


def test_a_list_used_as_a_key_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  ? [a, b]\n  : {run: x}\n  lint: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:3:5"
    assert "a key must be a name, found a list" in issue.message


def test_merge_keys_bring_in_the_anchored_mapping_and_explicit_keys_win() -> None:
    pipeline = parse_pipeline(
        textwrap.dedent(
            """\
            version: 1
            jobs:
              lint: &defaults
                run: ruff check .
                timeout: 5m
              test:
                <<: *defaults
                run: pytest
            """
        )
    )
    test = pipeline.job("test")
    assert test.run == "pytest"
    assert test.timeout_s == 300


def test_a_problem_in_a_merged_mapping_points_at_the_anchor() -> None:
    found = issues(
        """\
        version: 1
        x-defaults: &defaults
          timeout: 5 minutes
        jobs:
          test:
            <<: *defaults
            run: pytest
        """
    )
    rendered = [issue.render() for issue in found]
    assert len(found) == 2, rendered
    assert str(found[0].location) == "conveyor.yaml:2:1"
    assert "unknown key 'x-defaults'" in found[0].message
    assert str(found[1].location) == "conveyor.yaml:3:12"
    assert "'5 minutes' is not a duration" in found[1].message


def test_an_anchor_reused_with_a_problem_reports_it_once() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          a: &job {run: x, timeout: 5 minutes}
          b: *job
        """
    )
    assert str(issue.location) == "conveyor.yaml:3:29"


def test_positions_are_one_based_lines_and_columns_as_editors_show() -> None:
    document = read_yaml(b"version: 1\njobs:\n  lint:\n    run: x\n", "ci.yaml")
    assert str(document.positions.key(("jobs", "lint"))) == "ci.yaml:3:3"
    assert str(document.positions.value(("jobs", "lint", "run"))) == "ci.yaml:4:10"


def test_numbers_keep_the_text_they_were_written_with() -> None:
    document = read_yaml(b"a: 3.10\nb: 0x1F\n", "ci.yaml")
    assert document.data == {"a": 3.1, "b": 31}
    assert document.positions.text(("a",)) == "3.10"
    assert document.positions.text(("b",)) == "0x1F"


def test_keys_are_the_text_written_so_numeric_job_names_stay_names() -> None:
    pipeline = parse_pipeline("version: 1\njobs:\n  1: {run: x}\n  on: {run: y}\n")
    assert pipeline.names == ("1", "on")

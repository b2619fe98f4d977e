"""Needs across jobs, cycles, and matrix expansion."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.matrix import expand, expansion_name, parse_expansion_name
from conveyor.spec.pipeline import Pipeline


def load(text: str) -> Pipeline:
    return parse_pipeline(textwrap.dedent(text))


def only(text: str) -> SpecIssue:
    with pytest.raises(SpecError) as caught:
        load(text)
    found = caught.value.issues
    assert len(found) == 1, [issue.render() for issue in found]
    return found[0]


def test_an_unknown_need_suggests_the_closest_job() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint: {run: x}
          test:
            run: pytest
            needs: [lnt]
        """
    )
    assert issue.render() == (
        "conveyor.yaml:6:13: job 'test' needs 'lnt', which is not a job\n"
        "  hint: did you mean 'lint'?"
    )


def test_an_unknown_need_far_from_any_job_lists_the_jobs() -> None:
    issue = only("version: 1\njobs:\n  a: {run: x}\n  b: {run: x, needs: zzz}\n")
    assert str(issue.location) == "conveyor.yaml:4:22"
    assert issue.hint == "the jobs are 'a' or 'b'"


def test_a_job_needing_itself_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  test: {run: x, needs: [test]}\n")
    assert str(issue.location) == "conveyor.yaml:3:26"
    assert issue.message == "job 'test' needs itself"


def test_a_cycle_is_reported_once_as_its_path_at_its_first_job() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          setup: {run: x}
          a: {run: x, needs: [setup, c]}
          b: {run: x, needs: [a]}
          c: {run: x, needs: [b]}
        """
    )
    assert issue.render() == (
        "conveyor.yaml:4:3: jobs form a cycle: a -> c -> b -> a\n"
        "  hint: each job needs the next one; remove one of these needs"
    )


def test_two_separate_cycles_are_each_reported() -> None:
    with pytest.raises(SpecError) as caught:
        load(
            """\
            version: 1
            jobs:
              a: {run: x, needs: b}
              b: {run: x, needs: a}
              c: {run: x, needs: d}
              d: {run: x, needs: c}
            """
        )
    assert [issue.message for issue in caught.value.issues] == [
        "jobs form a cycle: a -> b -> a",
        "jobs form a cycle: c -> d -> c",
    ]


def test_a_single_string_need_is_a_list_of_one() -> None:
    pipeline = load("version: 1\njobs:\n  a: {run: x}\n  b: {run: x, needs: a}\n")
    assert pipeline.job("b").needs == ("a",)


def test_matrix_expansions_are_named_by_axis_values_in_written_order() -> None:
    pipeline = load(
        """\
        version: 1
        jobs:
          lint: {run: x}
          test:
            run: pytest
            matrix:
              python: ["3.11", "3.12"]
              os: [linux, macos]
              exclude: [{python: "3.11", os: macos}]
          after: {run: y}
        """
    )
    assert pipeline.names == (
        "lint",
        "test (python=3.11, os=linux)",
        "test (python=3.12, os=linux)",
        "test (python=3.12, os=macos)",
        "after",
    )
    job = pipeline.job("test (python=3.12, os=macos)")
    assert job.base_name == "test"
    assert job.matrix == {"python": "3.12", "os": "macos"}
    assert job.env["python"] == "3.12"
    assert job.env["os"] == "macos"
    assert pipeline.job("lint").base_name == "lint"


def test_matrix_values_are_text_as_written() -> None:
    pipeline = load("version: 1\njobs:\n  t: {run: x, matrix: {v: [3.10, 1e3, true, 7]}}\n")
    assert [job.matrix["v"] for job in pipeline.jobs] == ["3.10", "1e3", "true", "7"]


def test_needing_a_matrix_job_by_its_name_means_all_its_expansions() -> None:
    pipeline = load(
        """\
        version: 1
        jobs:
          test: {run: x, matrix: {python: ["3.11", "3.12"]}}
          deploy: {run: y, needs: [test]}
        """
    )
    assert pipeline.job("deploy").needs == ("test (python=3.11)", "test (python=3.12)")


def test_needing_one_expansion_by_its_name_means_that_one() -> None:
    pipeline = load(
        """\
        version: 1
        jobs:
          test: {run: x, matrix: {python: ["3.11", "3.12"], os: [linux, macos]}}
          deploy: {run: y, needs: ["test (python=3.12, os=linux)"]}
          docs: {run: y, needs: ["test (python=3.12)"]}
        """
    )
    assert pipeline.job("deploy").needs == ("test (python=3.12, os=linux)",)
    assert pipeline.job("docs").needs == (
        "test (python=3.12, os=linux)",
        "test (python=3.12, os=macos)",
    )


def test_an_expansion_that_does_not_exist_suggests_one_that_does() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          test: {run: x, matrix: {python: ["3.11", "3.12"]}}
          deploy: {run: y, needs: ["test (python=3.13)"]}
        """
    )
    assert str(issue.location) == "conveyor.yaml:4:28"
    assert "no expansion of 'test' matches" in issue.message
    assert issue.hint == "did you mean 'test (python=3.12)'?"


def test_an_expansion_of_a_job_without_a_matrix_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  a: {run: x}\n  b: {run: y, needs: ['a (v=1)']}\n")
    assert issue.message == "job 'a' has no matrix"


def test_a_matrix_job_needing_another_expands_every_edge() -> None:
    pipeline = load(
        """\
        version: 1
        jobs:
          build: {run: x, matrix: {os: [linux, macos]}}
          test: {run: y, needs: build, matrix: {os: [linux, macos]}}
        """
    )
    for job in pipeline.jobs[2:]:
        assert job.needs == ("build (os=linux)", "build (os=macos)")


def test_env_layers_file_then_job_then_matrix() -> None:
    pipeline = load(
        """\
        version: 1
        env: {A: file, B: file, DEBUG: no}
        jobs:
          t:
            run: x
            env: {B: job, C: 1.50}
            matrix: {C: [m]}
        """
    )
    job = pipeline.jobs[0]
    assert pipeline.env == {"A": "file", "B": "file", "DEBUG": "no"}  # as written
    assert job.env == {"A": "file", "B": "job", "DEBUG": "no", "C": "m"}


def test_an_empty_matrix_axis_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, matrix: {python: []}}\n")
    assert str(issue.location) == "conveyor.yaml:3:32"
    assert issue.message == "a matrix axis needs at least one value"


def test_a_matrix_without_axes_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, matrix: {}}\n")
    assert issue.message == "a matrix needs at least one axis"


def test_a_non_scalar_matrix_value_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, matrix: {python: ['3.12', {v: 3}]}}\n")
    assert str(issue.location) == "conveyor.yaml:3:41"
    assert "'matrix.python[1]' of job 't' must be text, a number or true/false" in issue.message


def test_a_matrix_axis_must_be_an_env_var_name() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, matrix: {py-version: ['3.12']}}\n")
    assert str(issue.location) == "conveyor.yaml:3:24"
    assert "'py-version' is not a valid environment variable name" in issue.message


def test_an_exclude_naming_an_unknown_axis_suggests_the_right_one() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          t:
            run: x
            matrix:
              python: ["3.11", "3.12"]
              exclude: [{pyton: "3.11"}]
        """
    )
    assert str(issue.location) == "conveyor.yaml:7:18"
    assert issue.message == "exclude names unknown axis 'pyton'"
    assert issue.hint == "did you mean 'python'?"


def test_an_exclude_naming_an_unknown_value_lists_the_values() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          t:
            run: x
            matrix:
              python: ["3.11", "3.12"]
              exclude: [{python: "2.7"}]
        """
    )
    assert str(issue.location) == "conveyor.yaml:7:26"
    assert "'2.7', which is not a value of axis 'python'" in issue.message
    assert issue.hint == "the values are '3.11' or '3.12'"


def test_an_exclude_removing_everything_is_rejected() -> None:
    issue = only(
        "version: 1\njobs:\n  t: {run: x, matrix: {os: [linux], exclude: [{os: linux}]}}\n"
    )
    assert "removes every combination" in issue.message


def test_a_repeated_matrix_value_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, matrix: {python: ['3.12', '3.12']}}\n")
    assert str(issue.location) == "conveyor.yaml:3:41"
    assert "'3.12' appears twice in matrix axis 'python'" in issue.message


def test_a_huge_matrix_is_rejected() -> None:
    values = ", ".join(str(n) for n in range(20))
    text = f"version: 1\njobs:\n  t:\n    run: x\n    matrix: {{a: [{values}], b: [{values}]}}\n"
    issue = only(text)
    assert "expands to 400 jobs; at most 256" in issue.message


def test_expansion_names_parse_back() -> None:
    values = {"python": "3.12", "os": "linux"}
    name = expansion_name("test", values)
    assert name == "test (python=3.12, os=linux)"
    assert parse_expansion_name(name) == ("test", values)
    assert parse_expansion_name("test") is None


def test_expand_keeps_product_order_and_applies_excludes() -> None:
    expansions = expand("t", {"a": ["1", "2"], "b": ["x", "y"]}, [{"a": "1", "b": "y"}])
    assert [e.name for e in expansions] == ["t (a=1, b=x)", "t (a=2, b=x)", "t (a=2, b=y)"]


@pytest.mark.parametrize(
    "values", [["", "serde", "serde,derive"], ["django>=4.2,<5.0"], ["a=b", "x(1)", "node@20"]]
)
def test_matrix_values_are_free_text(values: list[str]) -> None:
    pipeline = load(f"version: 1\njobs:\n  a: {{run: x, matrix: {{v: {values!r}}}}}\n")
    assert [job.matrix["v"] for job in pipeline.jobs] == values


def test_two_combinations_that_would_share_a_name_are_rejected() -> None:
    # `a (x=1, y=2, y=2)` twice: a value holding ', y=2' reads as another axis.
    issue = only(
        "version: 1\njobs:\n  a: {run: x, matrix: {x: ['1, y=2', '1'], y: ['2', '2, y=2']}}\n"
    )
    assert str(issue.location) == "conveyor.yaml:3:15"
    assert "would name their jobs alike, (x=1, y=2, y=2)" in issue.message


@pytest.mark.parametrize(
    "axis", ["excluded_tests", "excluded", "exclusive", "exclude_os", "includes"]
)
def test_axis_names_built_on_exclude_or_include_are_axes(axis: str) -> None:
    pipeline = load(f"version: 1\njobs:\n  a: {{run: x, matrix: {{{axis}: [one]}}}}\n")
    assert pipeline.jobs[0].matrix == {axis: "one"}


def test_a_misspelled_exclude_is_not_taken_for_an_axis() -> None:
    issue = only("version: 1\njobs:\n  a: {run: x, matrix: {os: [linux, mac], exlude: [linux]}}\n")
    assert str(issue.location) == "conveyor.yaml:3:42"
    assert "'exlude' looks like a misspelled 'exclude'" in issue.message
    assert issue.hint == "did you mean 'exclude'?"


def test_a_matrix_include_says_it_is_not_supported_and_what_to_do() -> None:
    issue = only("version: 1\njobs:\n  a: {run: x, matrix: {os: [linux], include: [{os: mac}]}}\n")
    assert "'include' is not supported in a matrix" in issue.message
    assert issue.hint is not None and "exclude" in issue.hint


def test_a_misspelled_exclude_with_mappings_says_so_rather_than_their_types() -> None:
    issue = only(
        "version: 1\njobs:\n  a: {run: x, matrix: {os: [linux], exlcude: [{os: linux}]}}\n"
    )
    assert issue.message == "'exlcude' looks like a misspelled 'exclude', not an axis"


def test_a_long_chain_of_needs_with_outputs_loads() -> None:
    lines = ["version: 1", "jobs:"] + [
        f"  j{n}: {{run: x, outputs: [o/{n}.txt]{', needs: [j' + str(n - 1) + ']' if n else ''}}}"
        for n in range(1500)
    ]
    assert len(load("\n".join(lines) + "\n").jobs) == 1500


def test_an_expansion_whose_value_holds_a_comma_can_be_needed_by_its_name() -> None:
    pipeline = load(
        """\
        version: 1
        jobs:
          test: {run: x, matrix: {features: ['serde,derive', 'std']}}
          bench: {run: y, needs: ['test (features=serde,derive)']}
        """
    )
    bench = next(job for job in pipeline.jobs if job.name == "bench")
    assert bench.needs == ("test (features=serde,derive)",)


def test_excludes_with_combinations_is_a_misspelled_exclude() -> None:
    # A name built on `exclude` is an axis, but an axis's values are never mappings.
    issue = only(
        "version: 1\njobs:\n  a: {run: x, matrix: {os: [linux, mac], excludes: [{os: mac}]}}\n"
    )
    assert issue.message == "'excludes' looks like a misspelled 'exclude', not an axis"
    assert issue.hint == "did you mean 'exclude'?"

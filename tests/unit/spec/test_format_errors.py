"""Rules of the file format: keys, types and values, each located and explained."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.spec.loader import parse_pipeline


def issues(text: str) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        parse_pipeline(textwrap.dedent(text))
    return caught.value.issues


def only(text: str) -> SpecIssue:
    found = issues(text)
    assert len(found) == 1, [issue.render() for issue in found]
    return found[0]


def test_misspelled_job_key_suggests_the_right_one() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint: {run: x}
          test:
            run: pytest
            neds: [lint]
        """
    )
    assert issue.render() == (
        "conveyor.yaml:6:5: unknown key 'neds' in job 'test'\n  hint: did you mean 'needs'?"
    )


def test_a_key_from_another_ci_system_suggests_ours() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          test:
            run: pytest
            enviroment: {A: b}
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:5"
    assert issue.hint == "did you mean 'env'?"


def test_a_misspelled_top_level_key_suggests_the_right_one() -> None:
    issue = only("version: 1\njob:\n  lint: {run: x}\njobs:\n  lint: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:2:1"
    assert "unknown key 'job'" in issue.message
    assert issue.hint == "did you mean 'jobs'?"


def test_a_job_written_at_the_top_level_points_to_jobs() -> None:
    found = issues("version: 1\nlint:\n  run: x\n")
    assert [str(issue.location) for issue in found] == ["conveyor.yaml:1:1", "conveyor.yaml:2:1"]
    assert found[0].message == "the file has no 'jobs'"
    assert found[1].hint == "jobs go under 'jobs:'; indent 'lint' below it"


def test_a_job_nested_in_another_by_indentation_is_explained() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint:
            run: x
            test:
              run: y
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:5"
    assert issue.hint is not None and "check the indentation" in issue.hint


def test_an_unknown_key_in_retry_suggests_the_right_one() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: {max: 1, backof: 2s}}\n")
    assert str(issue.location) == "conveyor.yaml:3:31"
    assert "unknown key 'backof' in 'retry' of job 't'" in issue.message
    assert issue.hint == "did you mean 'backoff'?"


def test_an_unknown_key_far_from_any_lists_the_allowed_keys() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, reports: {xyzzy: a.xml}}\n")
    assert issue.hint == "expected 'junit'"


def test_a_mapping_where_a_list_of_names_belongs_says_both() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint: {run: x}
          test:
            run: pytest
            needs: {lint: true}
        """
    )
    assert str(issue.location) == "conveyor.yaml:6:12"
    assert issue.message == (
        "'needs' of job 'test' must be a job name or a list of job names, found a mapping"
    )


def test_a_number_where_text_belongs_suggests_quotes() -> None:
    issue = only("version: 1\njobs:\n  t: {run: 42}\n")
    assert str(issue.location) == "conveyor.yaml:3:12"
    assert "'run' of job 't' must be the shell script to run, as text" in issue.message
    assert "found the number 42" in issue.message
    assert issue.hint == "put it in quotes to make it text"


def test_yes_where_text_belongs_explains_yaml_booleans() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, outputs: [yes]}\n")
    assert "'outputs[0]' of job 't' must be a glob, found 'true'" in issue.message
    assert issue.hint is not None and "yes/no/on/off" in issue.hint


def test_an_empty_value_points_at_its_key() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          t:
            run: x
            timeout:
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:5"
    assert "found an empty value" in issue.message
    assert issue.hint == "write a value after the ':', or remove the key"


def test_a_job_that_is_not_a_mapping_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: [run, x]\n")
    assert str(issue.location) == "conveyor.yaml:3:6"
    assert issue.message == "job 't' must be a mapping with at least 'run', found a list"


def test_a_job_without_run_is_located_at_its_name() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          lint:
            needs: []
        """
    )
    assert str(issue.location) == "conveyor.yaml:3:3"
    assert issue.message == "job 'lint' has no 'run'"
    assert issue.hint == "add 'run:' with the commands to run"


def test_an_empty_run_script_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: '  '}\n")
    assert str(issue.location) == "conveyor.yaml:3:12"
    assert "found empty text" in issue.message


def test_a_missing_version_asks_for_version_1() -> None:
    issue = only("jobs:\n  t: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:1:1"
    assert issue.message == "the file has no 'version'"
    assert issue.hint == "add 'version: 1' at the top of the file"


def test_an_unsupported_version_names_the_supported_one() -> None:
    issue = only("version: 2\njobs:\n  t: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:1:10"
    assert "unsupported version 2" in issue.message
    assert issue.hint == "write 'version: 1'"


def test_a_quoted_version_is_a_type_error() -> None:
    issue = only("version: '1'\njobs:\n  t: {run: x}\n")
    assert issue.message == "'version' must be the number 1, found the text '1'"


def test_empty_jobs_are_rejected() -> None:
    issue = only("version: 1\njobs: {}\n")
    assert str(issue.location) == "conveyor.yaml:2:7"
    assert "at least one job" in issue.message


def test_jobs_as_a_list_are_rejected() -> None:
    issue = only("version: 1\njobs:\n  - lint\n")
    assert str(issue.location) == "conveyor.yaml:3:3"
    assert issue.message == "'jobs' must be a mapping of job names to jobs, found a list"


def test_a_job_name_with_a_space_is_reserved_for_matrix_expansions() -> None:
    issue = only("version: 1\njobs:\n  unit tests: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:3:3"
    assert "job name 'unit tests' may only use letters, digits" in issue.message
    assert issue.hint is not None and "try 'unit-tests'" in issue.hint


def test_a_job_name_longer_than_100_characters_is_rejected() -> None:
    issue = only(f"version: 1\njobs:\n  {'a' * 101}: {{run: x}}\n")
    assert "101 characters; at most 100" in issue.message


def test_a_duration_without_a_unit_word_is_explained() -> None:
    issue = only(
        """\
        version: 1
        jobs:
          t:
            run: x
            timeout: 10 minutes
        """
    )
    assert str(issue.location) == "conveyor.yaml:5:14"
    assert "'10 minutes' is not a duration" in issue.message
    assert "'10m'" in issue.message


def test_a_bare_number_as_a_duration_asks_for_a_unit() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, timeout: 600}\n")
    assert "found the number 600; a duration needs a unit" in issue.message


def test_a_zero_timeout_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, timeout: 0s}\n")
    assert "longer than zero" in issue.message


def test_a_timeout_or_backoff_too_long_to_be_meant_is_rejected_where_written() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, timeout: 31d}\n")
    assert (str(issue.location), issue.message) == (
        "conveyor.yaml:3:24",
        "a job's timeout may be at most 30 days",
    )
    issue = only("version: 1\njobs:\n  t: {run: x, retry: {max: 1, backoff: 2d}}\n")
    assert str(issue.location) == "conveyor.yaml:3:40"
    assert "backoff may be at most 1 day" in issue.message
    issue = only("version: 1\njobs:\n  t: {run: x, timeout: 10m10m}\n")
    assert "write each unit once, the largest first" in issue.message


def test_too_many_retries_are_rejected_in_the_shorthand() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: 11}\n")
    assert str(issue.location) == "conveyor.yaml:3:22"
    assert issue.message == "retry max must be from 0 to 10, found 11"


def test_negative_retries_are_rejected_in_the_mapping() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: {max: -1}}\n")
    assert str(issue.location) == "conveyor.yaml:3:28"
    assert "found -1" in issue.message


def test_retry_as_text_is_a_type_error() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: twice}\n")
    assert "'retry' of job 't' must be a number of retries or a mapping" in issue.message


def test_retry_without_max_asks_for_it() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: {backoff: 2s}}\n")
    assert issue.message == "'retry' of job 't' has no 'max'"
    assert issue.hint == "write retry: {max: 2}, or just retry: 2"


def test_a_bad_retry_backoff_is_located() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, retry: {max: 1, backoff: soon}}\n")
    assert str(issue.location) == "conveyor.yaml:3:40"
    assert "'soon' is not a duration" in issue.message


def test_an_absolute_workdir_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, workdir: /srv/app}\n")
    assert str(issue.location) == "conveyor.yaml:3:24"
    assert "is absolute" in issue.message


def test_a_workdir_escaping_the_workspace_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, workdir: a/../../b}\n")
    assert "leads outside the workspace through '..'" in issue.message


def test_a_workdir_is_normalised() -> None:
    pipeline = parse_pipeline("version: 1\njobs:\n  t: {run: x, workdir: ./a/../b/}\n")
    assert pipeline.job("t").workdir == "b"


def test_a_bad_env_var_name_is_located_at_the_key() -> None:
    issue = only(
        """\
        version: 1
        env:
          NODE-ENV: production
        jobs:
          t: {run: x}
        """
    )
    assert str(issue.location) == "conveyor.yaml:3:3"
    assert "'NODE-ENV' is not a valid environment variable name" in issue.message
    assert issue.hint is not None and "'NODE_ENV'" in issue.hint


def test_an_env_value_that_is_a_list_is_rejected() -> None:
    issue = only("version: 1\njobs:\n  t: {run: x, env: {A: [1, 2]}}\n")
    assert str(issue.location) == "conveyor.yaml:3:24"
    assert issue.message == "'env.A' of job 't' must be text, a number or true/false, found a list"


def test_a_bad_secret_name_is_located() -> None:
    issue = only("version: 1\nsecrets: [PYPI_TOKEN, 1TOKEN]\njobs:\n  t: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:2:23"
    assert "'1TOKEN' is not a valid environment variable name" in issue.message


def test_a_secret_listed_twice_is_reported_at_the_second() -> None:
    issue = only("version: 1\nsecrets: [A, B, A]\njobs:\n  t: {run: x}\n")
    assert str(issue.location) == "conveyor.yaml:2:17"
    assert issue.message == "secret 'A' is listed twice"


def test_a_secret_written_in_env_is_refused() -> None:
    issue = only(
        """\
        version: 1
        secrets: [PYPI_TOKEN]
        jobs:
          t:
            run: x
            env: {PYPI_TOKEN: hunter2}
        """
    )
    assert str(issue.location) == "conveyor.yaml:6:11"
    assert "'PYPI_TOKEN' is a secret" in issue.message


def test_three_different_errors_are_all_reported_at_once() -> None:
    found = issues(
        """\
        version: 1
        jobs:
          lint:
            run: ruff check .
            timeout: 10 minutes
          test:
            run: pytest
            neds: [lint]
          deploy:
            run: ./deploy
            needs: [tset]
        """
    )
    assert [str(issue.location) for issue in found] == [
        "conveyor.yaml:5:14",
        "conveyor.yaml:8:5",
        "conveyor.yaml:11:13",
    ]
    assert "not a duration" in found[0].message
    assert "unknown key 'neds'" in found[1].message
    assert "needs 'tset', which is not a job" in found[2].message


def test_problems_in_a_broken_job_do_not_hide_its_other_problems() -> None:
    found = issues(
        """\
        version: 1
        jobs:
          test:
            timeout: soon
            needs: [lnt]
            if: brnch == 'main'
        """
    )
    rendered = "\n".join(issue.render() for issue in found)
    assert "has no 'run'" in rendered
    assert "'soon' is not a duration" in rendered
    assert "needs 'lnt'" in rendered
    assert "unknown variable 'brnch'" in rendered


def test_no_message_shows_pydantic_wording() -> None:
    found = issues(
        """\
        version: x
        env: [1]
        secrets: {a: 1}
        jobs:
          t:
            run: [1]
            needs: 3
            env: {A: {b: 1}}
            inputs: {}
            outputs: 4
            reports: [1]
            timeout: []
            retry: true
            allow_failure: maybe
            cache: 0
            matrix: [1]
            if: 3
        """
    )
    assert len(found) == 15
    for issue in found:
        assert "Input should" not in issue.message
        assert "pydantic" not in issue.render()
        assert "found" in issue.message


def test_a_broken_glob_does_not_hide_the_problems_of_the_others_in_its_list() -> None:
    with pytest.raises(SpecError) as caught:
        parse_pipeline(
            "version: 1\njobs:\n  a:\n    run: x\n    inputs: ['../a', '/b']\n"
            "    outputs: [ok, 3, '../../c']\n    reports: {junit: [7, '../r.xml']}\n"
        )
    assert [(str(i.location), i.message.split(";")[0]) for i in caught.value.issues] == [
        ("conveyor.yaml:5:14", "'../a' leads outside the workspace"),
        ("conveyor.yaml:5:22", "glob '/b' is absolute"),
        ("conveyor.yaml:6:19", "'outputs[1]' of job 'a' must be a glob, found the number 3"),
        ("conveyor.yaml:6:22", "'../../c' leads outside the workspace"),
        ("conveyor.yaml:7:23", "'reports.junit[0]' of job 'a' must be a glob, found the number 7"),
        ("conveyor.yaml:7:26", "'../r.xml' leads outside the workspace"),
    ]

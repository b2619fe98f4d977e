"""`runs_on` labels and `concurrency` groups: parsed, kept through the parse cache, and every
mistake reported at its place with what to write instead."""

from __future__ import annotations

import json
import textwrap

import pytest

from conveyor.core.errors import SpecError, SpecIssue
from conveyor.spec import serialize
from conveyor.spec.loader import json_schema, parse_pipeline
from conveyor.spec.pipeline import Concurrency


def issues(text: str) -> list[SpecIssue]:
    with pytest.raises(SpecError) as caught:
        parse_pipeline(textwrap.dedent(text))
    return caught.value.issues


def only(text: str) -> SpecIssue:
    found = issues(text)
    assert len(found) == 1, found
    return found[0]


GOOD = """\
version: 1
concurrency: {group: shop-main, cancel_in_progress: true}
jobs:
  build:
    run: make
    runs_on: [linux, docker]
  gpu:
    run: make gpu
    runs_on: cuda-12.4
  deploy:
    needs: [build]
    run: ./deploy
    concurrency: deploy-prod
  release:
    run: ./release
    concurrency: {group: release}
"""


def test_runs_on_and_concurrency_become_part_of_the_pipeline() -> None:
    pipeline = parse_pipeline(GOOD)

    assert pipeline.concurrency == Concurrency("shop-main", cancel_in_progress=True)
    assert pipeline.job("build").runs_on == ("linux", "docker")
    assert pipeline.job("gpu").runs_on == ("cuda-12.4",)
    assert pipeline.job("deploy").concurrency == Concurrency("deploy-prod", False)
    assert pipeline.job("release").concurrency == Concurrency("release", False)
    assert pipeline.job("build").runs_on and pipeline.job("build").concurrency is None


def test_a_job_without_them_runs_anywhere_and_alone_is_not_serialized() -> None:
    pipeline = parse_pipeline("version: 1\njobs:\n  a: {run: 'true'}\n")

    assert pipeline.job("a").runs_on == ()
    assert pipeline.job("a").concurrency is None
    assert pipeline.concurrency is None


def test_the_parse_cache_keeps_runs_on_and_concurrency() -> None:
    pipeline = parse_pipeline(GOOD)

    again = serialize.from_dict(json.loads(json.dumps(serialize.to_dict(pipeline))))

    assert again == pipeline
    job = pipeline.job("deploy")
    assert serialize.job_from_dict(json.loads(json.dumps(serialize.job_to_dict(job)))) == job


def test_a_misspelled_runs_on_suggests_the_right_key() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    runs-on: [linux]\n")

    assert str(issue.location) == "conveyor.yaml:5:5"
    assert issue.message == "unknown key 'runs-on' in job 'a'"
    assert issue.hint == "did you mean 'runs_on'?"


def test_gitlab_tags_suggest_runs_on() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    tags: [linux]\n")

    assert issue.hint == "did you mean 'runs_on'?"


def test_a_label_with_capitals_or_spaces_is_rejected_with_a_fixed_one() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    runs_on: [linux, Big Box]\n")

    assert str(issue.location) == "conveyor.yaml:5:22"
    assert "label 'Big Box' may only use lowercase letters" in issue.message
    assert issue.hint == "try 'big-box'"


def test_a_label_listed_twice_is_reported_at_the_repeat() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    runs_on: [linux, linux]\n")

    assert str(issue.location) == "conveyor.yaml:5:22"
    assert issue.message == "label 'linux' is listed twice"


def test_a_number_as_runs_on_says_what_is_expected() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    runs_on: 5\n")

    assert issue.message == (
        "'runs_on' of job 'a' must be a label or a list of labels, like [linux, docker], "
        "found the number 5"
    )
    assert issue.hint == "put it in quotes to make it text"


def test_a_concurrency_without_a_group_says_how_to_write_one() -> None:
    issue = only(
        "version: 1\njobs:\n  a:\n    run: make\n    concurrency: {cancel_in_progress: true}\n"
    )

    assert str(issue.location).startswith("conveyor.yaml:5:")
    assert issue.message == "'concurrency' of job 'a' has no 'group'"
    assert issue.hint == "write concurrency: {group: deploy}, or just concurrency: deploy"


def test_a_misspelled_cancel_in_progress_suggests_the_right_key() -> None:
    issue = only(
        "version: 1\nconcurrency: {group: g, cancel-in-progress: true}\njobs:\n  a: {run: make}\n"
    )

    assert issue.message == "unknown key 'cancel-in-progress' in 'concurrency'"
    assert issue.hint == "did you mean 'cancel_in_progress'?"


def test_a_group_name_with_spaces_is_rejected_with_a_fixed_one() -> None:
    issue = only("version: 1\nconcurrency: deploy prod\njobs:\n  a: {run: make}\n")

    assert str(issue.location) == "conveyor.yaml:2:14"
    assert "group 'deploy prod' may only use letters" in issue.message
    assert issue.hint == "try 'deploy-prod'"


def test_an_empty_concurrency_points_at_its_key() -> None:
    issue = only("version: 1\njobs:\n  a:\n    run: make\n    concurrency:\n")

    assert str(issue.location) == "conveyor.yaml:5:5"
    assert issue.hint == "write a value after the ':', or remove the key"


def test_cancel_in_progress_must_be_true_or_false() -> None:
    issue = only(
        "version: 1\nconcurrency: {group: g, cancel_in_progress: maybe}\njobs:\n  a: {run: x}\n"
    )

    assert issue.message == (
        "'concurrency.cancel_in_progress' must be true or false, found the text 'maybe'"
    )


def test_the_json_schema_describes_runs_on_and_concurrency() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json_schema()

    jsonschema.validate(yaml.safe_load(GOOD), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"version": 1, "concurrency": {"group": "g", "x": 1}, "jobs": {"a": {"run": "x"}}},
            schema,
        )
    job = schema["$defs"]["JobModel"]["properties"]  # type: ignore[index]
    assert "description" in job["runs_on"] and "description" in job["concurrency"]

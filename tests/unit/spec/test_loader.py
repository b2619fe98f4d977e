"""The public API: load a file, parse text, publish the JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core import digest
from conveyor.core.errors import SpecError
from conveyor.spec.loader import json_schema, load_pipeline, parse_pipeline
from conveyor.spec.pipeline import RetryPolicy

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(ROOT.glob("examples/*/conveyor.yaml"))

FULL = textwrap.dedent(
    """\
    version: 1
    env: {PYTHONDONTWRITEBYTECODE: "1", WORKERS: 4, STRICT: true}
    secrets: [PYPI_TOKEN]
    jobs:
      lint:
        run: ruff check .
      test:
        needs: [lint]
        run: |
          pytest -q
          coverage report
        env: {A: b}
        workdir: services/api
        inputs: ["src/**", "pyproject.toml"]
        outputs: [dist/*.whl]
        reports: {junit: reports/*.xml}
        timeout: 10m
        retry: {max: 2, backoff: 5s}
        allow_failure: true
        cache: false
        if: branch == 'main' && changed('src/**')
      publish:
        needs: test
        run: twine upload dist/*
        inputs: []
        retry: 3
    """
)


def test_a_full_file_becomes_a_pipeline() -> None:
    pipeline = parse_pipeline(FULL)
    assert pipeline.path == "conveyor.yaml"
    assert pipeline.digest == digest.of_bytes(FULL.encode())
    assert pipeline.version == 1
    assert pipeline.env == {"PYTHONDONTWRITEBYTECODE": "1", "WORKERS": "4", "STRICT": "true"}
    assert pipeline.secrets == ("PYPI_TOKEN",)
    assert pipeline.names == ("lint", "test", "publish")
    test = pipeline.job("test")
    assert test.run == "pytest -q\ncoverage report\n"
    assert test.needs == ("lint",)
    assert test.env["A"] == "b"
    assert test.workdir == "services/api"
    assert test.inputs == ("src/**", "pyproject.toml")
    assert test.outputs == ("dist/*.whl",)
    assert test.reports_junit == ("reports/*.xml",)
    assert test.timeout_s == 600.0
    assert test.retry == RetryPolicy(max=2, backoff_s=5.0)
    assert test.allow_failure is True
    assert test.cache is False
    assert str(test.location) == "conveyor.yaml:7:3"
    publish = pipeline.job("publish")
    assert publish.inputs == ()
    assert publish.retry == RetryPolicy(max=3, backoff_s=1.0)
    assert pipeline.job("lint").inputs is None
    assert pipeline.job("lint").workdir == "."


def test_bytes_and_text_give_the_same_pipeline() -> None:
    assert parse_pipeline(FULL.encode()) == parse_pipeline(FULL)


def test_load_pipeline_reads_the_file_and_keeps_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "ci.yaml"
    path.write_text(FULL)
    pipeline = load_pipeline(path)
    assert pipeline.path == str(path)
    assert pipeline.job("lint").location.file == str(path)


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    missing = tmp_path / "conveyor.yaml"
    with pytest.raises(SpecError) as caught:
        load_pipeline(missing)
    (issue,) = caught.value.issues
    assert str(issue.location) == f"{missing}:1:1"
    assert "does not exist" in issue.message
    assert issue.hint is not None and "-f" in issue.hint


def test_a_directory_instead_of_a_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory, not a pipeline file"):
        load_pipeline(tmp_path)


def test_errors_name_the_file_as_given() -> None:
    with pytest.raises(SpecError) as caught:
        parse_pipeline("version: 1\njobs: {}\n", path="ci/conveyor.yaml")
    assert str(caught.value).startswith("ci/conveyor.yaml:2:7: ")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_the_bundled_examples_load(path: Path) -> None:
    assert load_pipeline(path).jobs


def test_the_json_schema_describes_the_format() -> None:
    schema = json_schema()
    json.dumps(schema)  # editors read it as JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "conveyor.yaml"
    assert schema["required"] == ["version", "jobs"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert isinstance(properties, dict)
    assert properties["version"]["const"] == 1
    assert properties["jobs"]["minProperties"] == 1
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    job = defs["JobModel"]
    assert job["required"] == ["run"]
    assert job["additionalProperties"] is False
    assert set(job["properties"]) == {
        "run", "needs", "env", "workdir", "inputs", "outputs", "reports",
        "timeout", "retry", "allow_failure", "cache", "matrix", "if", "runs_on", "concurrency",
    }  # fmt: skip
    for name, field in job["properties"].items():
        assert "description" in field or "$ref" in field, name
    assert {"type": "integer"} in job["properties"]["retry"]["anyOf"]
    assert "null" not in json.dumps(schema)


def test_the_bundled_examples_validate_against_the_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    for path in EXAMPLES:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_reading_the_contract_does_not_import_pydantic_or_cel() -> None:
    code = (
        "import sys, conveyor.spec.pipeline, conveyor.spec.graph, conveyor.spec.conditions;"
        "print(sorted(m for m in ('pydantic', 'celpy', 'lark') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1)
ENV = st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), TEXT, max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    """Valid files as plain data: jobs only need jobs written before them."""
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    jobs: dict[str, object] = {}
    for index, name in enumerate(names):
        job: dict[str, object] = {"run": draw(TEXT.filter(str.strip))}
        if index:
            job["needs"] = draw(st.lists(st.sampled_from(names[:index]), unique=True))
        job["env"] = draw(ENV)
        job["timeout"] = f"{draw(st.integers(1, 3600))}s"
        job["retry"] = draw(st.integers(0, 10))
        job["cache"] = draw(st.booleans())
        jobs[name] = job
    return {"version": 1, "env": draw(ENV), "jobs": jobs}


@settings(max_examples=60, deadline=None)
@given(documents())
def test_a_valid_document_round_trips_through_yaml(document: dict[str, object]) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    pipeline = parse_pipeline(text)
    jobs = document["jobs"]
    assert isinstance(jobs, dict)
    assert pipeline.names == tuple(jobs)
    assert pipeline.env == document["env"]
    for job in pipeline.jobs:
        written = jobs[job.name]
        assert job.run == written["run"]
        assert job.needs == tuple(written.get("needs", ()))
        assert job.env == {**document["env"], **written["env"]}
        assert job.timeout_s == float(written["timeout"].removesuffix("s"))
        assert job.retry.max == written["retry"]
        assert job.cache is written["cache"]


def test_env_and_matrix_values_are_text_as_written_even_what_yaml_reads_as_true_or_false() -> None:
    pipeline = parse_pipeline(
        "version: 1\nenv: {COUNTRY: no, DEBUG: yes, STRICT: True, N: 010}\njobs:\n"
        "  t:\n    run: x\n    matrix: {flag: [on, off]}\n"
    )

    assert dict(pipeline.env) == {"COUNTRY": "no", "DEBUG": "yes", "STRICT": "True", "N": "010"}
    assert [job.name for job in pipeline.jobs] == ["t (flag=on)", "t (flag=off)"]
    assert pipeline.jobs[1].env["flag"] == "off"

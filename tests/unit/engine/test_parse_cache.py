"""Loading conveyor.yaml through the parse cache."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conveyor.core.errors import SpecError
from conveyor.engine import specs
from conveyor.spec.loader import parse_pipeline

SPEC = textwrap.dedent(
    """\
    version: 1
    env: {CI: "1"}
    secrets: [TOKEN]
    jobs:
      build:
        run: make
        outputs: [dist/app]
        timeout: 30s
        retry: {max: 2, backoff: 10ms}
      test:
        needs: [build]
        run: make test
        inputs: ["src/**"]
        matrix: {py: ["3.11", "3.12"]}
        if: event == 'push'
        reports: {junit: reports/*.xml}
    """
)


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "conveyor.yaml"
    path.write_text(SPEC)
    return str(path)


def cache_files(state: Path) -> list[Path]:
    return sorted((state / "specs").glob("*.json"))


def test_the_first_load_parses_and_stores_the_result(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    pipeline = specs.load(spec_file, state)
    assert pipeline == parse_pipeline(SPEC, spec_file)
    assert len(cache_files(state)) == 1


def test_the_second_load_returns_an_equal_pipeline(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = specs.load(spec_file, state)
    second = specs.load(spec_file, state)
    assert second == first
    assert second.job("test (py=3.12)").condition == "event == 'push'"


def test_the_second_load_is_served_from_the_cache(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    specs.load(spec_file, state)
    (stored,) = cache_files(state)
    doc = json.loads(stored.read_text())
    doc["jobs"][0]["run"] = "served from the cache"
    stored.write_text(json.dumps(doc))
    assert specs.load(spec_file, state).job("build").run == "served from the cache"


def test_a_changed_file_is_parsed_again(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    specs.load(spec_file, state)
    Path(spec_file).write_text(SPEC.replace("run: make\n", "run: make all\n"))
    assert specs.load(spec_file, state).job("build").run == "make all"
    assert len(cache_files(state)) == 2


@pytest.mark.parametrize(
    "damage",
    [b"", b"{", b"\xff\xfe", b"[]", b"null", b'"text"', b'{"format": 1}', b'{"format": 999}'],
    ids=["empty", "truncated", "binary", "list", "null", "string", "incomplete", "other-format"],
)
def test_a_corrupt_cache_file_is_parsed_again_and_rewritten(
    spec_file: str, tmp_path: Path, damage: bytes
) -> None:
    state = tmp_path / "state"
    expected = specs.load(spec_file, state)
    (stored,) = cache_files(state)
    stored.write_bytes(damage)
    assert specs.load(spec_file, state) == expected
    assert json.loads(stored.read_text())["format"] != 999
    assert specs.load(spec_file, state) == expected


def test_an_invalid_file_is_a_spec_error_and_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yaml"
    path.write_text("version: 1\njobs:\n  a: {run: x, needs: [b]}\n")
    with pytest.raises(SpecError, match=r"conveyor\.yaml:3"):
        specs.load(str(path), tmp_path / "state")
    assert cache_files(tmp_path / "state") == []


def test_a_missing_file_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match=r"nope\.yaml' does not exist") as caught:
        specs.load(missing, tmp_path / "state")
    assert caught.value.issues[0].location.file == missing


def test_the_cache_keeps_only_the_newest_results(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    for n in range(40):
        Path(spec_file).write_text(SPEC.replace("run: make\n", f"run: make {n}\n"))
        specs.load(spec_file, state)
    assert len(cache_files(state)) == 32


def test_an_unwritable_cache_does_not_fail_the_load(spec_file: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "specs").write_text("a file where the cache directory should be")
    assert specs.load(spec_file, state) == parse_pipeline(SPEC, spec_file)

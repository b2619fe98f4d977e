"""Where a claimed job runs in its checkout: the pipeline's directory, never outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.engine.dispatch_rules import Source


def test_a_pipeline_at_the_top_runs_in_the_checkout_itself() -> None:
    assert Source(git="u", commit="c").workspace(Path("/w/attempt-1")) == Path("/w/attempt-1")


def test_a_pipeline_in_a_subdirectory_runs_there() -> None:
    source = Source(git="u", commit="c", subdir="services/api")

    assert source.workspace(Path("/w/attempt-1")) == Path("/w/attempt-1/services/api")


@pytest.mark.parametrize("subdir", ["../elsewhere", "services/../../up", "/etc"])
def test_a_directory_leading_out_of_the_checkout_is_refused(subdir: str) -> None:
    with pytest.raises(ValueError, match="leads out of the checkout"):
        Source(git="u", commit="c", subdir=subdir).workspace(Path("/w/attempt-1"))


def test_a_source_read_back_from_json_keeps_its_directory_and_older_rows_have_none() -> None:
    source = Source(git="u", commit="c", subdir="services/api")

    assert Source.from_json(source.to_json()) == source
    assert Source.from_json({"git": "u", "commit": "c"}).subdir is None

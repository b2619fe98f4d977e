"""A job's fingerprint, and what `explain` says changed between two of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from conveyor.core import digest
from conveyor.core.errors import Location
from conveyor.core.records import OutputRecord
from conveyor.engine import fingerprint
from conveyor.engine.fingerprint import Change, FingerprintInputs, cache_key, compute, diff
from conveyor.spec.pipeline import Job

KEY = b"k" * 32


BASE = Job(name="build", run="make", location=Location("conveyor.yaml", 3, 3))


def job(**changes: object) -> Job:
    return replace(BASE, **changes)


def inputs(
    the_job: Job | None = None,
    *,
    pipeline_env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | None] | None = None,
    listing: str = "sha256:listing",
    kind: str = "files",
    upstream: Mapping[str, tuple[OutputRecord, ...]] | None = None,
) -> FingerprintInputs:
    return FingerprintInputs(
        job=the_job or job(),
        pipeline_env=pipeline_env or {},
        secrets=secrets or {},
        secret_key=KEY,
        files_listing=listing,
        files_kind=kind,
        upstream=upstream or {},
    )


def out(path: str, content: str) -> OutputRecord:
    return OutputRecord(path, digest.of_text(content), len(content))


def listings(**stored: dict[str, str]) -> fingerprint.ListingLoader:
    """A loader over named listings; names not given read as pruned."""
    return stored.get


def texts(changes: list[Change]) -> list[str]:
    return [c.text for c in changes]


# --- compute -------------------------------------------------------------------


def test_a_fingerprint_names_every_input_of_the_job() -> None:
    fp = compute(
        inputs(
            job(env={"MODE": "fast"}, matrix={"py": "3.12"}, workdir="svc"),
            pipeline_env={"CI": "1"},
            upstream={"gen": (out("gen/a.txt", "a"),)},
        )
    )
    assert fp["script"] == digest.of_text("make")
    assert fp["workdir"] == "svc"
    assert fp["files"] == "sha256:listing"
    assert fp["env:MODE"] == digest.of_text("fast")
    assert fp["env:py"] == digest.of_text("3.12")
    assert fp["env:CI"] == digest.of_text("1")
    assert fp["upstream:gen:gen/a.txt"] == digest.of_text("a")
    assert "upstream:gen" in fp
    assert fp["format"].startswith("cache/")


def test_declared_inputs_are_a_component_of_their_own_kind() -> None:
    fp = compute(inputs(kind="inputs", listing="sha256:declared"))
    assert fp["inputs"] == "sha256:declared"
    assert "files" not in fp


def test_a_secret_is_keyed_so_its_value_cannot_be_read_back() -> None:
    fp = compute(inputs(secrets={"TOKEN": "hunter2", "UNSET": None}))
    assert fp["secret:TOKEN"].startswith("hmac:")
    assert "hunter2" not in repr(fp)
    assert fp["secret:TOKEN"] != "hmac:" + digest.of_text("hunter2").removeprefix("sha256:")
    assert fp["secret:UNSET"] == "unset"


def test_a_secret_value_changes_the_cache_key() -> None:
    first = cache_key(compute(inputs(secrets={"TOKEN": "a"})))
    assert cache_key(compute(inputs(secrets={"TOKEN": "a"}))) == first
    assert cache_key(compute(inputs(secrets={"TOKEN": "b"}))) != first


def test_the_cache_key_does_not_depend_on_component_order() -> None:
    fp = compute(inputs(job(env={"A": "1", "B": "2"})))
    assert cache_key(dict(reversed(list(fp.items())))) == cache_key(fp)


# --- diff ------------------------------------------------------------------------


def test_identical_fingerprints_have_no_changes() -> None:
    fp = compute(inputs())
    assert diff(fp, dict(fp), listings()) == []


def test_an_added_changed_and_removed_file_are_each_named() -> None:
    old = {"files": "L1"}
    new = {"files": "L2"}
    load = listings(
        L1={"keep.txt": "git:1", "edit.txt": "git:2", "gone.txt": "git:3"},
        L2={"keep.txt": "git:1", "edit.txt": "git:9", "new.txt": "git:4"},
    )
    assert texts(diff(old, new, load)) == [
        "file edit.txt changed",
        "file new.txt was added",
        "file gone.txt was removed",
    ]
    assert {c.component for c in diff(old, new, load)} == {"files"}


def test_changed_declared_patterns_with_the_same_files_are_said_so() -> None:
    load = listings(L1={"a.txt": "x"}, L2={"a.txt": "x"})
    assert texts(diff({"inputs": "L1"}, {"inputs": "L2"}, load)) == [
        "the input file patterns changed"
    ]


def test_a_pruned_listing_is_reported_as_such() -> None:
    load = listings(L2={"a.txt": "x"})
    assert texts(diff({"files": "L1"}, {"files": "L2"}, load)) == [
        "input files changed (the earlier listing was pruned)"
    ]


def test_a_switch_between_declared_and_implicit_inputs_is_reported_once() -> None:
    changes = diff({"files": "L1"}, {"inputs": "L2"}, listings())
    assert texts(changes) == ["the job switched between declared and implicit inputs"]


def test_environment_variables_added_removed_and_changed_are_each_named() -> None:
    old = {"env:KEEP": "1", "env:GONE": "1", "env:EDIT": "1"}
    new = {"env:KEEP": "1", "env:NEW": "1", "env:EDIT": "2"}
    assert texts(diff(old, new, listings())) == [
        "environment variable EDIT changed",
        "environment variable GONE was removed",
        "environment variable NEW was added",
    ]


def test_a_secret_change_is_named_without_its_value() -> None:
    changes = diff({"secret:TOKEN": "hmac:1"}, {"secret:TOKEN": "hmac:2"}, listings())
    assert texts(changes) == ["secret TOKEN changed"]


def test_a_changed_upstream_output_is_named_by_file_not_by_the_roll_up() -> None:
    before = compute(inputs(upstream={"gen": (out("a.txt", "1"), out("b.txt", "same"))}))
    after = compute(inputs(upstream={"gen": (out("a.txt", "2"), out("b.txt", "same"))}))
    changes = diff(before, after, listings())
    old_short, new_short = digest.short(digest.of_text("1")), digest.short(digest.of_text("2"))
    assert texts(changes) == [f"upstream 'gen' output a.txt changed ({old_short} -> {new_short})"]
    assert [c.component for c in changes] == ["upstream:gen:a.txt"]


def test_an_upstream_output_that_appears_or_disappears_is_named() -> None:
    before = compute(inputs(upstream={"gen": (out("old.txt", "o"),)}))
    after = compute(inputs(upstream={"gen": (out("new.txt", "n"),)}))
    new_short = digest.short(digest.of_text("n"))
    assert texts(diff(before, after, listings())) == [
        f"upstream 'gen' now outputs new.txt ({new_short})",
        "upstream 'gen' no longer outputs old.txt",
    ]


def test_an_upstream_that_starts_producing_outputs_is_named_by_file() -> None:
    before = compute(inputs(upstream={"gen": ()}))
    after = compute(inputs(upstream={"gen": (out("a.txt", "a"),)}))
    short = digest.short(digest.of_text("a"))
    assert texts(diff(before, after, listings())) == [f"upstream 'gen' now outputs a.txt ({short})"]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("script", "the job's script (`run`) changed"),
        ("outputs", "the declared outputs changed"),
        ("reports", "the declared reports changed"),
        ("format", "Conveyor's cache format changed"),
    ],
)
def test_a_changed_job_setting_is_named(key: str, text: str) -> None:
    assert texts(diff({key: "1"}, {key: "2"}, listings())) == [text]


def test_a_script_change_is_found_between_computed_fingerprints() -> None:
    before = compute(inputs(job(run="make")))
    after = compute(inputs(job(run="make all")))
    assert texts(diff(before, after, listings())) == ["the job's script (`run`) changed"]


def test_a_workdir_change_names_both_directories() -> None:
    before = compute(inputs(job(workdir="a")))
    after = compute(inputs(job(workdir="b")))
    assert texts(diff(before, after, listings())) == ["workdir changed from 'a' to 'b'"]


def test_an_unknown_component_is_still_reported() -> None:
    assert texts(diff({"other": "1"}, {"other": "2"}, listings())) == ["other changed"]

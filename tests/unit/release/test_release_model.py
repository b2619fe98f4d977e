"""What makes two Releases differ: artifacts, source commit and delivery config."""

from __future__ import annotations

from dataclasses import replace

from conveyor.core.records import RunId
from conveyor.release.model import NewRelease, ReleaseArtifact, differences

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def new(**changes: object) -> NewRelease:
    base = NewRelease(
        project="shop",
        service="payments-api",
        version="1.0.0",
        commit_sha="1" * 40,
        run_id=RunId(1),
        config_digest="sha256:" + "c" * 64,
        config="{}",
        artifacts=(ReleaseArtifact("dist/a.whl", A, 10),),
        created_at=0.0,
        created_by="ada@example.com",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_same_content_from_another_run_at_another_time_does_not_differ() -> None:
    assert differences(new(), new(run_id=RunId(9), created_at=99.0, created_by="bob")) == []


def test_each_difference_is_named_with_recorded_and_new_values() -> None:
    found = differences(
        new(),
        new(
            commit_sha="2" * 40,
            config_digest="sha256:" + "d" * 64,
            artifacts=(ReleaseArtifact("dist/a.whl", B, 10), ReleaseArtifact("dist/b.whl", A, 1)),
        ),
    )

    assert found == [
        "artifact dist/a.whl is sha256:aaaaaaaaaaaa recorded, sha256:bbbbbbbbbbbb now",
        "artifact dist/b.whl produced now, not recorded",
        "source commit 111111111111 recorded, 222222222222 now",
        "delivery config sha256:cccccccccccc recorded, sha256:dddddddddddd now",
    ]


def test_a_missing_artifact_and_a_missing_commit_are_named() -> None:
    found = differences(new(), new(artifacts=(), commit_sha=None))

    assert found == [
        "artifact dist/a.whl recorded, not produced now",
        "source commit 111111111111 recorded, (none) now",
    ]

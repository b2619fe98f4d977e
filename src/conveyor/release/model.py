"""What a Release is: an immutable bundle of artifacts, config and source, as values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NewType

from conveyor.core.digest import of_json, short
from conveyor.core.records import RunId
from conveyor.core.values import frozen

ReleaseId = NewType("ReleaseId", int)


@frozen
class Commit:
    """One commit as git records it: the raw material of versions, notes and duties.

    `committer_email` is empty in Releases recorded before it was kept.
    """

    sha: str
    author: str
    email: str
    date: str
    message: str
    parents: int = 1
    committer_email: str = ""


@frozen
class ReleaseArtifact:
    """One file of a Release, addressed by its digest."""

    path: str
    digest: str
    size: int


@frozen
class NewRelease:
    """A Release about to be recorded.

    `config` is the canonical JSON of the `delivery:` section it was made with
    and `config_digest` its digest; `commits` are those since `previous_version`
    (newest first); `repository` is the web address of the origin remote.
    """

    project: str
    service: str
    version: str
    commit_sha: str | None
    run_id: RunId
    config_digest: str
    config: str
    artifacts: tuple[ReleaseArtifact, ...]
    created_at: float
    created_by: str
    previous_version: str | None = None
    repository: str | None = None
    commits: tuple[Commit, ...] = ()


@frozen(kw_only=True)
class Release(NewRelease):
    """A recorded Release; never changed once recorded."""

    id: ReleaseId

    @property
    def subject(self) -> str:
        """The subject of its Events."""
        return release_subject(self.service, self.version)


def release_subject(service: str, version: str) -> str:
    """The subject of a Release's Events: `release/<service>/<version>`."""
    return f"release/{service}/{version}"


def identity_digest(release: NewRelease) -> str:
    """The Release's identity: a digest over its service, version, artifacts, commit and config.

    An Approval binds to it, so it is never counted for other content.
    """
    return of_json(
        {
            "project": release.project,
            "service": release.service,
            "version": release.version,
            "commit": release.commit_sha,
            "config_digest": release.config_digest,
            "artifacts": [[a.path, a.digest] for a in release.artifacts],
        }
    )


def differences(recorded: NewRelease, new: NewRelease) -> list[str]:
    """What makes `new` another Release than `recorded`: artifacts, commit, config."""
    out = _artifact_differences(recorded.artifacts, new.artifacts)
    if recorded.commit_sha != new.commit_sha:
        out.append(
            f"source commit {_sha(recorded.commit_sha)} recorded, {_sha(new.commit_sha)} now"
        )
    if recorded.config_digest != new.config_digest:
        out.append(
            f"delivery config {short(recorded.config_digest)} recorded, "
            f"{short(new.config_digest)} now"
        )
    return out


def _artifact_differences(
    recorded: Sequence[ReleaseArtifact], new: Sequence[ReleaseArtifact]
) -> list[str]:
    before = {a.path: a.digest for a in recorded}
    after = {a.path: a.digest for a in new}
    out: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            out.append(f"artifact {path} recorded, not produced now")
        elif path not in before:
            out.append(f"artifact {path} produced now, not recorded")
        elif before[path] != after[path]:
            out.append(
                f"artifact {path} is {short(before[path])} recorded, {short(after[path])} now"
            )
    return out


def _sha(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"

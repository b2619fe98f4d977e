"""The Release service: what `conveyor release create`, `list`, `show` and `notes` do.

A Release bundles the artifacts of one successful Run that match the
`delivery.artifacts` globs, the digest of the `delivery:` section it was made
with and the Run's source commit. It is never changed: the same version with
other content is refused, the same content again returns the recorded one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from conveyor.artifacts.cas import ContentStore
from conveyor.audit.chain import NewEvent
from conveyor.core import digest
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import Conflict, NotFound, UsageError
from conveyor.core.globs import matches
from conveyor.core.records import RunRecord
from conveyor.core.values import frozen, replace
from conveyor.engine.gitlog import MAX_COMMITS, CommitRange, commits_between, origin_url
from conveyor.engine.history import History
from conveyor.engine.service import actor_name
from conveyor.engine.workspace import Workspace
from conveyor.release.links import repository_from_remote
from conveyor.release.model import (
    NewRelease,
    Release,
    ReleaseArtifact,
    differences,
    release_subject,
)
from conveyor.release.notes import ReleaseNotes, build_notes
from conveyor.release.semver import Version, parse_version
from conveyor.release.versioning import check_new, next_version
from conveyor.spec.pipeline import Pipeline
from conveyor.spec.serialize_delivery import delivery_config
from conveyor.store import releases as release_store
from conveyor.store.db import Database


@frozen
class ReleaseOutcome:
    """The Release asked for, whether this call recorded it, and how its version was chosen."""

    release: Release
    created: bool
    reasons: tuple[str, ...] = ()


@frozen
class _Candidate:
    """What a Release of one Run would hold, whatever its version."""

    run: RunRecord
    service: str
    artifacts: tuple[ReleaseArtifact, ...]
    config: str
    config_digest: str


@frozen
class _Choice:
    """The version a Release gets, the Release before it, the commits between, and why."""

    version: Version
    previous: Release | None
    commits: CommitRange
    reasons: tuple[str, ...]


def version_of(release: Release) -> Version:
    """A recorded Release's version (validated when it was recorded)."""
    return parse_version(release.version)


def parse_requested(text: str) -> Version:
    """A version a user typed; bad input when it is not semver."""
    try:
        return parse_version(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class ReleaseService:
    """Makes and reads the Releases of one workspace's project."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        db: Database,
        cas: ContentStore,
        history: History,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.db = db
        self.cas = cas
        self.history = history
        self.clock = clock or SystemClock()
        self.environ = dict(os.environ if environ is None else environ)

    # --- creating --------------------------------------------------------------

    def create(
        self, pipeline: Pipeline, run_ref: str | None, *, version: str | None = None
    ) -> ReleaseOutcome:
        """Release the artifacts of a successful Run as `version` (derived when None)."""
        candidate = self._candidate(pipeline, run_ref)
        released = self._released(candidate.service)
        content = self._content(candidate)
        if version is None:
            same = [r for r in released if not differences(r, content)]
            if same:
                existing = max(same, key=version_of)
                why = f"run {candidate.run.id}'s content is released as {existing.version}"
                return ReleaseOutcome(existing, False, (why,))
            return self._record(candidate, self._derive(candidate, released), released)
        requested = parse_requested(version)
        for existing in released:
            if existing.version == str(requested):
                return _same_or_conflict(existing, content)
        previous = max(
            (r for r in released if version_of(r) < requested), key=version_of, default=None
        )
        commits = self._commits(candidate.run, previous)
        notes = () if commits.problem is None else (f"no commits in the notes: {commits.problem}",)
        return self._record(candidate, _Choice(requested, previous, commits, notes), released)

    def _derive(self, candidate: _Candidate, released: Sequence[Release]) -> _Choice:
        """The next version after the highest released one, from the commits since it."""
        previous = max(released, key=version_of, default=None)
        commits = self._commits(candidate.run, previous)
        derived = next_version(
            None if previous is None else version_of(previous),
            commits.commits,
            unknown=commits.problem or "",
        )
        return _Choice(derived.version, previous, commits, derived.reasons)

    def _candidate(self, pipeline: Pipeline, run_ref: str | None) -> _Candidate:
        delivery = pipeline.delivery
        if delivery is None:
            raise UsageError(
                f"{pipeline.path} has no `delivery:` section; add one naming the service "
                "and the `artifacts` globs whose outputs make a release"
            )
        run = self.history.get_run(run_ref)
        check_releasable(run, self.workspace.project, pipeline.digest)
        artifacts = select_artifacts(run, delivery.artifacts)
        gone = [a.path for a in artifacts if not self.cas.has(a.digest)]
        if gone:
            raise UsageError(
                f"run {run.id}'s artifacts {', '.join(gone)} were pruned; "
                "run the pipeline again and release that run"
            )
        config = digest.canonical_json(delivery_config(delivery)).decode()
        return _Candidate(run, delivery.service, artifacts, config, digest.of_text(config))

    def _commits(self, run: RunRecord, previous: Release | None) -> CommitRange:
        """The commits since `previous` up to the Run's, or why they cannot be read."""
        if run.commit_sha is None:
            return CommitRange(None, f"run {run.id} was not made from a git commit")
        if previous is not None and previous.commit_sha is None:
            return CommitRange(None, f"{previous.version} was not made from a git commit")
        since = None if previous is None else previous.commit_sha
        return commits_between(self.workspace.root, since, run.commit_sha)

    def _record(
        self, candidate: _Candidate, choice: _Choice, released: Sequence[Release]
    ) -> ReleaseOutcome:
        problem = check_new(choice.version, [version_of(r) for r in released])
        if problem is not None:
            raise Conflict(f"{candidate.service} {problem}; pick another version")
        reasons = choice.reasons
        if choice.commits.truncated:
            reasons += (f"only the newest {MAX_COMMITS} commits were read",)
        new = self._bundle(candidate, choice)
        release, created = release_store.create_release(
            self.db, release=new, event=_created_event(new)
        )
        if not created:  # another process recorded this version a moment ago
            return _same_or_conflict(release, new)
        return ReleaseOutcome(release, True, reasons)

    def _content(self, candidate: _Candidate) -> NewRelease:
        """What decides whether two Releases are the same: artifacts, commit and config."""
        return NewRelease(
            project=self.workspace.project,
            service=candidate.service,
            version="",
            commit_sha=candidate.run.commit_sha,
            run_id=candidate.run.id,
            config_digest=candidate.config_digest,
            config=candidate.config,
            artifacts=candidate.artifacts,
            created_at=0.0,
            created_by="",
        )

    def _bundle(self, candidate: _Candidate, choice: _Choice) -> NewRelease:
        """The Release to record: its content, version, author, history and repository."""
        remote = origin_url(self.workspace.root)
        repository = repository_from_remote(remote) if remote else None
        return replace(
            self._content(candidate),
            version=str(choice.version),
            created_at=self.clock.now(),
            created_by=actor_name(self.workspace.root, self.environ),
            previous_version=None if choice.previous is None else choice.previous.version,
            repository=None if repository is None else repository.url,
            commits=choice.commits.commits or (),
        )

    # --- reading ---------------------------------------------------------------

    def _released(self, service: str | None = None) -> list[Release]:
        return release_store.list_releases(self.db, project=self.workspace.project, service=service)

    def list_releases(self, *, service: str | None = None) -> list[Release]:
        """The project's Releases (or one service's), highest version first."""
        found = self._released(service)
        return sorted(found, key=lambda r: (r.service, version_of(r).key()), reverse=True)

    def get_release(self, version: str, *, service: str | None = None) -> Release:
        """One Release: `version` is semver (`v1.2.3` is 1.2.3) or `latest`, the highest."""
        candidates = self._released(service)
        if service is None:
            service = _only_service(candidates, version)
        mine = [r for r in candidates if r.service == service]
        if version == "latest":
            if not mine:
                raise NotFound("there are no releases yet; make one with `conveyor release create`")
            return max(mine, key=version_of)
        wanted = str(parse_requested(version))
        for release in mine:
            if release.version == wanted:
                return release
        raise NotFound(f"{service} has no release {wanted}; `conveyor release list` shows them")

    def notes(self, version: str, *, service: str | None = None) -> ReleaseNotes:
        """The notes of one Release: its commits grouped by kind, with authors and links."""
        release = self.get_release(version, service=service)
        return self._notes(release, self._released(release.service))

    def changelog(self, version: str, *, service: str | None = None) -> list[ReleaseNotes]:
        """The notes of every Release of the service up to `version`, highest first."""
        release = self.get_release(version, service=service)
        siblings = self._released(release.service)
        upto = [r for r in siblings if version_of(r) <= version_of(release)]
        upto.sort(key=version_of, reverse=True)
        return [self._notes(r, siblings) for r in upto]

    @staticmethod
    def _notes(release: Release, siblings: Sequence[Release]) -> ReleaseNotes:
        previous = next((r for r in siblings if r.version == release.previous_version), None)
        return build_notes(
            release, previous_commit=None if previous is None else previous.commit_sha
        )


_NOT_SUCCESSFUL = {
    "failed": "failed",
    "canceled": "was canceled",
    "interrupted": "was interrupted",
    "running": "is still running",
}


def check_releasable(run: RunRecord, project: str, spec_digest: str) -> None:
    """Refuse a Run that is not a successful one of this project and this pipeline file."""
    if run.project != project:
        raise NotFound(f"there is no run {run.id} in project {project}")
    if run.status != "success":
        raise UsageError(
            f"run {run.id} {_NOT_SUCCESSFUL.get(run.status, run.status)}: only a successful run "
            "can be released; release a run that succeeded"
        )
    if run.spec_digest != spec_digest:
        # The config recorded with the release must be the one its artifacts were built with.
        raise UsageError(
            f"{run.pipeline_path} changed since run {run.id}, so its delivery config may not be "
            "the one that run was built with; run the pipeline again and release that run"
        )


def select_artifacts(run: RunRecord, patterns: Sequence[str]) -> tuple[ReleaseArtifact, ...]:
    """The Run's outputs that `delivery.artifacts` names; at least one, each path once."""
    chosen: dict[str, ReleaseArtifact] = {}
    for job in run.jobs:
        for output in job.outputs:
            if not any(matches(pattern, output.path) for pattern in patterns):
                continue
            known = chosen.get(output.path)
            if known is not None and known.digest != output.digest:
                raise UsageError(
                    f"run {run.id} produced {output.path} twice with different content; "
                    "give each job's output its own path"
                )
            chosen[output.path] = ReleaseArtifact(output.path, output.digest, output.size)
    if not chosen:
        produced = sorted({o.path for job in run.jobs for o in job.outputs})
        listing = ", ".join(produced) if produced else "no outputs at all"
        raise UsageError(
            f"no output of run {run.id} matches delivery.artifacts ({', '.join(patterns)}); "
            f"it produced {listing}"
        )
    return tuple(sorted(chosen.values(), key=lambda a: a.path))


def _only_service(releases: Sequence[Release], version: str) -> str:
    services = sorted({r.service for r in releases})
    if not services:
        raise NotFound("there are no releases yet; make one with `conveyor release create`")
    if len(services) > 1:
        raise UsageError(
            f"releases of several services ({', '.join(services)}) are recorded; "
            f"say which one {version} is with --service"
        )
    return services[0]


def _same_or_conflict(recorded: Release, new: NewRelease) -> ReleaseOutcome:
    """The recorded Release when `new` has its content; Conflict naming what differs otherwise."""
    found = differences(recorded, new)
    if found:
        raise Conflict(
            f"{recorded.service} {recorded.version} is already released with other content "
            f"(from run {recorded.run_id}): {'; '.join(found)}. A release never changes; "
            "release this run under another version, or leave out --version to derive one"
        )
    return ReleaseOutcome(
        recorded,
        False,
        (f"{recorded.service} {recorded.version} is already released with this content",),
    )


def _created_event(release: NewRelease) -> NewEvent:
    return NewEvent(
        "release.created",
        release_subject(release.service, release.version),
        release.created_by,
        release.created_at,
        {
            "project": release.project,
            "service": release.service,
            "version": release.version,
            "run": int(release.run_id),
            "commit": release.commit_sha,
            "config_digest": release.config_digest,
            "previous_version": release.previous_version,
            "artifacts": [{"path": a.path, "digest": a.digest} for a in release.artifacts],
        },
    )

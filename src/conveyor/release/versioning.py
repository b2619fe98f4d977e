"""The next version of a service, derived from the Conventional Commits since its last Release."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.values import frozen
from conveyor.release.commits import Bump, bump_for, parse_message
from conveyor.release.model import Commit
from conveyor.release.semver import Version

FIRST = Version(0, 1, 0)
_REASONS = {
    "major": "a breaking change",
    "minor": "a feature",
    "patch": "no feature or breaking change",
}


@frozen
class Derived:
    """A derived version and, in words, how it was reached and what was assumed."""

    version: Version
    reasons: tuple[str, ...]


def next_version(
    previous: Version | None, commits: Sequence[Commit] | None, *, unknown: str = ""
) -> Derived:
    """The version after `previous` that `commits` ask for.

    `commits` is None when the history cannot be read (`unknown` says why):
    the first release is then 0.1.0 and a later one a patch. A first release
    is 0.1.0 unless a breaking change makes it 1.0.0.
    """
    if commits is None:
        if previous is None:
            return Derived(FIRST, (f"{unknown}; assumed {FIRST} for the first release",))
        return Derived(
            previous.bump("patch"), (f"{unknown}; assumed a patch release after {previous}",)
        )
    bump = bump_for(commits)
    why = _why(bump)
    if previous is None:
        version = Version(1, 0, 0) if bump.level == "major" else FIRST
        return Derived(version, (f"no earlier release: {why}, so {version}",))
    if bump.counted == 0:
        return Derived(previous.bump("patch"), (f"no commits since {previous}: a patch release",))
    noun = "commit" if bump.counted == 1 else "commits"
    return Derived(
        previous.bump(bump.level),
        (f"{bump.counted} {noun} since {previous}: {why}, so a {bump.level} release",),
    )


def _why(bump: Bump) -> str:
    commit = bump.decided_by
    if commit is None:
        return "no commits"
    if bump.level == "patch":
        return _REASONS["patch"]
    header = parse_message(commit.message).description
    return f"{_REASONS[bump.level]} in {commit.sha[:7]} ({header})"


def check_new(version: Version, released: Sequence[Version]) -> str | None:
    """Why `version` cannot be a new release next to `released`; None when it can."""
    for other in released:
        if other.same_precedence(version) and str(other) != str(version):
            return f"{version} differs from the released {other} only in build metadata"
    return None

"""Reading commits and the origin remote from git, for versions and release notes."""

from __future__ import annotations

from pathlib import Path

from conveyor.core.values import frozen
from conveyor.engine.sources import git_output
from conveyor.release.model import Commit

# Notes with more commits than this are not read by anyone; a first release of an old
# repository would otherwise carry its whole history.
MAX_COMMITS = 1000
_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%ce%x1f%B"


@frozen
class CommitRange:
    """Commits newest first, or None with the reason they could not be read."""

    commits: tuple[Commit, ...] | None
    problem: str | None = None
    truncated: bool = False


def has_commit(root: Path, sha: str) -> bool:
    """Whether the repository at `root` holds commit `sha`."""
    return git_output(root, "cat-file", "-e", f"{sha}^{{commit}}") is not None


def commits_between(root: Path, since: str | None, until: str) -> CommitRange:
    """Commits reachable from `until` but not from `since` (every one when `since` is None)."""
    if not has_commit(root, until):
        return CommitRange(None, f"commit {until[:12]} is not in the repository at {root}")
    if since is not None and not has_commit(root, since):
        return CommitRange(None, f"commit {since[:12]} is not in the repository at {root}")
    span = until if since is None else f"{since}..{until}"
    out = git_output(
        root, "log", "-z", f"--format={_FORMAT}", f"--max-count={MAX_COMMITS + 1}", span, "--"
    )
    if out is None:
        return CommitRange(None, f"git cannot list the commits {span}")
    # Old commits may hold bytes that are not UTF-8; notes show them replaced, never fail on them.
    text = out.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    commits = [_commit(entry) for entry in text.split("\0") if entry.strip()]
    return CommitRange(tuple(commits[:MAX_COMMITS]), truncated=len(commits) > MAX_COMMITS)


def _commit(entry: str) -> Commit:
    sha, parents, author, email, date, committer, message = entry.lstrip("\n").split("\x1f", 6)
    return Commit(
        sha=sha,
        author=author,
        email=email,
        date=date,
        message=message.strip("\n"),
        parents=len(parents.split()),
        committer_email=committer,
    )


def origin_url(root: Path) -> str | None:
    """The URL of the `origin` remote, if there is one."""
    out = git_output(root, "config", "--get", "remote.origin.url")
    return out.strip() or None if out else None

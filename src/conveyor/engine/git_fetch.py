"""One commit of a git repository, fetched with git: checked out by runners, read by the server.

A runner checks a commit out into a job's fresh directory (`git init`, then
`git fetch --depth 1 URL COMMIT` and a detached checkout): nothing but that
commit's tree crosses the network. The server reads a project's
`conveyor.yaml` at a commit from a bare mirror per repository under its state
directory (`GitMirror`), fetching the commit into it once. Any URL git
accepts works, a local path or a `file://` URL among them; git's own
configuration (credentials, `url.<base>.insteadOf`) applies.

A commit must be named by its full id. When a fetch fails, `git ls-remote`
tells an unreachable repository (ExecutorError, infrastructure) from a
commit the repository does not have (UsageError, bad input).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from conveyor.core.errors import ExecutorError, UsageError

GIT_TIMEOUT_S = 600.0
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_commit(commit: str) -> str:
    """`commit` in lower case when it is a full commit id; UsageError naming the fix otherwise."""
    wanted = commit.strip().lower()
    if not _COMMIT.fullmatch(wanted):
        raise UsageError(
            f"commit: '{commit[:80]}' is not a full commit id; give all 40 hex digits "
            "(`git rev-parse HEAD` prints it)"
        )
    return wanted


def display_url(url: str) -> str:
    """`url` without a user name or password, fit for a message or a log."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise ExecutorError("git is not installed here; install git to fetch commits") from None
    except subprocess.TimeoutExpired:
        raise ExecutorError(f"git {args[0]} took longer than {GIT_TIMEOUT_S:.0f}s") from None


def _said(done: subprocess.CompletedProcess[bytes], url: str) -> str:
    """What git said went wrong (its first `fatal:` line), with credentials in `url` left out."""
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    fatal = [line for line in lines if line.startswith("fatal:")]
    said = (fatal or lines or [f"git exited with {done.returncode}"])[0]
    return said.replace(url, display_url(url))


def fetch_commit(url: str, commit: str, repo: Path) -> None:
    """Fetch `commit` (depth 1) from `url` into the git repository at `repo`."""
    done = _git("fetch", "--quiet", "--no-tags", "--depth", "1", url, commit, cwd=repo)
    if done.returncode == 0:
        return
    problem = _said(done, url)
    if _git("ls-remote", "--quiet", url, cwd=repo).returncode == 0:
        raise UsageError(
            f"commit {commit} is not in repository {display_url(url)} ({problem}); push it, "
            "or name a commit the repository has"
        )
    raise ExecutorError(
        f"cannot fetch from repository {display_url(url)} ({problem}); check that this host "
        "can reach it and has its credentials"
    )


def checkout_commit(url: str, commit: str, dest: Path) -> None:
    """`commit` of `url` checked out (detached) in the new directory `dest`."""
    dest.mkdir(parents=True)
    _checked(_git("init", "--quiet", cwd=dest), url, "init")
    fetch_commit(url, commit, dest)
    checkout = _git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=dest)
    _checked(checkout, url, "checkout")


def _checked(done: subprocess.CompletedProcess[bytes], url: str, what: str) -> None:
    if done.returncode != 0:
        raise ExecutorError(f"git {what} failed: {_said(done, url)}")


class GitMirror:
    """Bare mirrors of repositories under `root`, one per URL, holding the commits read."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, url: str, commit: str, path: str) -> bytes | None:
        """The file `path` at `commit` of `url`; None when that commit has no such file."""
        commit = check_commit(commit)
        with self._mirror(url) as repo:
            if _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=repo).returncode != 0:
                fetch_commit(url, commit, repo)
            shown = _git("cat-file", "blob", f"{commit}:{path}", cwd=repo)
        return shown.stdout if shown.returncode == 0 else None

    @contextmanager
    def _mirror(self, url: str) -> Iterator[Path]:
        """The mirror of `url`, made if new, held exclusively (server threads and replicas)."""
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        repo = self.root / f"{name}.git"
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (repo / "HEAD").exists():
                repo.mkdir(exist_ok=True)
                _checked(_git("init", "--quiet", "--bare", cwd=repo), url, "init")
            yield repo

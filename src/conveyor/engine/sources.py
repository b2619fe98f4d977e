"""What the workspace holds: git facts, file listings and file digests.

Everything here is computed at most once per Run, lazily, because most runs
need only part of it and each git call costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from conveyor.core import digest
from conveyor.core.errors import UsageError
from conveyor.core.globs import compile_glob
from conveyor.core.values import field, frozen, mutable

_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitQuery:
    """A git command started at once and read later, so that it runs alongside other work."""

    def __init__(self, root: Path, *args: str) -> None:
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["git", *args],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._proc = None

    def output(self) -> str | None:
        """What git printed, or None when it failed, is absent or took over a minute."""
        proc = self._proc
        if proc is None:
            return None
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        if proc.returncode != 0:
            return None
        return out.decode("utf-8", "surrogateescape")


def _git(root: Path, *args: str) -> str | None:
    """Output of a git command in `root`, or None when git fails or is absent."""
    return GitQuery(root, *args).output()


def git_output(root: Path, *args: str) -> str | None:
    """Output of a git command in `root`, or None when git fails or is absent."""
    return _git(root, *args)


def _looks_like_git(root: Path) -> bool:
    return any((directory / ".git").exists() for directory in (root, *root.parents))


def git_blob_id(path: Path) -> str:
    """The id git gives this content (a symlink's: its target), so edits and commits agree."""
    data = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
    return "git:" + hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def git_mode(path: Path) -> str:
    """The mode git records: 120000 for a symlink, 100755 when executable, else 100644."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return "120000"
    return "100755" if st.st_mode & 0o111 else "100644"


@frozen
class GitFacts:
    """Where HEAD is. Outside git every field is None."""

    toplevel: Path | None
    branch: str | None
    commit: str | None


def git_facts(root: Path) -> GitFacts:
    if not _looks_like_git(root) and "GIT_DIR" not in os.environ:
        return GitFacts(None, None, None)  # no repository: spare two git processes
    # --abbrev-ref applies to every later argument, so the full HEAD comes first.
    out = _git(root, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
    if out is None:
        # A repository without commits still has a toplevel.
        top = _git(root, "rev-parse", "--show-toplevel")
        return GitFacts(Path(top.strip()) if top else None, None, None)
    top, commit, branch = [*out.splitlines(), "", "", ""][:3]
    return GitFacts(Path(top), None if branch == "HEAD" else branch, commit or None)


def git_user_email(root: Path) -> Callable[[], str | None]:
    """git's user.email, asked at once; the returned function waits for the answer."""
    query = GitQuery(root, "config", "user.email")

    def email() -> str | None:
        out = query.output()
        return out.strip() or None if out else None

    return email


@mutable
class Sources:
    """File listings and digests of one workspace for the duration of one Run.

    `excluded` are root-relative glob patterns (declared outputs and reports)
    that never count as inputs: their content reaches downstream jobs through
    upstream output digests instead.
    """

    root: Path
    state_dir: Path
    excluded: tuple[str, ...] = ()
    # Left out of implicit inputs only: the pipeline file, whose relevant parts
    # (each job's own definition) are already in every job's fingerprint.
    not_implicit: tuple[str, ...] = ()
    _facts: GitFacts | None = None
    _tracked: dict[str, str] | None = None
    _candidates: list[str] | None = None
    _digests: dict[str, tuple[tuple[int, int, int, int], str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    branch: str | None = None  # set when the branch comes from elsewhere than HEAD

    @property
    def facts(self) -> GitFacts:
        if self._facts is None:
            self._facts = git_facts(self.root)
            if (
                self._facts.toplevel is None
                and shutil.which("git") is None
                and _looks_like_git(self.root)
            ):
                self.warnings.append(
                    "this is a git checkout but git is not on PATH: inputs are every file, "
                    "and changed() is always true"
                )
        if self.branch is not None and self._facts.branch != self.branch:
            self._facts = GitFacts(self._facts.toplevel, self.branch, self._facts.commit)
        return self._facts

    @property
    def in_git(self) -> bool:
        return self.facts.toplevel is not None

    def _is_excluded(self, path: str) -> bool:
        return any(compile_glob(p).match(path) for p in self.excluded)

    def implicit_files(self) -> dict[str, str]:
        """The files a job without declared `inputs` depends on, with digests.

        In git: tracked files with their uncommitted changes. Elsewhere: every
        file below the root but the state directory.
        """
        if self._tracked is None:
            if self.in_git:
                listing = self._git_tracked()
            else:
                listing = {p: self.file_digest(p) for p in self._walk()}
            self._tracked = {
                p: d
                for p, d in listing.items()
                if not self._is_excluded(p) and p not in self.not_implicit
            }
        return self._tracked

    def _git_tracked(self) -> dict[str, str]:
        staged = _git(self.root, "ls-files", "-s", "-z") or ""
        files: dict[str, str] = {}
        for entry in staged.split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            mode, blob = meta.split()[:2]
            # The mode is part of the entry: `chmod -x` changes what a job can run.
            files[path] = f"{mode}:git:{blob}"
        modified = _git(self.root, "ls-files", "-m", "-z") or ""
        for path in filter(None, modified.split("\0")):
            full = self.root / path
            if full.is_file() or full.is_symlink():
                files[path] = f"{git_mode(full)}:{git_blob_id(full)}"
            else:
                files.pop(path, None)
        return files

    def candidates(self) -> list[str]:
        """Every file declared `inputs` patterns may name (git: not ignored)."""
        if self._candidates is None:
            if self.in_git:
                out = _git(self.root, "ls-files", "-c", "-o", "--exclude-standard", "-z") or ""
                paths = sorted(set(filter(None, out.split("\0"))))
                self._candidates = [p for p in paths if (self.root / p).is_file()]
            else:
                self._candidates = sorted(self._walk())
        return self._candidates

    def declared_files(self, patterns: Iterable[str]) -> dict[str, str]:
        """Files named by root-relative `patterns`, with digests."""
        regexes = [compile_glob(p) for p in patterns]
        return {
            path: self.file_digest(path)
            for path in self.candidates()
            if any(r.match(path) for r in regexes) and not self._is_excluded(path)
        }

    def unmatched(self, patterns: Iterable[str]) -> list[str]:
        """Root-relative `patterns` that name no file and no declared output (likely typos)."""
        candidates = self.candidates()
        missing = []
        for pattern in patterns:
            regex = compile_glob(pattern)
            if any(regex.match(path) for path in candidates):
                continue
            overlaps_output = any(
                regex.match(out) or compile_glob(out).match(pattern) for out in self.excluded
            )
            if not overlaps_output:
                missing.append(pattern)
        return missing

    def file_digest(self, path: str) -> str:
        """sha256 of a root-relative file (`+x` when executable), kept while its stat holds."""
        full = self.root / path
        st = full.stat()
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)
        known = self._digests.get(path)
        if known and known[0] == stamp:
            return known[1]
        value = digest.of_file(full) + ("+x" if st.st_mode & 0o111 else "")
        self._digests[path] = (stamp, value)
        return value

    def _walk(self) -> Iterable[str]:
        state = self.state_dir.resolve()
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if (here / d).resolve() != state and d != ".git"
            )
            for name in filenames:
                yield (here / name).relative_to(self.root).as_posix()

    def changed_files(self, base: str | None) -> set[str] | None:
        """Files changed since `base` (committed, staged, unstaged, untracked); None outside git.

        Without a base: against the merge-base with the default branch when on
        another branch, else against the previous commit.
        """
        if not self.in_git:
            return None
        if (
            base is not None
            and _git(self.root, "rev-parse", "--verify", "-q", f"{base}^{{commit}}") is None
        ):
            raise UsageError(
                f"--base {base}: no such commit in this repository; fetch it first "
                "(a shallow CI clone may need `git fetch origin main`) or pass another ref"
            )
        ref = base or self._default_base()
        changed = _git(self.root, "diff", "--name-only", "--relative", "-z", ref)
        untracked = _git(self.root, "ls-files", "-o", "--exclude-standard", "-z")
        if changed is None or untracked is None:
            self.warnings.append(f"git cannot list the changes since {ref}; changed() is true")
            return None
        return set(filter(None, (changed + "\0" + untracked).split("\0")))

    def _default_base(self) -> str:
        default = self._default_branch()
        if default and self.facts.branch not in (default, default.removeprefix("origin/")):
            merge_base = _git(self.root, "merge-base", "HEAD", default)
            if merge_base:
                return merge_base.strip()
        parent = _git(self.root, "rev-parse", "--verify", "-q", "HEAD~1")
        return parent.strip() if parent else _EMPTY_TREE

    def _default_branch(self) -> str | None:
        remote = _git(self.root, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD")
        if remote and remote.strip():
            return remote.strip()
        for name in ("main", "master"):
            if _git(self.root, "rev-parse", "--verify", "-q", f"refs/heads/{name}"):
                return name
        return None

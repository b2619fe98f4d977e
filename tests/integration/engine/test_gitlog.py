"""Reading commits and the origin remote from a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.engine import gitlog

IDENTITY = ("-c", "user.email=ada@example.com", "-c", "user.name=Ada Lövelace")
IDENTITY += ("-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


def test_commits_since_a_commit_come_newest_first_with_authors_and_whole_messages(
    repo: Path,
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    first = commit(repo, "feat(api): add refunds\n\nWith a body.\n\nRefs: #12")
    second = commit(repo, "fix: ünïcode ☃")

    found = gitlog.commits_between(repo, base, second)

    assert found.problem is None and not found.truncated
    assert found.commits is not None
    assert [c.sha for c in found.commits] == [second, first]
    assert found.commits[1].message == "feat(api): add refunds\n\nWith a body.\n\nRefs: #12"
    assert found.commits[0].message == "fix: ünïcode ☃"
    assert {(c.author, c.email, c.parents) for c in found.commits} == {
        ("Ada Lövelace", "ada@example.com", 1)
    }


def test_the_committer_is_read_apart_from_the_author(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, "fix: x")
    git(
        repo,
        "-c",
        "user.email=bot@example.com",
        "commit",
        "-q",
        "--amend",
        "--allow-empty",
        "--no-edit",
    )
    head = git(repo, "rev-parse", "HEAD")

    found = gitlog.commits_between(repo, base, head)

    assert found.commits is not None
    assert [(c.email, c.committer_email) for c in found.commits] == [
        ("ada@example.com", "bot@example.com")
    ]


def test_without_a_starting_commit_every_commit_up_to_the_end_is_read(repo: Path) -> None:
    head = commit(repo, "feat: x")

    found = gitlog.commits_between(repo, None, head)

    assert found.commits is not None
    assert [c.message for c in found.commits] == ["feat: x", "initial"]


def test_a_merge_commit_counts_its_parents_and_brings_the_branch_commits(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feat: on the branch")
    git(repo, "checkout", "-q", "main")
    commit(repo, "fix: on main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature")

    found = gitlog.commits_between(repo, base, git(repo, "rev-parse", "HEAD"))

    assert found.commits is not None
    by_message = {c.message: c.parents for c in found.commits}
    assert by_message == {"Merge branch 'feature'": 2, "feat: on the branch": 1, "fix: on main": 1}


def test_a_commit_unknown_to_the_repository_is_a_problem_not_an_error(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")

    unknown_start = gitlog.commits_between(repo, "0" * 40, head)
    unknown_end = gitlog.commits_between(repo, None, "1" * 40)

    assert unknown_start.commits is None
    assert unknown_start.problem == f"commit {'0' * 12} is not in the repository at {repo}"
    assert unknown_end.commits is None


def test_long_histories_are_cut_at_the_limit_and_say_so(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        commit(repo, f"fix: {n}")
    monkeypatch.setattr(gitlog, "MAX_COMMITS", 2)

    found = gitlog.commits_between(repo, None, git(repo, "rev-parse", "HEAD"))

    assert found.truncated
    assert found.commits is not None
    assert [c.message for c in found.commits] == ["fix: 2", "fix: 1"]


def test_the_origin_remote_is_read_when_there_is_one(repo: Path) -> None:
    assert gitlog.origin_url(repo) is None

    git(repo, "remote", "add", "origin", "git@gitlab.com:acme/shop.git")

    assert gitlog.origin_url(repo) == "git@gitlab.com:acme/shop.git"


def test_a_message_that_is_not_utf8_is_read_with_replacement_characters(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    person = b"Ada <ada@example.com> 1767225600 +0000"
    raw = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\nfix: caf\xe9 menu\n" % (
        tree.encode(),
        base.encode(),
        person,
        person,
    )
    # Written as raw bytes: `git commit` itself would convert the message to UTF-8.
    made = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--stdin"],
        cwd=repo,
        input=raw,
        check=True,
        capture_output=True,
    )
    head = made.stdout.decode().strip()

    found = gitlog.commits_between(repo, base, head)

    assert found.commits is not None
    assert found.commits[0].message == "fix: caf\ufffd menu"

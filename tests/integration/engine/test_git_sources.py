"""Git sources: runners check out the commit a Run names, and the server reads files at a commit.

A real git repository in a temp dir (reached by file URL or plain path), real
git subprocesses, and agent loops on the dispatch service of a real database.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.core.errors import ExecutorError, UsageError
from conveyor.engine.dispatch_rules import Source
from conveyor.engine.git_fetch import GitMirror, check_commit, display_url
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld
from .test_agent_loop import Start, cas, finished, start, wait_for  # noqa: F401


class Repository:
    """A real git repository in a temp dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._git("init", "--quiet", "--initial-branch", "main")

    def commit(self, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.root / name).write_text(text)
        self._git("add", "--all")
        self._git("-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-qm", "c")
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, capture_output=True, check=True)
        return done.stdout.decode()


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    return QueueWorld(db)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo")


def test_a_runner_checks_out_the_commit_the_run_names_not_the_tip(
    world: QueueWorld,
    start: Start,  # noqa: F811 - the fixture above
    repo: Repository,
) -> None:
    first = repo.commit({"VERSION": "one\n"})
    repo.commit({"VERSION": "two\n"})
    spec = "version: 1\njobs:\n  check: {run: 'test \"$(cat VERSION)\" = one'}\n"
    run = world.submit(spec, source=Source(git=repo.root.as_uri(), commit=first))
    start("runner")

    wait_for(finished(world, run), "the run finished")

    assert world.run(run).status == "success", world.reasons(run)


def test_a_plain_path_works_as_the_repository_too(
    world: QueueWorld,
    start: Start,  # noqa: F811 - the fixture above
    repo: Repository,
) -> None:
    sha = repo.commit({"VERSION": "one\n"})
    spec = "version: 1\njobs:\n  check: {run: 'cat VERSION'}\n"
    run = world.submit(spec, source=Source(git=str(repo.root), commit=sha))
    start("runner")

    wait_for(finished(world, run), "the run finished")

    assert world.run(run).status == "success", world.reasons(run)


def test_a_commit_the_repository_lacks_fails_the_job_with_the_reason(
    world: QueueWorld,
    start: Start,  # noqa: F811 - the fixture above
    repo: Repository,
) -> None:
    repo.commit({"VERSION": "one\n"})
    missing = "ab" * 20
    spec = "version: 1\njobs:\n  check: {run: 'true'}\n"
    run = world.submit(spec, source=Source(git=repo.root.as_uri(), commit=missing))
    start("runner")

    wait_for(finished(world, run), "the run finished")

    assert world.run(run).status == "failed"
    reason = world.reasons(run)["check"] or ""
    assert reason.startswith("its source could not be checked out: commit " + missing)
    assert world.kinds(run, "check") == ["job.queued", "job.running", "job.failed"]


def test_a_git_source_is_stored_with_the_run_and_handed_out_in_the_claim(
    world: QueueWorld, repo: Repository
) -> None:
    sha = repo.commit({"VERSION": "one\n"})
    source = Source(git=repo.root.as_uri(), commit=sha)
    world.submit("version: 1\njobs:\n  a: {run: 'true'}\n", source=source)

    claim = world.claim(world.agent("runner"))

    assert claim.source == source


# --- the server's mirror ----------------------------------------------------------


def test_the_mirror_reads_a_file_at_a_commit_and_none_where_it_is_absent(
    repo: Repository, tmp_path: Path
) -> None:
    first = repo.commit({"conveyor.yaml": "version: 1\n"})
    second = repo.commit({"conveyor.yaml": "version: 2\n"})
    mirror = GitMirror(tmp_path / "mirror")

    assert mirror.read(repo.root.as_uri(), first, "conveyor.yaml") == b"version: 1\n"
    assert mirror.read(repo.root.as_uri(), second.upper(), "conveyor.yaml") == b"version: 2\n"
    assert mirror.read(repo.root.as_uri(), first, "services/conveyor.yaml") is None
    assert len(list((tmp_path / "mirror").glob("*.git"))) == 1


def test_the_mirror_tells_a_missing_commit_from_an_unreachable_repository(
    repo: Repository, tmp_path: Path
) -> None:
    repo.commit({"conveyor.yaml": "version: 1\n"})
    mirror = GitMirror(tmp_path / "mirror")

    with pytest.raises(UsageError, match="push it, or name a commit the repository has"):
        mirror.read(repo.root.as_uri(), "ab" * 20, "conveyor.yaml")
    with pytest.raises(ExecutorError, match="check that this host can reach it"):
        mirror.read((tmp_path / "nowhere").as_uri(), "ab" * 20, "conveyor.yaml")


def test_a_commit_must_be_named_by_its_full_id() -> None:
    assert check_commit(" " + "AB" * 20 + "\n") == "ab" * 20
    with pytest.raises(UsageError, match="give all 40 hex digits"):
        check_commit("abc1234")
    with pytest.raises(UsageError, match="not a full commit id"):
        check_commit("main")


def test_credentials_in_a_repository_url_never_reach_a_message() -> None:
    url = "https://ci-bot:hunter2-token@git.example.com:8443/shop/api.git"

    assert display_url(url) == "https://git.example.com:8443/shop/api.git"
    assert display_url("git@github.com:shop/api.git") == "git@github.com:shop/api.git"

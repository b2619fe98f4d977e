"""What the workspace holds, read from a real git repository (and from outside git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.core import digest
from conveyor.engine.service import RunRequest
from conveyor.engine.sources import Sources, git_blob_id, git_facts

from .harness import Harness

IDENTITY = ("-c", "user.email=a@b", "-c", "user.name=a", "-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def write(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, {"app.py": "print(1)\n", "lib/util.py": "x = 1\n", "README.md": "hi\n"}, "one")
    return root


def sources(root: Path, excluded: tuple[str, ...] = ()) -> Sources:
    return Sources(root, root / ".conveyor", excluded)


def test_git_facts_name_the_branch_and_the_commit_sha(repo: Path) -> None:
    facts = git_facts(repo)
    assert facts.toplevel == repo
    assert facts.branch == "main"
    assert facts.commit == git(repo, "rev-parse", "HEAD")


def test_a_detached_head_has_a_commit_and_no_branch(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, {"app.py": "print(2)\n"})
    git(repo, "checkout", "-q", first)
    facts = git_facts(repo)
    assert facts.branch is None
    assert facts.commit == first


def test_a_run_in_git_records_its_branch_and_commit(harness: Harness) -> None:
    git(harness.root, "init", "-q", "-b", "main")
    sha = commit(harness.root, {"app.py": "print(1)\n"})
    result = harness.run("version: 1\njobs:\n  a: {run: a}\n")
    assert (result.run.branch, result.run.commit_sha) == ("main", sha)


def test_a_repository_without_commits_has_a_toplevel_only(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    facts = git_facts(tmp_path)
    assert (facts.toplevel, facts.branch, facts.commit) == (tmp_path, None, None)


def test_outside_git_every_fact_is_none(tmp_path: Path) -> None:
    facts = git_facts(tmp_path)
    assert (facts.toplevel, facts.branch, facts.commit) == (None, None, None)


def test_implicit_files_are_the_tracked_files_with_their_index_blob_ids(repo: Path) -> None:
    write(repo, {"untracked.txt": "not tracked\n"})
    files = sources(repo).implicit_files()
    assert set(files) == {"app.py", "lib/util.py", "README.md"}
    for path, value in files.items():
        assert value == "100644:git:" + git(repo, "rev-parse", f":{path}")


def test_an_uncommitted_edit_gets_the_id_git_add_would_give(repo: Path) -> None:
    write(repo, {"app.py": "print('edited')\n"})
    edited = sources(repo).implicit_files()["app.py"]
    assert edited == "100644:git:" + git(repo, "hash-object", "app.py")
    assert edited == "100644:" + git_blob_id(repo / "app.py")
    git(repo, "add", "app.py")
    assert sources(repo).implicit_files()["app.py"] == edited
    git(repo, "commit", "-q", "-m", "edit")
    assert sources(repo).implicit_files()["app.py"] == edited


def test_a_deleted_tracked_file_leaves_the_listing(repo: Path) -> None:
    (repo / "README.md").unlink()
    assert "README.md" not in sources(repo).implicit_files()


def test_excluded_output_globs_are_left_out(repo: Path) -> None:
    commit(repo, {"dist/app.whl": "wheel\n", "reports/junit.xml": "<x/>\n"})
    files = sources(repo, excluded=("dist/**", "reports/*.xml")).implicit_files()
    assert set(files) == {"app.py", "lib/util.py", "README.md"}


def test_implicit_files_of_a_subdirectory_are_relative_to_it(repo: Path) -> None:
    write(repo, {"lib/util.py": "x = 2\n"})
    files = sources(repo / "lib").implicit_files()
    assert files == {"util.py": "100644:git:" + git(repo / "lib", "hash-object", "util.py")}


def test_declared_files_include_untracked_but_not_ignored_files(repo: Path) -> None:
    commit(repo, {".gitignore": "*.log\n"})
    write(repo, {"lib/new.py": "new\n", "lib/debug.log": "noise\n"})
    files = sources(repo).declared_files(["lib/**"])
    assert set(files) == {"lib/util.py", "lib/new.py"}
    assert all(value.startswith("sha256:") for value in files.values())


def test_changed_files_against_an_explicit_base(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"lib/util.py": "x = 2\n"})
    write(repo, {"README.md": "unstaged\n", "new.txt": "untracked\n"})
    write(repo, {"app.py": "print(3)\n"})
    git(repo, "add", "app.py")
    assert sources(repo).changed_files(base) == {"lib/util.py", "README.md", "new.txt", "app.py"}


def test_on_main_the_default_base_is_the_previous_commit(repo: Path) -> None:
    commit(repo, {"lib/util.py": "x = 2\n"})
    commit(repo, {"app.py": "print(2)\n"})
    assert sources(repo).changed_files(None) == {"app.py"}


def test_with_a_single_commit_everything_has_changed(repo: Path) -> None:
    assert sources(repo).changed_files(None) == {"app.py", "lib/util.py", "README.md"}


def test_on_a_feature_branch_the_default_base_is_where_it_left_main(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"lib/util.py": "x = 2\n"})
    commit(repo, {"lib/more.py": "y = 1\n"})
    git(repo, "checkout", "-q", "main")
    commit(repo, {"README.md": "main moved on\n"})
    git(repo, "checkout", "-q", "feature")
    assert sources(repo).changed_files(None) == {"lib/util.py", "lib/more.py"}


def test_outside_git_changed_files_is_unknown(tmp_path: Path) -> None:
    assert sources(tmp_path).changed_files(None) is None
    assert sources(tmp_path).changed_files("HEAD") is None


def test_outside_git_implicit_files_are_every_file_but_the_state_dir(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.txt": "a\n",
            "deep/er/b.txt": "b\n",
            ".hidden": "h\n",
            ".conveyor/conveyor.db": "state\n",
            ".conveyor/cache/entry.json": "{}\n",
        },
    )
    files = sources(tmp_path).implicit_files()
    assert set(files) == {"a.txt", "deep/er/b.txt", ".hidden"}
    assert files["a.txt"] == digest.of_bytes(b"a\n")


def test_a_file_digest_follows_edits(tmp_path: Path) -> None:
    write(tmp_path, {"a.txt": "one\n"})
    src = sources(tmp_path)
    first = src.file_digest("a.txt")
    write(tmp_path, {"a.txt": "two, longer\n"})
    assert src.file_digest("a.txt") != first


CHANGED = """\
version: 1
jobs:
  src: {run: a, if: "changed('src/**')"}
  docs: {run: b, if: "changed('docs/**')"}
"""


def test_changed_conditions_see_uncommitted_edits_in_git(harness: Harness) -> None:
    git(harness.root, "init", "-q", "-b", "main")
    commit(harness.root, {"src/a.py": "1\n", "docs/i.md": "d\n"})
    commit(harness.root, {"README.md": "second commit\n"})
    write(harness.root, {"src/a.py": "2\n"})
    result = harness.run(CHANGED)
    assert {j.name: j.status for j in result.run.jobs} == {"src": "success", "docs": "skipped"}


def test_changed_conditions_compare_with_the_requested_base(harness: Harness) -> None:
    git(harness.root, "init", "-q", "-b", "main")
    base = commit(harness.root, {"src/a.py": "1\n"})
    commit(harness.root, {"docs/i.md": "d\n"})
    commit(harness.root, {"README.md": "third\n"})
    result = harness.run(CHANGED, request=RunRequest(base=base))
    assert {j.name: j.status for j in result.run.jobs} == {"src": "skipped", "docs": "success"}


def test_outside_git_every_changed_condition_is_true(harness: Harness) -> None:
    result = harness.run(CHANGED)
    assert {j.name: j.status for j in result.run.jobs} == {"src": "success", "docs": "success"}


def test_making_a_tracked_file_executable_changes_its_entry_even_before_it_is_committed(
    repo: Path,
) -> None:
    before = sources(repo).implicit_files()["app.py"]
    (repo / "app.py").chmod(0o755)
    after = sources(repo).implicit_files()["app.py"]
    assert before.startswith("100644:") and after.startswith("100755:")
    assert before.split(":", 1)[1] == after.split(":", 1)[1]

"""`conveyor release` end to end: versions from real commits, immutability, notes, pruning."""

from __future__ import annotations

import os
import time

import pytest

from .support import Workspace, WorkspaceFactory, assert_chain_intact

# The wheel is built reproducibly (fixed zip timestamps), so an unchanged source gives
# byte-identical artifacts and a changed one different artifacts.
SPEC = """
version: 1
jobs:
  test:
    run: test "$(cat src/shop/app.py)" != "broken"
    inputs: ["src/**"]
  build:
    needs: [test]
    inputs: ["src/**"]
    run: |
      mkdir -p dist
      python - <<'PY'
      import zipfile
      with zipfile.ZipFile("dist/shop-1.0-py3-none-any.whl", "w") as wheel:
          info = zipfile.ZipInfo("shop/app.py", (2020, 1, 1, 0, 0, 0))
          wheel.writestr(info, open("src/shop/app.py").read())
      PY
    outputs: ["dist/*.whl"]
delivery:
  service: shop
  artifacts: ["dist/*.whl"]
  run: python -m shop.app --port $PORT
  environments: [{name: dev}, {name: prod, requires: {after: dev}}]
"""
FILES = {"src/shop/app.py": "VERSION = 1\n", ".gitignore": "dist/\n"}
WHEEL = "dist/shop-1.0-py3-none-any.whl"


def change(ws: Workspace, source: str, message: str, *author: str) -> None:
    """Edit the source and commit it (as `author`: name and email, else the default identity)."""
    ws.write("src/shop/app.py", source)
    ws.git("add", "-A")
    identity = ("-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}") if author else ()
    ws.git(*identity, "commit", "-q", "-m", message)


def release(ws: Workspace, *args: str) -> dict[str, object]:
    """Run the pipeline, release that run with `args`, and return the JSON it printed."""
    ran = ws.run()
    assert ran.code == 0, ran.err
    result = ws.cli("release", "create", "--run", "latest", "--json", *args)
    assert result.code == 0, result.err
    doc: dict[str, object] = result.json()
    return doc


def repo(workspace: WorkspaceFactory) -> Workspace:
    ws = workspace(SPEC, files=FILES)
    ws.init_git()
    ws.git("remote", "add", "origin", "git@github.com:acme/shop.git")
    return ws


def test_versions_are_derived_from_conventional_commits_since_the_previous_release(
    workspace: WorkspaceFactory,
) -> None:
    ws = repo(workspace)

    first = release(ws)
    change(ws, "VERSION = 2\n", "feat(api): add refunds")
    second = release(ws)
    change(ws, "VERSION = 3\n", "fix: round cents")
    change(ws, "VERSION = 4\n", "feat!: drop the v1 API")
    third = release(ws)

    assert (first["version"], first["created"]) == ("0.1.0", True)
    assert first["reasons"] == ["no earlier release: no feature or breaking change, so 0.1.0"]
    assert second["version"] == "0.2.0"
    assert second["previous_version"] == "0.1.0"
    assert "a feature in" in str(second["reasons"])
    assert third["version"] == "1.0.0"
    assert third["reasons"] == [
        f"2 commits since 0.2.0: a breaking change in {str(third['commit'])[:7]} "
        "(drop the v1 API), so a major release"
    ]
    assert third["commit"] == ws.git("rev-parse", "HEAD").strip()
    assert [a["path"] for a in third["artifacts"]] == [WHEEL]  # type: ignore[index, union-attr]
    listed = ws.cli("release", "list", "--json").json()["releases"]
    assert [r["version"] for r in listed] == ["1.0.0", "0.2.0", "0.1.0"]


def test_a_version_is_immutable_and_the_same_content_again_is_idempotent(
    workspace: WorkspaceFactory,
) -> None:
    ws = repo(workspace)
    recorded = release(ws, "--version", "v1.0.0")
    events_before = len(ws.events())

    again = ws.cli("release", "create", "--run", "1", "--version", "1.0.0")
    rerun = release(ws)  # nothing changed: every job cached, byte-identical wheel
    change(ws, "VERSION = 2\n", "fix: other content")
    ws.run()
    refused = ws.cli("release", "create", "--run", "latest", "--version", "1.0.0")

    assert recorded["version"] == "1.0.0"
    assert again.code == 0, again.err
    assert "shop 1.0.0 was already released; nothing recorded" in again.out
    assert (rerun["version"], rerun["created"], rerun["run"]) == ("1.0.0", False, 1)
    assert refused.code == 2
    assert "shop 1.0.0 is already released with other content (from run 1)" in refused.err
    assert f"artifact {WHEEL} is sha256:" in refused.err
    assert "source commit" in refused.err
    release_events = [e for e in ws.events()[events_before - 1 :] if e["kind"] == "release.created"]
    assert [e["subject"] for e in release_events] == ["release/shop/1.0.0"]
    shown = ws.cli("release", "show", "1.0.0", "--json").json()
    assert shown["run"] == 1


def test_notes_group_the_commits_by_kind_with_authors_short_shas_and_links(
    workspace: WorkspaceFactory,
) -> None:
    ws = repo(workspace)
    release(ws)
    change(ws, "VERSION = 2\n", "feat(cart): show totals", "Grace Hopper", "grace@example.com")
    change(ws, "VERSION = 3\n", "fix: round cents\n\nRefs #12")
    change(ws, "VERSION = 4\n", "perf: cache prices")
    change(ws, "VERSION = 5\n", "docs: explain refunds")
    change(ws, "VERSION = 6\n", "refactor(api)!: rename routes\n\nBREAKING CHANGE: /v1 is gone")
    release(ws)
    fix = ws.git("log", "--format=%H", "--grep", "round cents").strip()

    notes = ws.cli("release", "notes", "1.0.0")
    doc = ws.cli("release", "notes", "v1.0.0", "--json").json()
    changelog = ws.cli("release", "notes", "latest", "--changelog")

    assert notes.code == 0, notes.err
    text = notes.out
    assert text.startswith("## shop 1.0.0 (")
    order = ["### Breaking changes", "### Features", "### Fixes", "### Performance", "### Other"]
    assert [text.index(title) for title in order] == sorted(text.index(t) for t in order)
    assert "- **cart:** show totals ([" in text
    assert "by Grace Hopper" in text
    assert (
        f"- round cents ([{fix[:7]}](https://github.com/acme/shop/commit/{fix})) by Dev Eloper"
        in text
    )
    assert "- refactor(api): rename routes" in text
    assert "  /v1 is gone" in text
    assert "[Changes since 0.1.0](https://github.com/acme/shop/compare/" in text
    assert "### Authors\n\nDev Eloper, Grace Hopper\n" in text
    assert [s["title"] for s in doc["sections"]] == [t.removeprefix("### ") for t in order]
    assert doc["authors"] == ["Dev Eloper", "Grace Hopper"]
    assert changelog.out.startswith("# Changelog of shop\n")
    assert changelog.out.index("## shop 1.0.0") < changelog.out.index("## shop 0.1.0")


def test_a_failed_run_cannot_be_released(workspace: WorkspaceFactory) -> None:
    ws = repo(workspace)
    change(ws, "broken", "fix: oops")
    assert ws.run().code == 1

    result = ws.cli("release", "create", "--run", "latest")

    assert result.code == 2
    assert "run 1 failed: only a successful run can be released" in result.err
    assert ws.cli("release", "list", "--json").json() == {"releases": []}


def test_pruning_the_cache_never_deletes_released_artifacts(workspace: WorkspaceFactory) -> None:
    ws = repo(workspace)
    released = release(ws)
    change(ws, "VERSION = 2\n" + "# padding\n" * 200, "fix: bigger")
    unreleased = ws.run().json()
    hours_ago = time.time() - 3 * 3600
    for path in ws.state.joinpath("cas").rglob("*"):
        if path.is_file():
            os.utime(path, (hours_ago, hours_ago))

    pruned = ws.cli("cache", "prune", "--max-size", "1KB", "--keep-runs", "0", "--json")

    assert pruned.code == 0, pruned.err
    assert pruned.json()["blobs_removed"] >= 1
    kept = released["artifacts"][0]["digest"]  # type: ignore[index]
    gone = next(o for j in unreleased["jobs"] for o in j["outputs"])["digest"]
    assert ws.blob_path(str(kept)).exists()
    assert not ws.blob_path(gone).exists()
    fetched = ws.cli("artifacts", "get", str(kept), "-o", str(ws.side / "shop.whl"))
    assert fetched.code == 0, fetched.err


def test_outside_git_the_version_is_assumed_and_the_assumption_is_printed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC, files=FILES)
    assert ws.run().code == 0

    result = ws.cli("release", "create", "--run", "latest")

    assert result.code == 0, result.err
    assert result.out.startswith("released shop 0.1.0 from run 1\n")
    assert "run 1 was not made from a git commit; assumed 0.1.0 for the first release" in result.out
    assert "commit    - (not made from a git commit)" in result.out


def test_bad_versions_unknown_runs_and_unknown_releases_are_bad_input(
    workspace: WorkspaceFactory,
) -> None:
    ws = repo(workspace)
    assert ws.run().code == 0

    bad = ws.cli("release", "create", "--run", "latest", "--version", "1.0")
    unknown_run = ws.cli("release", "create", "--run", "99")
    unknown = ws.cli("release", "show", "2.0.0")
    missing_run = ws.cli("release", "create")

    assert bad.code == 2
    assert "'1.0' is not a semantic version; write MAJOR.MINOR.PATCH" in bad.err
    assert unknown_run.code == 2
    assert "there is no run 99" in unknown_run.err
    assert unknown.code == 2
    assert "there are no releases yet" in unknown.err
    assert missing_run.code == 2
    assert "--run" in missing_run.err


def test_a_release_is_an_event_in_the_verified_log(workspace: WorkspaceFactory) -> None:
    ws = repo(workspace)
    doc = release(ws)

    events = ws.events()
    created = [e for e in events if e["kind"] == "release.created"]

    assert_chain_intact(events)
    assert [e["subject"] for e in created] == ["release/shop/0.1.0"]
    assert f'"commit":"{doc["commit"]}"' in created[0]["data"]
    assert ws.cli("audit", "verify").code == 0


def test_a_store_that_cannot_be_reached_is_an_infrastructure_fault(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SPEC, files=FILES)

    result = ws.cli(
        "release", "list", env={"CONVEYOR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    )

    assert result.code == 3
    assert "cannot reach the database" in result.err


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_releases_work_the_same_on_postgresql(
    workspace: WorkspaceFactory, database_url: str
) -> None:
    ws = repo(workspace)
    ws.env["CONVEYOR_DATABASE_URL"] = database_url
    assert ws.cli("db", "upgrade").code == 0

    first = release(ws)
    again = release(ws)
    change(ws, "VERSION = 2\n", "feat: add refunds")
    second = release(ws)
    notes = ws.cli("release", "notes", "0.2.0")

    assert (first["version"], first["created"]) == ("0.1.0", True)
    assert (again["version"], again["created"]) == ("0.1.0", False)
    assert second["version"] == "0.2.0"
    assert "### Features\n\n- add refunds ([" in notes.out
    listed = ws.cli("release", "list", "--json").json()["releases"]
    assert [r["version"] for r in listed] == ["0.2.0", "0.1.0"]

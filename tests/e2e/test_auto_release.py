"""A successful run on the default branch releases itself and deploys where `auto: true` says."""

from __future__ import annotations

from typing import Any

from .instances import delivering, get, server
from .support import Workspace, WorkspaceFactory

SPEC = delivering(
    """\
    - name: dev
      auto: true
    - name: staging
      requires: {after: dev}
"""
)
FILES = {"app/server.py": server(), ".gitignore": "dist/\n"}


def in_git(workspace: WorkspaceFactory, branch: str = "main") -> Workspace:
    ws = workspace(SPEC, files=FILES)
    ws.init_git(branch)
    return ws


def releases(ws: Workspace) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = ws.cli("release", "list", "--json").json()["releases"]
    return listed


def test_a_successful_run_on_main_is_released_and_deployed_to_the_auto_environment(
    workspace: WorkspaceFactory,
) -> None:
    ws = in_git(workspace)

    ran = ws.run()

    assert ran.code == 0, ran.err
    doc = ran.json()
    assert doc["status"] == "success"
    assert doc["release"]["version"] == "0.1.0"
    assert doc["release"]["created"] is True
    [promotion] = doc["release"]["promotions"]
    assert (promotion["environment"], promotion["state"]) == ("dev", "deployed")
    assert promotion["deployment"]["phase"] == "succeeded"
    status = ws.cli("status", "--json").json()
    dev = next(e for e in status["environments"] if e["name"] == "dev")
    assert get(dev["instances"][0]["address"]) == (200, "0.1.0")
    assert [p["environment"] for p in ws.cli("promotions", "--json").json()["promotions"]] == [
        "dev"
    ]


def test_a_run_with_nothing_new_is_not_released_again_and_still_succeeds(
    workspace: WorkspaceFactory,
) -> None:
    ws = in_git(workspace)
    ws.run()

    again = ws.cli("run")

    assert again.code == 0, again.err
    assert "note: not released: run 2's content is released as 0.1.0" in again.out
    assert [r["version"] for r in releases(ws)] == ["0.1.0"]


def test_a_feat_commit_makes_the_next_minor_release(workspace: WorkspaceFactory) -> None:
    ws = in_git(workspace)
    ws.run()
    ws.write("app/server.py", server() + "\n# refunds\n")
    ws.commit("feat: refunds")

    ran = ws.run()

    assert ran.json()["release"]["version"] == "0.2.0"
    assert ran.json()["release"]["promotions"][0]["state"] == "deployed"


def test_a_run_on_another_branch_is_not_released(workspace: WorkspaceFactory) -> None:
    ws = in_git(workspace)
    ws.git("checkout", "-q", "-b", "feature/refunds")

    ran = ws.run()

    assert ran.code == 0, ran.err
    assert ran.json()["release"] == {
        "version": None,
        "created": False,
        "promotions": [],
        "notes": ["not released: run 1 is on branch 'feature/refunds', not the default 'main'"],
    }
    assert releases(ws) == []


def test_no_release_runs_without_releasing(workspace: WorkspaceFactory) -> None:
    ws = in_git(workspace)

    ran = ws.run("--no-release")

    assert ran.code == 0, ran.err
    assert "release" not in ran.json()
    assert releases(ws) == []
    assert ws.cli("promotions", "--json").json()["promotions"] == []


def test_a_failed_run_is_not_released(workspace: WorkspaceFactory) -> None:
    ws = in_git(workspace)
    ws.write("conveyor.yaml", ws.read("conveyor.yaml").replace("mkdir -p dist &&", "false &&"))
    ws.commit("chore: break the build")

    ran = ws.run()

    assert ran.code == 1
    assert "release" not in ran.json()
    assert releases(ws) == []


def test_without_an_auto_environment_a_run_is_not_released(workspace: WorkspaceFactory) -> None:
    ws = in_git(workspace)
    ws.write("conveyor.yaml", ws.read("conveyor.yaml").replace("      auto: true\n", ""))
    ws.commit("chore: promote by hand")

    ran = ws.run()

    assert ran.code == 0, ran.err
    assert "release" not in ran.json()
    assert releases(ws) == []

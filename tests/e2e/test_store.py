"""The embedded store end to end: where state lives, migrations, and the event log."""

from __future__ import annotations

import json

from .support import WorkspaceFactory, assert_chain_intact

TWO_JOBS = """
version: 1
jobs:
  first:
    inputs: []
    run: echo first > first.txt
    outputs: [first.txt]
  second:
    needs: [first]
    inputs: []
    run: exit 5
    allow_failure: true
"""


def test_state_lives_in_the_workspace_under_a_git_ignored_state_directory(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(TWO_JOBS, fresh=True)
    ws.init_git()

    result = ws.run()

    assert result.code == 0, result.err
    assert ws.db_path.is_file()
    assert (ws.state / ".gitignore").is_file()
    status = ws.git("status", "--porcelain", "--untracked-files=all")
    assert ".conveyor" not in status
    assert ws.query("PRAGMA journal_mode") == [("wal",)]
    assert ws.query("SELECT version_num FROM alembic_version")


def test_conveyor_home_moves_the_state_out_of_the_workspace(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(TWO_JOBS, fresh=True)
    home = ws.side / "state"

    result = ws.run(env={"CONVEYOR_HOME": str(home)})
    runs = ws.cli("runs", "--json", env={"CONVEYOR_HOME": str(home)})

    assert result.code == 0, result.err
    assert (home / "conveyor.db").is_file()
    assert not ws.state.exists()
    assert [r["id"] for r in runs.json()["runs"]] == [result.json()["id"]]


def test_every_run_and_job_state_change_is_a_chained_event(workspace: WorkspaceFactory) -> None:
    ws = workspace(TWO_JOBS)

    run = ws.run().json()
    ws.run()

    events = ws.events()
    assert_chain_intact(events)
    first_run = [
        (e["kind"], e["subject"]) for e in events if e["subject"].startswith(f"run/{run['id']}")
    ]
    assert first_run[0] == ("run.started", f"run/{run['id']}")
    assert first_run[-1] == ("run.success", f"run/{run['id']}")
    for job, final in (("first", "job.success"), ("second", "job.failed")):
        kinds = [k for k, s in first_run if s == f"run/{run['id']}/job/{job}"]
        assert kinds == ["job.running", final]
    failed = next(e for e in events if e["kind"] == "job.failed")
    assert json.loads(failed["data"])["exit_code"] == 5
    cached = [e for e in events if e["kind"] == "job.cached"]
    assert [e["subject"] for e in cached] == ["run/2/job/first"]
    assert all(e["actor"] == "e2e@example.com" for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_history_can_be_filtered_by_status_and_limited(workspace: WorkspaceFactory) -> None:
    ws = workspace("version: 1\njobs:\n  a:\n    inputs: []\n    cache: false\n    run: echo a\n")
    ws.run()
    ws.spec("version: 1\njobs:\n  a:\n    inputs: []\n    run: exit 1\n")
    ws.run()
    ws.run()

    failed = ws.cli("runs", "--status", "failed", "--json").json()["runs"]
    newest = ws.cli("runs", "--limit", "1", "--json").json()["runs"]
    text = ws.cli("runs")
    none = ws.cli("runs", "--branch", "nosuch", "--status", "success")

    assert (none.code, none.out) == (0, "no runs match --status success --branch nosuch\n")
    assert [r["id"] for r in failed] == [3, 2]
    assert [r["id"] for r in newest] == [3]
    assert text.code == 0
    assert [line.split()[:2] for line in text.out.splitlines()[1:]] == [
        ["3", "failed"],
        ["2", "failed"],
        ["1", "success"],
    ]

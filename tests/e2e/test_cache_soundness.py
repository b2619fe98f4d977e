"""A cached result must never be replayed when what decides it changed, nor escape the workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

from .support import WorkspaceFactory, jobs_by_name

THROUGH_A_SILENT_JOB = """
version: 1
jobs:
  build:
    inputs: ["src/**"]
    run: mkdir -p dist && cp src/app.txt dist/app.whl
    outputs: [dist/app.whl]
  test:
    needs: [build]
    inputs: ["tests/**"]
    run: grep -q v dist/app.whl
  publish:
    needs: [test]
    inputs: [dist/app.whl]
    run: mkdir -p pub && cp dist/app.whl pub/published
    outputs: [pub/published]
"""


def test_a_job_reading_an_ancestors_output_reruns_when_that_output_changes(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(THROUGH_A_SILENT_JOB, files={"src/app.txt": "v1\n"})
    assert ws.run().code == 0
    ws.write("src/app.txt", "v2\n")

    second = ws.run("--explain").json()

    publish = jobs_by_name(second)["publish"]
    assert publish["status"] == "success"
    assert any("upstream 'build' output dist/app.whl changed" in r for r in publish["explain"])
    assert ws.read("pub/published") == "v2\n"


def test_making_an_input_not_executable_reruns_the_job(workspace: WorkspaceFactory) -> None:
    spec = "version: 1\njobs:\n  run:\n    inputs: [run.sh]\n    run: ./run.sh > out.txt\n"
    ws = workspace(spec, files={"run.sh": "#!/bin/sh\necho ran\n"})
    (ws.root / "run.sh").chmod(0o755)
    assert ws.run().code == 0
    (ws.root / "run.sh").chmod(0o644)

    again = ws.run()

    assert again.code == 1
    assert jobs_by_name(again.json())["run"]["status"] == "failed"


def test_an_output_left_by_an_earlier_run_and_not_written_again_is_reported(
    workspace: WorkspaceFactory,
) -> None:
    spec = (
        "version: 1\njobs:\n  build:\n    inputs: []\n    run: {run}\n    outputs: [dist/*.whl]\n"
    )
    ws = workspace(spec.format(run="mkdir -p dist && echo 1 > dist/app-1.0.whl"))
    assert ws.run().code == 0
    ws.spec(spec.format(run="echo 'the build broke silently'"))

    again = ws.run()

    # Outputs are not removed first (another run in this workspace may be reading
    # them), so the stale file is collected, but never silently.
    assert "build: output dist/app-1.0.whl was not written by this run" in again.err
    written = ws.run()  # nothing changed: restored from the cache, no warning
    assert "was not written" not in written.err


def test_an_output_reached_through_a_symlink_out_of_the_workspace_fails_the_job(
    workspace: WorkspaceFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    spec = "version: 1\njobs:\n  grab:\n    inputs: []\n    run: 'true'\n    outputs: [lnk/*.txt]\n"
    ws = workspace(spec)
    (ws.root / "lnk").symlink_to(outside)

    result = ws.run()

    assert result.code == 1
    grab = jobs_by_name(result.json())["grab"]
    assert "leads outside the workspace" in grab["reason"]
    assert grab["outputs"] == []


def test_a_restore_never_writes_through_a_directory_replaced_by_a_symlink(
    workspace: WorkspaceFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    spec = (
        "version: 1\njobs:\n  make:\n    inputs: []\n    run: mkdir -p out && echo x > out/x.txt\n"
    )
    ws = workspace(spec + "    outputs: [out/x.txt]\n")
    assert ws.run().code == 0
    for path in (ws.root / "out").iterdir():
        path.unlink()
    (ws.root / "out").rmdir()
    (ws.root / "out").symlink_to(outside)

    again = ws.run()

    assert (
        not (outside / "x.txt").exists() or jobs_by_name(again.json())["make"]["status"] != "cached"
    )
    assert "leads outside the workspace" in again.err or "outside" in again.out


def test_globs_that_leave_the_workspace_are_bad_input(workspace: WorkspaceFactory) -> None:
    spec = (
        "version: 1\njobs:\n  a:\n    workdir: app\n    run: 'true'\n"
        "    inputs: ['../shared/**', '../../etc/**']\n"
    )
    ws = workspace(spec)

    result = ws.cli("run")

    assert result.code == 2
    assert "conveyor.yaml:6:30: '../../etc/**' leads outside the workspace" in result.err
    assert "'../shared/**'" not in result.err


def test_an_input_pattern_that_names_nothing_is_reported(workspace: WorkspaceFactory) -> None:
    ws = workspace("version: 1\njobs:\n  a:\n    inputs: [mian.txt]\n    run: 'true'\n")

    result = ws.cli("run")

    assert result.code == 0
    assert "a: input pattern 'mian.txt' matches no file" in result.out


def test_a_base_that_is_not_a_commit_is_bad_input_not_a_silent_skip(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace("version: 1\njobs:\n  t:\n    run: 'true'\n    if: changed('src/**')\n")
    ws.init_git()

    result = ws.cli("run", "--base", "mian")

    assert result.code == 2
    assert "--base mian: no such commit" in result.err
    assert ws.runs() == []


def test_a_store_that_cannot_take_an_output_is_an_infrastructure_fault(
    workspace: WorkspaceFactory,
) -> None:
    spec = (
        "version: 1\njobs:\n  a:\n    inputs: []\n"
        "    run: echo hi > out.txt\n    outputs: [out.txt]\n"
    )
    ws = workspace(spec)
    assert ws.run().code == 0
    shutil.rmtree(ws.state / "cas" / "tmp")
    shutil.rmtree(ws.state / "cache")
    (ws.state / "cas" / "tmp").write_text("not a directory")
    ws.spec(spec.replace("echo hi", "echo hello"))

    result = ws.cli("run")

    assert result.code == 3
    assert "cannot store" in result.err
    assert "Traceback" not in result.err
    (run,) = [r for r in ws.runs() if r["error"]]
    assert run["status"] == "failed"


def test_outputs_never_take_conveyors_own_state_and_its_keys(
    workspace: WorkspaceFactory,
) -> None:
    # `**` names every file of the workspace but Conveyor's state directory: its signing
    # and encryption keys, its database and its locks would otherwise become artifacts.
    spec = (
        "version: 1\njobs:\n  build:\n    inputs: []\n"
        "    run: mkdir -p dist && echo w > dist/a.whl\n    outputs: ['**']\n"
    )
    ws = workspace(spec)
    state = ws.root / "state"  # a state directory of another name inside the workspace

    for env in (None, {"CONVEYOR_HOME": str(state)}):
        result = ws.run("--no-cache", env=env)

        assert result.code == 0, result.err
        paths = [o["path"] for o in jobs_by_name(result.json())["build"]["outputs"]]
        assert "dist/a.whl" in paths
        assert not [p for p in paths if p.startswith((".conveyor/", "state/"))]
    assert (ws.root / ".conveyor" / "secret.key").exists() or any(
        (ws.root / ".conveyor").rglob("*.key")
    )


def test_an_output_naming_conveyors_state_is_bad_input(workspace: WorkspaceFactory) -> None:
    spec = (
        "version: 1\njobs:\n  a:\n    workdir: app\n    run: 'true'\n"
        "    outputs: ['../.conveyor/**']\n"
    )
    ws = workspace(spec)

    result = ws.cli("run")

    assert result.code == 2
    assert "conveyor.yaml:6:15: '../.conveyor/**' names Conveyor's own state" in result.err
    assert ws.runs() == []

"""`conveyor run` end to end: the summary, history, logs, artifacts, selection and output."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from .support import WorkspaceFactory, jobs_by_name

DIAMOND = """
version: 1
jobs:
  prepare:
    run: |
      mkdir -p gen
      echo "version=1.2.3" > gen/config.txt
      echo "prepared the config"
    outputs: [gen/config.txt]
  build:
    needs: [prepare]
    run: |
      mkdir -p dist
      { cat gen/config.txt; echo "binary"; } > dist/app.bin
      echo "built the app"
    outputs: [dist/app.bin]
  lint:
    needs: [prepare]
    run: |
      grep -q version= gen/config.txt
      echo "lint is clean" >&2
  package:
    needs: [build, lint]
    run: |
      { echo "package"; cat dist/app.bin; } > dist/app.pkg
      echo "packaged"
    outputs: [dist/app.pkg]
"""

JOB_KEYS = {"name", "status", "cached", "duration_s", "exit_code", "outputs", "tests"}


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_four_job_dag_runs_and_prints_one_json_summary(workspace: WorkspaceFactory) -> None:
    ws = workspace(DIAMOND)

    result = ws.run()

    assert result.code == 0, result.err
    run = result.json()  # exactly one JSON object, nothing else on stdout
    assert {"id", "status", "duration_s", "jobs"} <= run.keys()
    assert run["status"] == "success"
    assert isinstance(run["id"], int)
    assert isinstance(run["duration_s"], float | int)
    assert run["duration_s"] >= 0
    assert [j["name"] for j in run["jobs"]] == ["prepare", "build", "lint", "package"]
    for job in run["jobs"]:
        assert job.keys() >= JOB_KEYS
        assert job["status"] == "success"
        assert job["cached"] is False
        assert job["exit_code"] == 0
        assert job["duration_s"] >= 0
        assert job["tests"] is None
    jobs = jobs_by_name(run)
    assert [o["path"] for o in jobs["prepare"]["outputs"]] == ["gen/config.txt"]
    assert [o["path"] for o in jobs["build"]["outputs"]] == ["dist/app.bin"]
    assert jobs["lint"]["outputs"] == []
    for job in run["jobs"]:
        for output in job["outputs"]:
            assert output["digest"] == sha256_of((ws.root / output["path"]).read_bytes())


def test_a_dependent_job_starts_only_after_its_needs_and_sees_their_outputs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)

    run = ws.run().json()

    assert ws.read("dist/app.bin") == "version=1.2.3\nbinary\n"
    jobs = jobs_by_name(run)
    assert jobs["package"]["needs"] == ["build", "lint"]
    rows = dict(ws.query("SELECT name, started_at FROM job_runs WHERE run_id = ?", (run["id"],)))
    ends = dict(ws.query("SELECT name, finished_at FROM job_runs WHERE run_id = ?", (run["id"],)))
    assert rows["build"] >= ends["prepare"]
    assert rows["lint"] >= ends["prepare"]
    assert rows["package"] >= max(ends["build"], ends["lint"])


def test_show_runs_logs_and_artifacts_report_the_run_that_was_printed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)
    run = ws.run().json()
    run_id = str(run["id"])

    shown = ws.cli("show", run_id, "--json")
    latest = ws.cli("show", "latest", "--json")
    history = ws.cli("runs", "--json")
    build_log = ws.cli("logs", run_id, "build")
    lint_log = ws.cli("logs", run_id, "lint")
    listed = ws.cli("artifacts", "ls", run_id, "--json")

    assert shown.code == 0, shown.err
    # `run` prints the Run it recorded without reading it back: the same document.
    assert shown.json() == run
    assert shown.json()["status"] == "success"
    assert latest.json()["id"] == run["id"]
    assert history.code == 0
    assert [(r["id"], r["status"]) for r in history.json()["runs"]] == [(run["id"], "success")]
    assert build_log.code == 0
    assert "built the app" in build_log.out.splitlines()
    assert "lint is clean" in lint_log.out.splitlines()  # stderr is captured too
    assert listed.code == 0, listed.err
    artifacts = listed.json()["artifacts"]
    assert sorted((a["job"], a["path"]) for a in artifacts) == [
        ("build", "dist/app.bin"),
        ("package", "dist/app.pkg"),
        ("prepare", "gen/config.txt"),
    ]
    for artifact in artifacts:
        data = (ws.root / artifact["path"]).read_bytes()
        assert artifact["digest"].startswith("sha256:")
        assert artifact["digest"] == sha256_of(data)
        assert artifact["size"] == len(data)
    # The digest as the table shows it (shortened) names the artifact to get.
    table = ws.cli("artifacts", "ls", run_id).out
    row = next(line for line in table.splitlines() if "dist/app.bin" in line)
    (short,) = (word for word in row.split() if word.startswith("sha256:"))
    got = ws.cli("artifacts", "get", short, "-o", str(ws.side / "app.bin"))
    assert got.code == 0, got.err
    assert (ws.side / "app.bin").read_bytes() == (ws.root / "dist/app.bin").read_bytes()
    not_hex = ws.cli("artifacts", "get", "sha256:zzzzzzzzzzzz", "-o", str(ws.side / "x"))
    assert not_hex.code == 2 and "is not an artifact digest" in not_hex.err
    too_short = ws.cli("artifacts", "get", short[:12], "-o", str(ws.side / "x"))
    unknown = ws.cli("artifacts", "get", "sha256:ffffffffffff", "-o", str(ws.side / "x"))
    assert too_short.code == 2 and "at least 8" in too_short.err
    assert unknown.code == 2 and "no artifact sha256:ffffffffffff... here" in unknown.err


def test_show_logs_and_explain_of_an_unknown_run_or_job_exit_2(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)
    ws.run()

    show = ws.cli("show", "999")
    misspelled = ws.cli("show", "lates")
    logs = ws.cli("logs", "latest", "biuld")
    explain = ws.cli("explain", "latest", "pakage")

    assert show.code == 2
    assert "999" in show.err
    assert misspelled.code == 2
    assert "'lates' is not a run id; did you mean 'latest'?" in misspelled.err
    assert ws.cli("show", "Latest").code == 0
    assert logs.code == 2
    assert "did you mean 'build'" in logs.err
    assert explain.code == 2
    assert "did you mean 'package'" in explain.err
    assert "Traceback" not in show.err + logs.err + explain.err


def test_run_with_a_job_name_runs_that_job_and_its_needs_only(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)

    result = ws.run("build")

    assert result.code == 0, result.err
    run = jobs_by_name(result.json())
    assert sorted(run) == ["build", "prepare"]
    assert all(job["status"] == "success" for job in run.values())
    assert not (ws.root / "dist/app.pkg").exists()


def test_an_unknown_job_name_exits_2_with_a_did_you_mean_and_runs_nothing(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)

    code, _, err = ws.cli("run", "biuld")

    assert code == 2
    assert "biuld" in err
    assert "did you mean 'build'" in err
    assert "Traceback" not in err
    assert not (ws.root / "gen").exists()
    assert ws.runs() == []


def test_without_a_terminal_progress_is_plain_prefixed_lines(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)

    code, out, err = ws.cli("run")

    assert code == 0, err
    lines = out.splitlines()
    assert "[prepare] prepared the config" in lines
    assert "[build] built the app" in lines
    assert "[lint] lint is clean" in lines
    assert "[package] packaged" in lines
    assert "\x1b[" not in out
    assert "\x1b[" not in err
    assert any("success" in line for line in lines[-6:])


MATRIX = """
version: 1
jobs:
  test:
    matrix:
      python: ["3.11", "3.12"]
    run: |
      echo "testing on $python"
      sleep 0.2
      date +%s.%N > "$SIDE/test-$python.end"
  report:
    needs: [test]
    run: |
      date +%s.%N > "$SIDE/report.start"
      echo "all tests done"
  unrelated:
    run: echo unrelated
"""


def test_a_matrix_expands_into_one_named_job_per_value_and_needs_wait_for_all(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(MATRIX)

    result = ws.run()

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert sorted(jobs) == ["report", "test (python=3.11)", "test (python=3.12)", "unrelated"]
    assert sorted(jobs["report"]["needs"]) == ["test (python=3.11)", "test (python=3.12)"]
    report_start = ws.side_floats("report.start")[0]
    assert report_start >= ws.side_floats("test-3.11.end")[0]
    assert report_start >= ws.side_floats("test-3.12.end")[0]
    log = ws.cli("logs", "latest", "test (python=3.12)")
    assert log.code == 0
    assert "testing on 3.12" in log.out
    for command in ("logs", "explain"):
        by_base_name = ws.cli(command, "latest", "test")
        assert by_base_name.code == 2
        assert (
            "'test' is a matrix job in run 1; name one of its jobs: "
            "'test (python=3.11)', 'test (python=3.12)'"
        ) in by_base_name.err


def test_a_job_or_run_named_wrongly_is_said_with_what_to_write(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(MATRIX)
    assert ws.run("unrelated").code == 0

    cased = ws.cli("logs", "latest", "UNRELATED")
    unknown = ws.cli("logs", "latest", "nope")
    wide = ws.cli("show", "\uff11")  # a full-width 1 is not a run id

    assert (cased.code, unknown.code, wide.code) == (2, 2, 2)
    assert "run 1 has no job 'UNRELATED'; did you mean 'unrelated'?" in cased.err
    assert "run 1 has no job 'nope'; its jobs are 'unrelated'" in unknown.err
    assert "is not a run id" in wide.err


def test_running_a_matrix_job_by_its_name_runs_every_expansion(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(MATRIX)

    result = ws.run("test")

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert sorted(jobs) == ["test (python=3.11)", "test (python=3.12)"]
    assert {job["status"] for job in jobs.values()} == {"success"}


MATRIX_OUTPUTS = """
version: 1
jobs:
  build:
    matrix: {os: [linux, darwin]}
    workdir: "platforms/${os}"
    inputs: ["src.txt"]
    run: |
      mkdir -p ../../dist
      cat src.txt > "../../dist/app-$os"
    outputs: ["../../dist/app-${os}"]
  ship:
    needs: [build]
    inputs: []
    run: cat dist/app-linux dist/app-darwin
"""


def test_each_expansion_of_a_matrix_job_has_its_own_workdir_and_outputs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(MATRIX_OUTPUTS)
    ws.write("platforms/linux/src.txt", "built on linux\n")
    ws.write("platforms/darwin/src.txt", "built on darwin\n")

    first = ws.run()

    assert first.code == 0, first.err
    jobs = jobs_by_name(first.json())
    assert {name: [o["path"] for o in job["outputs"]] for name, job in jobs.items()} == {
        "build (os=linux)": ["dist/app-linux"],
        "build (os=darwin)": ["dist/app-darwin"],
        "ship": [],
    }
    assert ws.cli("logs", "latest", "ship").out == "built on linux\nbuilt on darwin\n"
    # Each expansion's cache entry holds its own file, and restores it.
    for name in ("app-linux", "app-darwin"):
        (ws.root / "dist" / name).unlink()
    again = ws.run()
    assert again.code == 0, again.err
    assert {job["status"] for job in again.json()["jobs"]} == {"cached"}
    assert ws.read("dist/app-darwin") == "built on darwin\n"
    # An expansion's inputs are its own: changing darwin's source re-runs only darwin.
    ws.write("platforms/darwin/src.txt", "rebuilt on darwin\n")
    third = jobs_by_name(ws.run().json())
    assert third["build (os=linux)"]["status"] == "cached"
    assert third["build (os=darwin)"]["status"] == "success"
    assert ws.read("dist/app-darwin") == "rebuilt on darwin\n"


def test_run_finds_the_pipeline_from_a_subdirectory_and_runs_jobs_at_its_root(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(DIAMOND)
    (ws.root / "deep" / "er").mkdir(parents=True)
    elsewhere = workspace(fresh=True)

    from_below = ws.cli("run", "--json", "prepare", cwd=ws.root / "deep" / "er")
    with_file = ws.cli("run", "--json", "-f", str(ws.root / "conveyor.yaml"), cwd=elsewhere.root)

    assert from_below.code == 0, from_below.err
    assert (ws.root / "gen" / "config.txt").is_file()
    assert not (ws.root / "deep" / "er" / "gen").exists()
    assert with_file.code == 0, with_file.err
    assert {j["name"]: j["status"] for j in with_file.json()["jobs"]}["prepare"] == "cached"
    assert not elsewhere.state.exists()


CHATTY = """
version: 1
jobs:
  talk:
    inputs: []
    run: |
      for i in $(seq 1 2000); do echo "line $i"; done
      touch "$SIDE/talk.done"
  after:
    needs: [talk]
    inputs: []
    run: touch "$SIDE/after.done"
"""


@pytest.mark.parametrize("where", ["closed-pipe", "full-disk"])
def test_progress_that_cannot_be_printed_does_not_change_the_outcome_of_the_run(
    workspace: WorkspaceFactory, where: str
) -> None:
    ws = workspace(CHATTY)
    if where == "closed-pipe":  # like `conveyor run | head -1` after head has exited
        read_end, write_end = os.pipe()
        os.close(read_end)
        stdout = os.fdopen(write_end, "wb")
    else:
        stdout = open("/dev/full", "wb")  # noqa: SIM115 - closed below

    with stdout:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", "run"],
            cwd=ws.root,
            env=ws.env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )

    assert "Traceback" not in done.stderr
    assert ws.side_file("talk.done").exists()
    assert ws.side_file("after.done").exists()
    run = ws.cli("show", "latest", "--json").json()
    assert run["status"] == "success", run
    assert {job["name"]: job["status"] for job in run["jobs"]} == {
        "talk": "success",
        "after": "success",
    }
    assert "line 2000" in ws.cli("logs", "latest", "talk").out
    assert done.returncode == 0, done.stderr

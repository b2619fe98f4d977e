"""Stopping a Run from outside: Ctrl-C, SIGTERM, SIGKILL, and two Runs at once."""

from __future__ import annotations

import hashlib
import json
import signal
import time

import pytest

from .support import WorkspaceFactory, assert_chain_intact, jobs_by_name, process_alive, wait_for

LONG = """
version: 1
jobs:
  slow_a:
    inputs: []
    run: |
      sleep 300 &
      echo $! > "$SIDE/slow_a-background.pid"
      sh -c 'echo $$ > "$SIDE/slow_a-foreground.pid"; exec sleep 300'
  slow_b:
    inputs: []
    run: |
      sh -c 'echo $$ > "$SIDE/slow_b-foreground.pid"; exec sleep 300'
  queued:
    inputs: []
    run: touch "$SIDE/queued.ran"
  after:
    needs: [slow_a, slow_b]
    inputs: []
    run: touch "$SIDE/after.ran"
"""
STARTED = {"slow_a-background", "slow_a-foreground", "slow_b-foreground"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("sig", "json_output"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigint", "sigterm-json"],
)
def test_a_signal_cancels_the_run_kills_every_job_and_leaves_the_store_usable(
    workspace: WorkspaceFactory, sig: signal.Signals, json_output: bool
) -> None:
    ws = workspace(LONG)
    proc = ws.start("run", "--jobs", "2", *(["--json"] if json_output else []))
    wait_for(lambda: set(ws.pids()) >= STARTED, timeout=20, what="both slow jobs to start")

    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=15)

    assert time.monotonic() - sent < 10
    code, out, err = ws.output_of(proc)
    assert code == 1, err
    assert "Traceback" not in err
    if json_output:
        assert json.loads(out)["status"] == "canceled"
    else:
        assert "canceled" in out
    for name, pid in ws.pids().items():
        wait_for(lambda pid=pid: not process_alive(pid), timeout=5, what=f"{name} to be gone")
    shown = ws.cli("show", "latest", "--json")
    assert shown.code == 0, shown.err
    run = shown.json()
    assert run["status"] == "canceled"
    statuses = {job["name"]: job["status"] for job in run["jobs"]}
    assert statuses["slow_a"] == "canceled"
    assert statuses["slow_b"] == "canceled"
    assert statuses["queued"] == "canceled"  # waiting for a free slot when the cancel came
    assert statuses["after"] in ("canceled", "skipped")  # see the test below
    assert not ws.side_file("queued.ran").exists()
    assert not ws.side_file("after.ran").exists()
    assert [r["status"] for r in ws.runs()] == ["canceled"]
    kinds = [e["kind"] for e in ws.events()]
    assert "run.canceled" in kinds
    assert_chain_intact(ws.events())

    ws.spec("version: 1\njobs:\n  quick:\n    inputs: []\n    run: echo quick\n")
    again = ws.run()
    assert again.code == 0, again.err
    assert again.json()["status"] == "success"
    assert [r["status"] for r in ws.runs()] == ["success", "canceled"]


@pytest.mark.timeout(60)
def test_jobs_waiting_on_a_job_that_was_canceled_are_canceled_not_skipped(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(LONG)
    proc = ws.start("run", "--jobs", "2")
    wait_for(lambda: set(ws.pids()) >= STARTED, timeout=20, what="both slow jobs to start")

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)

    run = ws.cli("show", "latest", "--json").json()
    after = next(job for job in run["jobs"] if job["name"] == "after")
    # `skipped` means a condition was false or a need failed; nothing failed here.
    assert after["status"] == "canceled", after


@pytest.mark.timeout(60)
def test_a_run_whose_process_was_killed_shows_as_interrupted_and_its_jobs_are_stopped(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(LONG)
    proc = ws.start("run", "--jobs", "2")
    wait_for(lambda: set(ws.pids()) >= STARTED, timeout=20, what="both slow jobs to start")
    time.sleep(0.3)  # the jobs' process groups reach the store in the next batch

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    orphans = ws.pids()
    assert all(process_alive(pid) for pid in orphans.values()), "SIGKILL alone leaves jobs"

    runs = ws.runs()
    assert [r["status"] for r in runs] == ["interrupted"]
    assert all(job["status"] not in ("running", "pending") for job in runs[0]["jobs"])
    interrupted = [e for e in ws.events() if e["kind"] == "run.interrupted"]
    assert len(interrupted) == 1
    assert interrupted[0]["subject"] == f"run/{runs[0]['id']}"
    assert_chain_intact(ws.events())
    # Reading history again does not record the interruption twice.
    assert [r["status"] for r in ws.runs()] == ["interrupted"]
    assert len([e for e in ws.events() if e["kind"] == "run.interrupted"]) == 1
    # Reading history found the run dead and stopped what its jobs left running.
    wait_for(
        lambda: not any(process_alive(pid) for pid in orphans.values()),
        timeout=10,
        what="the interrupted run's job processes to be stopped",
    )
    ws.spec("version: 1\njobs:\n  quick:\n    inputs: []\n    run: echo quick\n")
    after = ws.run()
    assert after.code == 0, after.err
    assert [r["status"] for r in ws.runs()] == ["success", "interrupted"]


WAITING = """
version: 1
jobs:
  flaky:
    inputs: []
    retry: {max: 2, backoff: 30s}
    run: |
      echo "try $(date +%s)"; touch "$SIDE/tried"; exit 3
"""


def test_a_run_killed_while_a_job_waits_to_retry_keeps_the_attempt_it_made(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(WAITING)
    proc = ws.start("run")
    wait_for(lambda: ws.side_file("tried").exists(), what="the first attempt")
    # Its end (and the retry to come) reaches the store in the next batch.
    wait_for(lambda: "job.retrying" in {e["kind"] for e in ws.events()}, what="the retry")

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    (run,) = ws.runs()
    assert run["status"] == "interrupted"
    (job,) = run["jobs"]
    assert (job["attempts"], len(job["attempt_results"])) == (1, 1)
    first = ws.cli("logs", "latest", "flaky", "--attempt", "1")
    assert first.code == 0, first.err
    assert first.out.startswith("try ") and first.out.endswith(
        "--- attempt 1 failed: exited with code 3 ---\n"
    )
    never = ws.cli("logs", "latest", "flaky", "--attempt", "2")
    assert never.code == 2
    assert "'flaky' in run 1 has no attempt 2; its attempts: 1" in never.err


CONCURRENT = """
version: 1
jobs:
  gen:
    inputs: ["src/**"]
    run: |
      sleep 0.3
      mkdir -p out
      cat src/*.txt > out/.gen.$$ && mv out/.gen.$$ out/gen.txt
    outputs: [out/gen.txt]
  left:
    needs: [gen]
    inputs: []
    run: |
      sleep 0.2
      tr a-z A-Z < out/gen.txt > out/.left.$$ && mv out/.left.$$ out/left.txt
    outputs: [out/left.txt]
  right:
    needs: [gen]
    inputs: []
    run: |
      sleep 0.2
      rev < out/gen.txt > out/.right.$$ && mv out/.right.$$ out/right.txt
    outputs: [out/right.txt]
  join:
    needs: [left, right]
    inputs: []
    run: |
      cat out/left.txt out/right.txt > out/.join.$$ && mv out/.join.$$ out/join.txt
    outputs: [out/join.txt]
"""
EXPECTED = {
    "out/gen.txt": "alpha\nbeta\n",
    "out/left.txt": "ALPHA\nBETA\n",
    "out/right.txt": "ahpla\nateb\n",
    "out/join.txt": "ALPHA\nBETA\nahpla\nateb\n",
}


@pytest.mark.timeout(90)
def test_two_runs_at_once_in_one_workspace_both_succeed_and_keep_store_and_cache_whole(
    workspace: WorkspaceFactory,
) -> None:
    import hashlib

    ws = workspace(CONCURRENT, files={"src/a.txt": "alpha\n", "src/b.txt": "beta\n"}, fresh=True)

    first = ws.start("run", "--json")
    second = ws.start("run", "--json")
    first.wait(timeout=60)
    second.wait(timeout=60)

    results = [ws.output_of(first), ws.output_of(second)]
    runs = []
    for result in results:
        assert result.code == 0, result.err
        assert "Traceback" not in result.err
        runs.append(json.loads(result.out))
    assert runs[0]["id"] != runs[1]["id"]
    digests = {p: "sha256:" + hashlib.sha256(t.encode()).hexdigest() for p, t in EXPECTED.items()}
    for run in runs:
        assert run["status"] == "success"
        for job in run["jobs"]:
            assert job["status"] in ("success", "cached")
            for output in job["outputs"]:
                assert output["digest"] == digests[output["path"]]
    for path, text in EXPECTED.items():
        assert ws.read(path) == text
    events = ws.events()
    assert_chain_intact(events)
    for run in runs:
        kinds = [e["kind"] for e in events if e["subject"] == f"run/{run['id']}"]
        assert kinds == ["run.started", "run.success"]
        job_events = [e for e in events if e["subject"].startswith(f"run/{run['id']}/job/")]
        assert len([e for e in job_events if e["kind"] != "job.running"]) == 4
    assert sorted(r["status"] for r in ws.runs()) == ["success", "success"]
    manifests = list(ws.state.joinpath("cache", "entries").rglob("*.json"))
    assert len(manifests) == 4
    for manifest in manifests:
        assert json.loads(manifest.read_text())["key"].endswith(manifest.stem)
    leftovers = [p for p in ws.state.rglob("*") if p.is_file() and "tmp" in p.parent.name]
    assert leftovers == []

    third = ws.run()

    assert third.code == 0, third.err
    assert {(j["name"], j["status"]) for j in third.json()["jobs"]} == {
        ("gen", "cached"),
        ("left", "cached"),
        ("right", "cached"),
        ("join", "cached"),
    }
    assert "corrupt" not in third.text


RETRYING = """
version: 1
jobs:
  flaky:
    inputs: []
    retry: {max: 3, backoff: 30s}
    run: |
      date +%s.%N >> "$SIDE/flaky.attempts"
      exit 1
"""


SHARING_A_FILE = """
version: 1
jobs:
  a:
    inputs: [conveyor.yaml]
    run: echo "from a" > shared.txt; touch "$SIDE/a.started"; sleep 1.5
    outputs: [shared.txt]
  b:
    inputs: [conveyor.yaml]
    run: echo "from b" > shared.txt; sleep 0.3
    outputs: [shared.txt]
"""


def test_two_runs_of_jobs_writing_one_file_take_turns_and_each_keeps_its_own_copy(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SHARING_A_FILE)

    first = ws.start("run", "a", "--json")
    wait_for(lambda: ws.side_file("a.started").exists(), what="a to start")
    second = ws.start("run", "b", "--json")
    first.wait(timeout=60)
    second.wait(timeout=60)

    runs = {}
    for proc in (first, second):
        code, out, err = ws.output_of(proc)
        assert code == 0, err
        (job,) = json.loads(out)["jobs"]
        runs[job["name"]] = (job, err)
    # b waited for a's Run to let go of the file, rather than writing it under a's feet.
    assert "b: another run in this workspace is writing shared.txt; waiting" in runs["b"][1]
    digest = {
        name: "sha256:" + hashlib.sha256(f"from {name}\n".encode()).hexdigest() for name in "ab"
    }
    for name in "ab":
        assert runs[name][0]["outputs"] == [
            {"path": "shared.txt", "digest": digest[name], "size": 7}
        ]
    # Each cache entry holds what its own job wrote.
    (ws.root / "shared.txt").unlink()
    restored = ws.run("a")
    assert restored.json()["jobs"][0]["status"] == "cached"
    assert ws.read("shared.txt") == "from a\n"


@pytest.mark.timeout(60)
def test_a_cancel_during_a_retry_backoff_stops_at_once_and_the_job_is_canceled(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(RETRYING)
    proc = ws.start("run")
    wait_for(lambda: ws.side_file("flaky.attempts").exists(), what="the first attempt")
    time.sleep(0.3)  # now it waits 30s before the next attempt

    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=15)

    assert time.monotonic() - sent < 5
    assert proc.returncode == 1
    run = ws.cli("show", "latest", "--json").json()
    assert run["status"] == "canceled"
    job = run["jobs"][0]
    assert len(ws.side_floats("flaky.attempts")) == 1
    assert job["attempts"] == 1, "only one attempt ran"
    assert job["status"] == "canceled", "the retries it still had were canceled"


PROGRESSING = """
version: 1
jobs:
  steps:
    inputs: []
    run: |
      echo "step one done"
      touch "$SIDE/step-one"
      while [ ! -e "$SIDE/go-on" ]; do sleep 0.05; done
      echo "step two done"
"""


@pytest.mark.timeout(60)
def test_while_a_run_is_in_progress_history_shows_it_running_and_logs_show_output_so_far(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(PROGRESSING)
    proc = ws.start("run", "--json")
    wait_for(lambda: ws.side_file("step-one").exists(), what="the first step")

    runs = ws.runs()
    log = ws.cli("logs", "latest", "steps")
    ws.side_file("go-on").touch()
    proc.wait(timeout=30)

    assert [r["status"] for r in runs] == ["running"]
    assert runs[0]["jobs"][0]["status"] == "running"
    assert log.code == 0, log.err
    assert "step one done" in log.out
    assert "step two done" not in log.out
    result = ws.output_of(proc)
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "success"
    assert [r["status"] for r in ws.runs()] == ["success"]
    assert "step two done" in ws.cli("logs", "latest", "steps").out


IGNORES_SIGNALS = """
version: 1
jobs:
  stubborn:
    inputs: []
    run: |
      trap '' TERM INT
      sh -c 'echo $$ > "$SIDE/stubborn.pid"; exec sleep 300'
"""


@pytest.mark.timeout(60)
def test_a_cancel_kills_a_job_that_ignores_sigterm_after_a_grace_period(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(IGNORES_SIGNALS)
    proc = ws.start("run")
    wait_for(lambda: "stubborn" in ws.pids(), what="the job to start")

    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)

    assert time.monotonic() - sent < 10
    assert proc.returncode == 1
    pid = ws.pids()["stubborn"]
    wait_for(lambda: not process_alive(pid), timeout=5, what="the job to be gone")
    run = ws.cli("show", "latest", "--json").json()
    assert run["status"] == "canceled"
    assert run["jobs"][0]["status"] == "canceled"


SLOW_WRITER = """
version: 1
jobs:
  a:
    inputs: []
    run: |
      echo ran >> "$SIDE/executions"
      mkdir -p out
      for i in $(seq 1 40); do echo "line $i"; sleep 0.02; done > out/a.txt
    outputs: [out/a.txt]
"""


@pytest.mark.timeout(60)
def test_a_job_another_run_is_running_waits_for_it_and_takes_its_result(
    workspace: WorkspaceFactory,
) -> None:
    # Two runs writing one job's outputs at once would tear them, and cache the torn file.
    ws = workspace(SLOW_WRITER)
    first = ws.start("run", "--json")
    wait_for((ws.side / "executions").exists, timeout=20, what="the first run to start a")
    second = ws.start("run", "--json")
    first.wait(timeout=30)
    second.wait(timeout=30)

    firsts, seconds = ws.output_of(first), ws.output_of(second)
    assert (firsts.code, seconds.code) == (0, 0), firsts.err + seconds.err
    assert (ws.side / "executions").read_text() == "ran\n"
    assert jobs_by_name(seconds.json())["a"]["status"] == "cached"
    assert "a: another run in this workspace is running it; waiting" in seconds.err
    expected = "".join(f"line {i}\n" for i in range(1, 41))
    assert ws.read("out/a.txt") == expected


@pytest.mark.timeout(60)
def test_a_run_stopped_while_it_waits_for_another_runs_job_leaves_that_job_whole(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(SLOW_WRITER)
    first = ws.start("run", "--json")
    wait_for((ws.side / "executions").exists, timeout=20, what="the first run to start a")
    second = ws.start("run", "--json")
    time.sleep(0.3)
    second.send_signal(signal.SIGTERM)
    first.wait(timeout=30)
    second.wait(timeout=30)

    assert ws.output_of(first).code == 0
    assert (ws.side / "executions").read_text() == "ran\n"
    (ws.root / "out" / "a.txt").unlink()
    again = ws.run()
    assert jobs_by_name(again.json())["a"]["status"] == "cached"
    assert ws.read("out/a.txt") == "".join(f"line {i}\n" for i in range(1, 41))


RESTORES = """
version: 1
jobs:
  gen:
    inputs: [in.txt]
    run: |
      cat in.txt > out.txt
      echo ran >> "$SIDE/executions"
      sleep 1.5
    outputs: [out.txt]
"""


@pytest.mark.timeout(60)
def test_a_cache_hit_does_not_restore_outputs_while_another_run_runs_the_job(
    workspace: WorkspaceFactory,
) -> None:
    # Run B's hit would write v0 under run A's job, which then stores it as v1's result.
    ws = workspace(RESTORES, files={"in.txt": "v0\n"})
    assert ws.run().code == 0
    ws.write("in.txt", "v1\n")
    first = ws.start("run", "--json")
    wait_for(
        lambda: ws.side.joinpath("executions").read_text().count("ran") == 2,
        timeout=20,
        what="run A to start gen",
    )
    ws.write("in.txt", "v0\n")
    second = ws.start("run", "--json")
    first.wait(timeout=30)
    second.wait(timeout=30)

    assert "gen: another run in this workspace is running it; waiting" in ws.output_of(second).err
    ws.write("in.txt", "v1\n")
    (ws.root / "out.txt").unlink()
    again = ws.run()
    assert jobs_by_name(again.json())["gen"]["status"] == "cached"
    assert ws.read("out.txt") == "v1\n"


@pytest.mark.timeout(60)
def test_a_run_started_by_a_job_of_its_workspace_does_not_wait_for_that_job(
    workspace: WorkspaceFactory,
) -> None:
    # build runs another pipeline of the workspace that has a job named build too.
    ws = workspace(
        "version: 1\njobs:\n  build:\n    inputs: []\n"
        "    run: python -m conveyor run -q -f inner.yaml\n"
    )
    ws.write("inner.yaml", "version: 1\njobs:\n  build:\n    inputs: []\n    run: echo inner\n")

    result = ws.cli("run", "-q", timeout=30)

    assert result.code == 0, result.text
    assert "waiting" not in result.text


@pytest.mark.timeout(60)
def test_a_job_of_the_same_name_in_another_pipeline_file_waits_too(
    workspace: WorkspaceFactory,
) -> None:
    # Both write the same files of the workspace, whatever file declares them.
    ws = workspace(SLOW_WRITER)
    ws.write("release.yaml", SLOW_WRITER)
    first = ws.start("run", "--json")
    wait_for((ws.side / "executions").exists, timeout=20, what="the first run to start a")
    second = ws.start("run", "-f", "release.yaml", "--json")
    first.wait(timeout=30)
    second.wait(timeout=30)

    assert "a: another run in this workspace is running it; waiting" in ws.output_of(second).err
    lines = ws.side.joinpath("executions").read_text().splitlines()
    assert len(lines) in (1, 2)  # the second ran after the first, or restored its result
    assert ws.read("out/a.txt") == "".join(f"line {i}\n" for i in range(1, 41))

"""The scheduler end to end: parallelism, fail-fast, retries, allowed failures, timeouts."""

from __future__ import annotations

import itertools

import pytest

from .support import Workspace, WorkspaceFactory, jobs_by_name, process_alive, wait_for

SLEEPERS = 4

PARALLEL = "version: 1\njobs:\n" + "".join(
    f"""  sleep{i}:
    inputs: []
    cache: false
    run: |
      date +%s.%N > "$SIDE/sleep{i}.start"
      sleep 0.5
      date +%s.%N > "$SIDE/sleep{i}.end"
"""
    for i in range(SLEEPERS)
)


def _intervals(ws: Workspace) -> list[tuple[float, float]]:
    return sorted(
        (ws.side_floats(f"sleep{i}.start")[0], ws.side_floats(f"sleep{i}.end")[0])
        for i in range(SLEEPERS)
    )


def test_independent_jobs_run_at_the_same_time_up_to_the_jobs_limit(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(PARALLEL)

    result = ws.run("--jobs", str(SLEEPERS))

    assert result.code == 0, result.err
    intervals = _intervals(ws)
    # Every job started before any of them ended: they all overlapped.
    assert max(start for start, _ in intervals) < min(end for _, end in intervals)
    span = intervals[-1][1] - intervals[0][0]
    assert span < SLEEPERS * 0.5 * 0.6, f"{SLEEPERS} jobs of 0.5s took {span:.2f}s in parallel"
    assert result.json()["duration_s"] < SLEEPERS * 0.5


def test_with_one_job_slot_jobs_run_one_after_another(workspace: WorkspaceFactory) -> None:
    ws = workspace(PARALLEL)

    result = ws.run("--jobs", "1")

    assert result.code == 0, result.err
    intervals = _intervals(ws)
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert next_start >= end, "two jobs overlapped with --jobs 1"
    assert intervals[-1][1] - intervals[0][0] >= SLEEPERS * 0.5


FAIL_FAST = """
version: 1
jobs:
  broken:
    inputs: []
    run: |
      echo "about to fail"
      exit 3
  independent:
    inputs: []
    run: touch "$SIDE/independent.ran"
  dependent:
    needs: [broken]
    inputs: []
    run: touch "$SIDE/dependent.ran"
  after_independent:
    needs: [independent]
    inputs: []
    run: touch "$SIDE/after_independent.ran"
"""


def test_a_failing_job_stops_new_jobs_and_the_run_exits_1(workspace: WorkspaceFactory) -> None:
    ws = workspace(FAIL_FAST)

    result = ws.run("--jobs", "1")

    assert result.code == 1
    run = result.json()
    assert run["status"] == "failed"
    jobs = jobs_by_name(run)
    assert jobs["broken"]["status"] == "failed"
    assert jobs["broken"]["exit_code"] == 3
    for name in ("independent", "dependent", "after_independent"):
        assert jobs[name]["status"] == "skipped", name
        assert jobs[name]["reason"], f"{name} was skipped without a reason"
        assert not ws.side_file(f"{name}.ran").exists()
    assert "broken" in jobs["independent"]["reason"]
    assert "broken" in jobs["dependent"]["reason"]
    shown = ws.cli("show", str(run["id"]), "--json").json()
    assert {j["name"]: j["status"] for j in shown["jobs"]} == {
        "broken": "failed",
        "independent": "skipped",
        "dependent": "skipped",
        "after_independent": "skipped",
    }


def test_keep_going_runs_independent_branches_and_skips_dependents_of_the_failure(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(FAIL_FAST)

    result = ws.run("--jobs", "1", "--keep-going")

    assert result.code == 1
    run = result.json()
    assert run["status"] == "failed"
    jobs = jobs_by_name(run)
    assert jobs["broken"]["status"] == "failed"
    assert jobs["independent"]["status"] == "success"
    assert jobs["after_independent"]["status"] == "success"
    assert jobs["dependent"]["status"] == "skipped"
    assert "broken" in jobs["dependent"]["reason"]
    assert ws.side_file("independent.ran").exists()
    assert ws.side_file("after_independent.ran").exists()
    assert not ws.side_file("dependent.ran").exists()


RETRY = """
version: 1
jobs:
  flaky:
    inputs: []
    retry: {max: 3, backoff: 200ms}
    run: |
      n=$(cat "$SIDE/count" 2>/dev/null || echo 0)
      n=$((n + 1))
      echo "$n" > "$SIDE/count"
      date +%s.%N >> "$SIDE/attempts"
      echo "attempt $n"
      [ "$n" -ge 3 ]
  after:
    needs: [flaky]
    inputs: []
    run: echo after
"""


def test_a_flaky_job_is_retried_with_backoff_until_it_succeeds(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(RETRY)

    result = ws.run()

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert jobs["flaky"]["status"] == "success"
    assert jobs["flaky"]["attempts"] == 3
    assert jobs["flaky"]["exit_code"] == 0
    assert jobs["after"]["status"] == "success"
    assert ws.side_file("count").read_text().strip() == "3"
    first, second, third = ws.side_floats("attempts")
    assert second - first >= 0.2  # the first wait is the backoff
    assert third - second >= 0.4  # and it doubles
    log = ws.cli("logs", "latest", "flaky").out.splitlines()
    assert log.index("attempt 1") < log.index("attempt 2") < log.index("attempt 3")
    marker = next(line for line in log if "attempt 2 of 4" in line)
    assert log.index("attempt 1") < log.index(marker) < log.index("attempt 2")


ATTEMPTS = """
version: 1
jobs:
  flaky:
    inputs: []
    timeout: 1s
    retry: {max: 2, backoff: 10ms}
    run: |
      n=$(cat "$SIDE/count" 2>/dev/null || echo 0)
      n=$((n + 1))
      echo "$n" > "$SIDE/count"
      echo "attempt $n"
      if [ "$n" = 1 ]; then sleep 30; fi
      [ "$n" -ge 3 ]
"""


def test_each_attempt_of_a_retried_job_is_shown_and_has_its_own_log(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(ATTEMPTS)

    result = ws.run()

    assert result.code == 0, result.err
    attempts = jobs_by_name(result.json())["flaky"]["attempt_results"]
    assert [(a["number"], a["status"], a["exit_code"], a["runner"]) for a in attempts] == [
        (1, "timed_out", None, None),
        (2, "failed", 1, None),
        (3, "success", 0, None),
    ]
    assert attempts[0]["duration_s"] >= 1.0
    # As it ran, each failed attempt was said, and when the next would begin.
    retries = [line for line in result.err.splitlines() if line.startswith("↻ ")]
    assert [line.split(";")[0].split("  ")[0] for line in retries] == [
        "↻ flaky attempt 1",
        "↻ flaky attempt 2",
    ]
    assert "timed out" in retries[0] and "- exited with code 1; retrying in" in retries[1]
    logs = [ws.cli("logs", "latest", "flaky", "--attempt", str(n)) for n in (1, 2, 3)]
    assert [r.code for r in logs] == [0, 0, 0], [r.err for r in logs]
    assert [r.out for r in logs] == [
        "attempt 1\n--- timed out after 1s ---\n",
        "attempt 2\n--- attempt 2 failed: exited with code 1 ---\n",
        "attempt 3\n",
    ]
    shown = ws.cli("show").out
    assert "attempt 1  timed out" in shown
    assert "attempt 2  failed" in shown and "- exited with code 1" in shown
    assert "attempt 3  success" in shown
    missing = ws.cli("logs", "latest", "flaky", "--attempt", "4")
    assert missing.code == 2
    assert "has no attempt 4; its attempts: 1, 2, 3" in missing.err


FOLLOWED = """
version: 1
jobs:
  flaky:
    inputs: []
    retry: {max: 1, backoff: 1s}
    run: |
      if [ -e "$SIDE/tried" ]; then
        for i in 1 2 3; do echo "second $i"; sleep 0.3; done
      else
        touch "$SIDE/tried"; echo "first try"; exit 3
      fi
"""


def test_following_an_attempt_while_it_waits_and_runs_prints_it_whole_once(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(FOLLOWED)
    run = ws.start("run", "-q")
    wait_for(lambda: ws.side_file("tried").exists(), what="the first attempt")
    wait_for(lambda: bool(ws.runs()), what="the run to be recorded")

    # Started during the 1 s back-off: nothing of attempt 2 yet, then all of it.
    followed = ws.cli("logs", "latest", "flaky", "--attempt", "2", "--follow")

    assert run.wait(timeout=30) == 0, ws.output_of(run).err
    assert followed.code == 0, followed.err
    assert followed.out == "second 1\nsecond 2\nsecond 3\n"


def test_a_job_that_keeps_failing_stops_after_its_retries(workspace: WorkspaceFactory) -> None:
    ws = workspace(RETRY.replace("max: 3, backoff: 200ms", "max: 1, backoff: 10ms"))

    result = ws.run()

    assert result.code == 1
    jobs = jobs_by_name(result.json())
    assert jobs["flaky"]["status"] == "failed"
    assert jobs["flaky"]["attempts"] == 2
    assert jobs["flaky"]["exit_code"] == 1
    assert jobs["after"]["status"] == "skipped"


ALLOWED = """
version: 1
jobs:
  optional:
    inputs: []
    allow_failure: true
    run: exit 7
  after:
    needs: [optional]
    inputs: []
    run: touch "$SIDE/after.ran"
"""


def test_an_allowed_failure_fails_the_job_but_not_the_run(workspace: WorkspaceFactory) -> None:
    ws = workspace(ALLOWED)

    result = ws.run()

    assert result.code == 0, result.err
    run = result.json()
    assert run["status"] == "success"
    jobs = jobs_by_name(run)
    assert jobs["optional"]["status"] == "failed"
    assert jobs["optional"]["exit_code"] == 7
    assert jobs["optional"]["allow_failure"] is True
    assert jobs["after"]["status"] == "success"
    assert ws.side_file("after.ran").exists()


TIMEOUT = """
version: 1
jobs:
  hangs:
    inputs: []
    timeout: 1s
    run: |
      sleep 300 &
      echo $! > "$SIDE/background.pid"
      echo $$ > "$SIDE/shell.pid"
      sh -c 'echo $$ > "$SIDE/foreground.pid"; exec sleep 30'
  after:
    needs: [hangs]
    inputs: []
    run: touch "$SIDE/after.ran"
"""


@pytest.mark.timeout(60)
def test_a_job_past_its_timeout_is_timed_out_and_its_whole_process_tree_killed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(TIMEOUT)

    result = ws.run()

    assert result.code == 1
    run = result.json()
    assert run["status"] == "failed"
    jobs = jobs_by_name(run)
    assert jobs["hangs"]["status"] == "timed_out"
    assert jobs["hangs"]["duration_s"] < 5
    assert jobs["after"]["status"] == "skipped"
    assert not ws.side_file("after.ran").exists()
    pids = ws.pids()
    assert set(pids) == {"background", "shell", "foreground"}
    for name, pid in pids.items():
        wait_for(lambda pid=pid: not process_alive(pid), timeout=5, what=f"{name} to be gone")


IGNORES_TERM = """
version: 1
jobs:
  stubborn:
    inputs: []
    timeout: 500ms
    run: |
      trap '' TERM
      sleep 300 &
      echo $! > "$SIDE/background.pid"
      sleep 300
"""


@pytest.mark.timeout(60)
def test_a_timed_out_job_that_ignores_sigterm_is_killed(workspace: WorkspaceFactory) -> None:
    ws = workspace(IGNORES_TERM)

    result = ws.run(timeout=40)

    assert result.code == 1
    assert jobs_by_name(result.json())["stubborn"]["status"] == "timed_out"
    for name, pid in ws.pids().items():
        wait_for(lambda pid=pid: not process_alive(pid), timeout=5, what=f"{name} to be gone")


CLOSES_OUTPUT = """
version: 1
jobs:
  quiet_hang:
    inputs: []
    timeout: 1s
    run: |
      echo "going quiet"
      echo $$ > "$SIDE/shell.pid"
      exec >/dev/null 2>&1
      sleep 8
"""


@pytest.mark.timeout(60)
def test_a_job_that_closes_its_output_still_times_out(workspace: WorkspaceFactory) -> None:
    ws = workspace(CLOSES_OUTPUT)

    result = ws.run(timeout=40)

    job = jobs_by_name(result.json())["quiet_hang"]
    assert job["status"] == "timed_out", f"ran {job['duration_s']}s past a 1s timeout"
    assert job["duration_s"] < 5
    assert result.code == 1


LEAVES_BACKGROUND = """
version: 1
jobs:
  daemonizes:
    inputs: []
    run: |
      (sleep 300 & echo $! > "$SIDE/orphan.pid")
      echo "left a process behind"
"""


@pytest.mark.timeout(60)
def test_processes_a_finished_job_left_behind_are_killed(workspace: WorkspaceFactory) -> None:
    ws = workspace(LEAVES_BACKGROUND)

    result = ws.run()

    assert result.code == 0, result.err
    job = jobs_by_name(result.json())["daemonizes"]
    assert job["status"] == "success"
    assert job["duration_s"] < 5
    pid = ws.pids()["orphan"]
    wait_for(lambda: not process_alive(pid), timeout=5, what="the orphan to be gone")


def test_a_job_whose_declared_output_is_missing_fails_naming_it(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(
        """
        version: 1
        jobs:
          build:
            inputs: []
            run: echo "forgot to write it"
            outputs: [dist/app.whl]
        """
    )

    result = ws.run()

    assert result.code == 1
    job = result.json()["jobs"][0]
    assert job["status"] == "failed"
    assert job["exit_code"] == 0
    assert "dist/app.whl" in job["reason"]

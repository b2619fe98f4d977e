"""Each attempt of a job that runners retried: listed by `conveyor show`, its log by `--attempt`.

A real `conveyor server` and `conveyor agent`; the CLI reads the run through
the API (CONVEYOR_SERVER), as a developer would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.core.records import RunId
from conveyor.store import runs as run_store

from .test_agent_process import Plant
from .test_server_process import cli

# Fails the first time (MARK absent), succeeds when tried again.
FLAKY = """\
version: 1
jobs:
  flaky:
    run: 'if [ -e "$MARK" ]; then echo second try; else touch "$MARK"; echo first try; exit 3; fi'
    retry: {max: 1, backoff: 100ms}
"""


@pytest.fixture(scope="module")
def retried(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Plant, RunId, str]]:
    """A server whose one agent ran `flaky` twice; a viewer's token to read it."""
    root = tmp_path_factory.mktemp("plant")
    plant = Plant(root)
    try:
        plant.server()
        plant.agent("one")
        run = plant.submit(FLAKY, MARK=str(root / "mark"))
        assert plant.finished(run) == "success"
        made = plant.cli("token", "create", "--role", "viewer", "--json")
        assert made.returncode == 0, made.stderr
        yield plant, run, json.loads(made.stdout)["token"]
    finally:
        plant.stop_all()


def _remote(retried: tuple[Plant, RunId, str], *args: str) -> subprocess.CompletedProcess[str]:
    plant, _, token = retried
    return plant.cli(*args, CONVEYOR_SERVER=plant.url, CONVEYOR_TOKEN=token)


def test_the_store_keeps_each_attempt_with_its_runner_and_result(
    retried: tuple[Plant, RunId, str],
) -> None:
    plant, run, _ = retried
    (job,) = run_store.get_run(plant.db, run_id=run).jobs
    first, second = job.attempt_results
    assert (first.number, first.status, first.runner, first.exit_code) == (1, "failed", "one", 3)
    assert first.reason == "exited with code 3"
    assert (second.number, second.status, second.runner, second.exit_code) == (
        2,
        "success",
        "one",
        0,
    )
    assert first.log_digest and second.log_digest and first.log_digest != second.log_digest
    assert job.log_digest == second.log_digest
    assert first.finished_at is not None and first.finished_at <= second.started_at


def test_show_lists_the_attempts_of_a_retried_job(retried: tuple[Plant, RunId, str]) -> None:
    _, run, _ = retried
    shown = _remote(retried, "show", str(run))
    assert shown.returncode == 0, shown.stderr
    lines = [line.strip() for line in shown.stdout.splitlines()]
    attempts = [line for line in lines if line.startswith("attempt ")]
    assert len(attempts) == 2, shown.stdout
    assert attempts[0].startswith("attempt 1  failed")
    assert attempts[0].endswith("on one - exited with code 3")
    assert attempts[1].startswith("attempt 2  success")
    assert attempts[1].endswith("on one")


def test_show_json_carries_each_attempt(retried: tuple[Plant, RunId, str]) -> None:
    _, run, _ = retried
    shown = _remote(retried, "show", str(run), "--json")
    assert shown.returncode == 0, shown.stderr
    (job,) = json.loads(shown.stdout)["jobs"]
    assert job["attempts"] == 2
    assert [
        (a["number"], a["status"], a["runner"], a["exit_code"]) for a in job["attempt_results"]
    ] == [
        (1, "failed", "one", 3),
        (2, "success", "one", 0),
    ]
    assert all(a["started_at"].endswith("Z") for a in job["attempt_results"])


def test_logs_attempt_prints_that_attempts_own_log(retried: tuple[Plant, RunId, str]) -> None:
    _, run, _ = retried
    for args, expected in (
        (("--attempt", "1"), "first try\n"),
        (("--attempt", "2"), "second try\n"),
        ((), "second try\n"),
    ):
        got = _remote(retried, "logs", str(run), "flaky", *args)
        assert (got.returncode, got.stdout) == (0, expected), got.stderr


# --- bad input -----------------------------------------------------------------


def test_logs_of_an_attempt_that_never_was_exit_2_naming_the_attempts_there_are(
    retried: tuple[Plant, RunId, str],
) -> None:
    _, run, _ = retried
    got = _remote(retried, "logs", str(run), "flaky", "--attempt", "3")
    assert got.returncode == 2
    assert f"'flaky' in run {run} has no attempt 3; its attempts: 1, 2" in got.stderr
    assert got.stdout == ""


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_logs_with_an_attempt_that_is_not_a_number_from_1_exits_2(
    retried: tuple[Plant, RunId, str], bad: str
) -> None:
    _, run, _ = retried
    got = _remote(retried, "logs", str(run), "flaky", f"--attempt={bad}")
    assert got.returncode == 2
    assert "--attempt" in got.stderr


@pytest.mark.parametrize("bad", ["0", "two"])
def test_the_api_refuses_an_attempt_that_is_not_a_number_from_1(
    retried: tuple[Plant, RunId, str], bad: str
) -> None:
    plant, run, token = retried
    answer = httpx.get(
        f"{plant.url}/api/v1/runs/{run}/jobs/flaky/log",
        params={"attempt": bad},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422
    assert "attempt" in answer.text


def test_the_api_answers_404_for_an_attempt_that_never_was(
    retried: tuple[Plant, RunId, str],
) -> None:
    plant, run, token = retried
    answer = httpx.get(
        f"{plant.url}/api/v1/runs/{run}/jobs/flaky/log",
        params={"attempt": 9},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 404
    assert "has no attempt 9; its attempts: 1, 2" in answer.text


def test_a_job_retried_on_this_machine_keeps_its_attempts_as_a_runner_held_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "conveyor.yaml").write_text(FLAKY)
    ran = cli(tmp_path, "run", "-q", MARK=str(tmp_path / "mark"))
    assert ran.returncode == 0, ran.stderr
    first = cli(tmp_path, "logs", "latest", "flaky", "--attempt", "1")
    second = cli(tmp_path, "logs", "latest", "flaky", "--attempt", "2")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert first.stdout == "first try\n--- attempt 1 failed: exited with code 3 ---\n"
    assert second.stdout == "second try\n"
    shown = cli(tmp_path, "show", "--json")
    attempts = json.loads(shown.stdout)["jobs"][0]["attempt_results"]
    assert [(a["number"], a["status"], a["runner"]) for a in attempts] == [
        (1, "failed", None),
        (2, "success", None),
    ]

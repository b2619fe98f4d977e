"""A remote job whose retry is not to come, because the Run halted, has a log ending as a
local job's does: with `--- not retried: <why> ---`.

Runs on a real server (uvicorn in a thread) over SQLite and PostgreSQL; runners upload
their logs and report through the agent endpoints, and the log is read as
`conveyor logs RUN JOB` reads it from a server.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.core.clock import FrozenClock
from conveyor.core.records import RunId
from integration.engine.queue_world import QueueWorld

from .conftest import Issue, bearer

FLAKY_BESIDE_BROKEN = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 3, backoff: 30s}}
  broken: {run: broken}
"""
FLAKY_LOG = "compiling\nerror: the flaky test failed\n"
NOT_RETRIED = "--- not retried: 'broken' failed ---\n"


@pytest.fixture
def world(app: FastAPI, client: Client, clock: FrozenClock) -> QueueWorld:
    return QueueWorld(app.state.conveyor.db, clock=clock)


def register(client: Client, token: str, name: str) -> int:
    body = {"name": name, "labels": [], "concurrency": 2}
    answer = client.post("/api/v1/agents", json=body, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["id"])


def claim(client: Client, token: str, agent: int) -> tuple[str, int]:
    """The name of the job claimed, and its attempt's id."""
    answer = client.post(f"/api/v1/agents/{agent}/claim", params={"wait": 0}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    return doc["job"]["name"], int(doc["attempt_id"])


def fail(client: Client, token: str, attempt: int, log: str, exit_code: int = 1) -> None:
    """Upload the attempt's log, as a runner does, then report it failed."""
    blob = gzip.compress(log.encode(), compresslevel=6, mtime=0)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    put = client.put(f"/api/v1/artifacts/{digest}", content=blob, headers=bearer(token))
    assert put.status_code in (200, 201), put.text
    result = {
        "status": "failed",
        "exit_code": exit_code,
        "reason": f"exited with code {exit_code}",
        "log_digest": digest,
    }
    done = client.post(f"/api/v1/attempts/{attempt}/complete", json=result, headers=bearer(token))
    assert done.json() == {"accepted": True, "status": "failed"}


def job_log(client: Client, issue: Issue, run: RunId, job: str) -> str:
    answer = client.get(f"/api/v1/runs/{run}/jobs/{job}/log", headers=bearer(issue("viewer")))
    assert answer.status_code == 200, answer.text
    return answer.text


def both_claimed(client: Client, issue: Issue, world: QueueWorld) -> tuple[str, RunId, int, int]:
    """A runner's token, FLAKY_BESIDE_BROKEN submitted, and the attempts its runner claimed."""
    runner = issue("runner")
    run = world.submit(FLAKY_BESIDE_BROKEN)
    agent = register(client, runner, "agent-1")
    (_, flaky), (_, broken) = claim(client, runner, agent), claim(client, runner, agent)
    return runner, run, flaky, broken


def test_a_job_that_fails_once_another_failed_has_its_log_end_saying_it_is_not_retried(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner, run, flaky, broken = both_claimed(client, issue, world)
    fail(client, runner, broken, "boom\n", exit_code=2)

    fail(client, runner, flaky, FLAKY_LOG)

    job = world.job(run, "flaky")
    assert (job.status, job.reason) == (
        "failed",
        "exited with code 1; not retried: 'broken' failed",
    )
    assert job_log(client, issue, run, "flaky") == FLAKY_LOG + NOT_RETRIED
    assert job_log(client, issue, run, "broken") == "boom\n"  # the halt's own log is its own
    kept = world.kept_log(job)  # the attempt keeps the log its runner sent
    assert kept is not None and kept != job.log_digest
    assert gzip.decompress(blob_of(client, issue, kept)).decode() == FLAKY_LOG
    # ... which is what `conveyor logs RUN flaky --attempt 1` reads
    first = client.get(
        f"/api/v1/runs/{run}/jobs/flaky/log",
        params={"attempt": 1},
        headers=bearer(issue("viewer")),
    )
    assert (first.status_code, first.text) == (200, FLAKY_LOG)


def test_a_job_waiting_to_retry_when_another_fails_has_its_log_end_saying_it_is_not_retried(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner, run, flaky, broken = both_claimed(client, issue, world)
    fail(client, runner, flaky, FLAKY_LOG)
    assert world.statuses(run)["flaky"] == "queued"  # to be retried in 30 s

    fail(client, runner, broken, "boom\n", exit_code=2)

    job = world.job(run, "flaky")
    assert (job.status, job.reason) == (
        "failed",
        "exited with code 1; not retried: 'broken' failed",
    )
    assert job_log(client, issue, run, "flaky") == FLAKY_LOG + NOT_RETRIED
    kept = world.kept_log(job)
    assert kept is not None and kept != job.log_digest
    assert gzip.decompress(blob_of(client, issue, kept)).decode() == FLAKY_LOG


@pytest.mark.parametrize("streamed", [b"step 1\n", b""], ids=["streamed", "silent"])
def test_a_job_whose_runner_was_lost_gets_no_log_of_the_note_alone(
    client: Client, issue: Issue, world: QueueWorld, clock: FrozenClock, streamed: bytes
) -> None:
    # The lost runner stored no log; a stored log of the note alone would hide what it had
    # streamed (or claim the job printed nothing): the JobRun's reason says it is not retried.
    runner = issue("runner")
    run = world.submit(FLAKY_BESIDE_BROKEN)
    gone, agent = register(client, runner, "gone"), register(client, runner, "agent-1")
    (name, flaky), (_, broken) = claim(client, runner, gone), claim(client, runner, agent)
    assert name == "flaky"
    if streamed:
        sent = client.post(
            f"/api/v1/attempts/{flaky}/log", content=streamed, headers=bearer(runner)
        )
        assert sent.status_code == 204
    clock.advance(20)
    beat = client.post(f"/api/v1/attempts/{broken}/heartbeat", headers=bearer(runner))
    assert beat.json() == {"action": "continue"}
    clock.advance(11)
    wait_until(lambda: world.attempts(run)[0].status == "runner_lost", "the lease was not swept")
    assert world.statuses(run)["flaky"] == "queued"  # a lost runner is retried at once

    fail(client, runner, broken, "boom\n", exit_code=2)

    job = world.job(run, "flaky")
    assert job.status == "runner_lost" and job.log_digest is None
    assert job.reason == (
        "runner lost: its lease ran out without a heartbeat; not retried: 'broken' failed"
    )
    answer = client.get(f"/api/v1/runs/{run}/jobs/flaky/log", headers=bearer(issue("viewer")))
    if streamed:
        assert answer.text == streamed.decode()
    else:
        assert answer.status_code == 404
        assert "has no log (runner_lost)" in answer.json()["detail"]


def blob_of(client: Client, issue: Issue, digest: str) -> bytes:
    """A blob as the server serves it by digest."""
    answer = client.get(f"/api/v1/artifacts/{digest}", headers=bearer(issue("admin")))
    assert answer.status_code == 200, answer.text
    return answer.content


def wait_until(done: Callable[[], bool], message: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)

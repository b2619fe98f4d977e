"""The agent endpoints: register, long-poll, heartbeat, log, complete, hand back, upload by digest.

Runs on a real server (uvicorn in a thread) over SQLite and PostgreSQL; work is
submitted with the dispatch service on the server's own database.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.core.clock import FrozenClock
from conveyor.engine.tokens import TokenService
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from integration.engine.queue_world import QueueWorld

from .conftest import Issue, bearer, serving

PROBLEM = "application/problem+json"
ONE_JOB = "version: 1\njobs:\n  build: {run: make}\n"


@pytest.fixture
def world(app: FastAPI, client: Client, clock: FrozenClock) -> QueueWorld:
    return QueueWorld(app.state.conveyor.db, clock=clock)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def register(client: Client, token: str, name: str = "agent-1", **body: object) -> int:
    answer = client.post(
        "/api/v1/agents", json={"name": name, "labels": [], **body}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["id"])


def claim(client: Client, token: str, agent: int, wait: float = 0) -> httpx.Response:
    return client.post(
        f"/api/v1/agents/{agent}/claim", params={"wait": wait}, headers=bearer(token)
    )


def test_an_agent_runs_a_job_through_the_api_and_the_run_succeeds(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner", name="runner-a")
    run = world.submit(ONE_JOB)
    agent = register(client, runner, labels=["linux"], concurrency=2)

    claimed = claim(client, runner, agent)
    assert claimed.status_code == 200
    doc = claimed.json()
    assert doc["job"]["name"] == "build" and doc["run_id"] == run and doc["number"] == 1
    attempt = doc["attempt_id"]
    beat = client.post(f"/api/v1/attempts/{attempt}/heartbeat", headers=bearer(runner))
    assert beat.json() == {"action": "continue"}

    log = gzip.compress(b"compiling\nlinked\n", mtime=0)
    put = client.put(f"/api/v1/artifacts/{digest_of(log)}", content=log, headers=bearer(runner))
    assert put.status_code == 201
    result = {"status": "success", "exit_code": 0, "duration_s": 1.5, "log_digest": digest_of(log)}
    done = client.post(f"/api/v1/attempts/{attempt}/complete", json=result, headers=bearer(runner))

    assert done.json() == {"accepted": True, "status": "success"}
    assert world.statuses(run) == {"build": "success"}
    assert world.kinds(run, "build") == ["job.queued", "job.running", "job.success"]
    viewer = issue("viewer")
    text = client.get(f"/api/v1/runs/{run}/jobs/build/log", headers=bearer(viewer))
    assert text.text == "compiling\nlinked\n"
    assert text.headers["x-conveyor-log-complete"] == "true"


def test_a_success_the_server_judges_a_failure_is_answered_with_the_status_it_recorded(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner", name="runner-a")
    run = world.submit(
        "version: 1\njobs:\n  a: {run: a, outputs: [out]}\n  b: {run: b, outputs: ['o*']}\n"
    )
    agent = register(client, runner, concurrency=2)
    first, second = (claim(client, runner, agent).json()["attempt_id"] for _ in range(2))
    blob = b"made\n"
    client.put(f"/api/v1/artifacts/{digest_of(blob)}", content=blob, headers=bearer(runner))
    made = {"path": "out", "digest": digest_of(blob), "size": len(blob)}
    result = {"status": "success", "exit_code": 0, "outputs": [made]}

    answers = [
        client.post(f"/api/v1/attempts/{a}/complete", json=result, headers=bearer(runner)).json()
        for a in (first, second)
    ]

    # The second to end took the first's file: a file has one producer. The runner is
    # told, so that it does not share the result through the cache.
    assert answers == [
        {"accepted": True, "status": "success"},
        {"accepted": True, "status": "failed"},
    ]
    assert sorted(world.statuses(run).values()) == ["failed", "success"]
    # Sent again (its answer lost on the way): recorded once, answered alike.
    again = client.post(f"/api/v1/attempts/{second}/complete", json=result, headers=bearer(runner))
    assert again.json() == {"accepted": True, "status": "failed"}
    assert "job.result_refused" not in {k for name in ("a", "b") for k in world.kinds(run, name)}
    # Another result for an attempt that ended is refused, and recorded as such.
    other = {"status": "failed", "exit_code": 1, "reason": "exited with code 1"}
    late = client.post(f"/api/v1/attempts/{first}/complete", json=other, headers=bearer(runner))
    assert late.json() == {"accepted": False, "status": None}
    assert [k for name in ("a", "b") for k in world.kinds(run, name)].count(
        "job.result_refused"
    ) == 1


def test_a_running_jobs_log_batches_are_readable_live(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    run = world.submit(ONE_JOB)
    agent = register(client, runner)
    attempt = claim(client, runner, agent).json()["attempt_id"]

    for batch in (b"step 1\n", b"step 2\n"):
        sent = client.post(f"/api/v1/attempts/{attempt}/log", content=batch, headers=bearer(runner))
        assert sent.status_code == 204

    live = client.get(f"/api/v1/runs/{run}/jobs/build/log", headers=bearer(issue("viewer")))
    assert live.text == "step 1\nstep 2\n"
    assert live.headers["x-conveyor-log-complete"] == "false"


def test_a_claim_with_nothing_to_do_waits_then_answers_204(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    agent = register(client, runner)

    assert claim(client, runner, agent, wait=0.3).status_code == 204


def test_a_waiting_claim_gets_a_job_submitted_meanwhile(
    app: FastAPI, client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    agent = register(client, runner)
    with httpx.Client(base_url=str(client.base_url), timeout=10) as other:
        answers: list[httpx.Response] = []
        poll = threading.Thread(target=lambda: answers.append(claim(other, runner, agent, 5)))
        poll.start()
        world.submit(ONE_JOB)
        poll.join(10)

    assert answers[0].status_code == 200
    assert answers[0].json()["job"]["name"] == "build"


def test_a_handed_back_job_is_queued_again_at_once(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    run = world.submit(ONE_JOB)
    agent = register(client, runner)
    attempt = claim(client, runner, agent).json()["attempt_id"]

    back = client.post(f"/api/v1/attempts/{attempt}/hand-back", headers=bearer(runner))

    assert back.json() == {"accepted": True}
    assert world.statuses(run) == {"build": "queued"}
    assert claim(client, runner, agent).json()["number"] == 2


def test_a_heartbeat_after_the_lease_was_swept_answers_lost(
    client: Client, issue: Issue, world: QueueWorld, clock: FrozenClock
) -> None:
    runner = issue("runner")
    run = world.submit("version: 1\njobs:\n  build: {run: make, retry: {max: 0}}\n")
    agent = register(client, runner)
    attempt = claim(client, runner, agent).json()["attempt_id"]
    clock.advance(31)
    world.dispatch.sweep_expired()

    beat = client.post(f"/api/v1/attempts/{attempt}/heartbeat", headers=bearer(runner))

    assert beat.json() == {"action": "lost"}
    assert world.statuses(run) == {"build": "runner_lost"}


# --- bad input -----------------------------------------------------------------


def test_an_unknown_attempt_is_404(client: Client, issue: Issue, world: QueueWorld) -> None:
    runner = issue("runner")
    register(client, runner)
    for path in ("heartbeat", "hand-back"):
        answer = client.post(f"/api/v1/attempts/999/{path}", headers=bearer(runner))
        assert answer.status_code == 404
        assert answer.headers["content-type"] == PROBLEM
        assert "no job attempt 999" in answer.json()["detail"]


def test_an_unknown_agent_cannot_claim_404(client: Client, issue: Issue, world: QueueWorld) -> None:
    answer = claim(client, issue("runner"), 999)
    assert answer.status_code == 404
    assert "register it first" in answer.json()["detail"]


def test_an_agent_may_not_act_on_another_agents_attempt_403(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    mine, theirs = issue("runner", name="a"), issue("runner", name="b")
    run = world.submit(ONE_JOB)
    agent = register(client, mine, "agent-a")
    register(client, theirs, "agent-b")
    attempt = claim(client, mine, agent).json()["attempt_id"]
    result = {"status": "success", "exit_code": 0}

    answers = [
        claim(client, theirs, agent),
        client.post(f"/api/v1/attempts/{attempt}/heartbeat", headers=bearer(theirs)),
        client.post(f"/api/v1/attempts/{attempt}/log", content=b"x", headers=bearer(theirs)),
        client.post(f"/api/v1/attempts/{attempt}/complete", json=result, headers=bearer(theirs)),
        client.post(f"/api/v1/attempts/{attempt}/hand-back", headers=bearer(theirs)),
    ]

    assert [a.status_code for a in answers] == [403] * 5
    assert "another token" in answers[1].json()["detail"]
    assert world.statuses(run) == {"build": "running"}


def test_a_user_token_may_not_call_agent_endpoints_403(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    admin = issue("admin")
    answer = client.post("/api/v1/agents", json={"name": "sneaky"}, headers=bearer(admin))
    assert answer.status_code == 403
    assert "agent.work" in answer.json()["detail"]
    assert "runner" in answer.json()["detail"]


def test_a_runner_token_may_not_call_user_endpoints_403(client: Client, issue: Issue) -> None:
    runner = issue("runner")
    for method, path in (("GET", "/api/v1/runs"), ("GET", "/api/v1/tokens")):
        answer = client.request(method, path, headers=bearer(runner))
        assert answer.status_code == 403, path


@pytest.mark.parametrize(
    "body",
    [{"name": "bad name!"}, {"name": "a", "concurrency": 0}, {"name": "a", "labels": "linux"}],
)
def test_a_malformed_registration_is_422_naming_the_field(
    client: Client, issue: Issue, body: dict[str, object]
) -> None:
    answer = client.post("/api/v1/agents", json=body, headers=bearer(issue("runner")))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM


def test_a_result_naming_a_blob_the_server_lacks_is_409_and_changes_nothing(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    run = world.submit(ONE_JOB)
    attempt = claim(client, runner, register(client, runner)).json()["attempt_id"]
    result = {"status": "success", "log_digest": "sha256:" + "0" * 64}

    answer = client.post(
        f"/api/v1/attempts/{attempt}/complete", json=result, headers=bearer(runner)
    )

    assert answer.status_code == 409
    assert "PUT /api/v1/artifacts/" in answer.json()["detail"]
    assert world.statuses(run) == {"build": "running"}


def test_a_result_with_a_status_an_agent_cannot_report_is_422(
    client: Client, issue: Issue, world: QueueWorld
) -> None:
    runner = issue("runner")
    world.submit(ONE_JOB)
    attempt = claim(client, runner, register(client, runner)).json()["attempt_id"]
    answer = client.post(
        f"/api/v1/attempts/{attempt}/complete", json={"status": "skipped"}, headers=bearer(runner)
    )
    assert answer.status_code == 422


def test_head_tells_whether_the_server_has_an_artifact(client: Client, issue: Issue) -> None:
    runner = issue("runner")
    data = b"hello"
    url = f"/api/v1/artifacts/{digest_of(data)}"
    assert client.head(url, headers=bearer(runner)).status_code == 404
    assert client.put(url, content=data, headers=bearer(runner)).status_code == 201
    assert client.head(url, headers=bearer(runner)).status_code == 200
    assert client.put(url, content=data, headers=bearer(runner)).status_code == 200
    assert client.get(url, headers=bearer(runner)).content == data


def test_an_upload_whose_body_is_not_its_digest_is_422_and_stores_nothing(
    client: Client, issue: Issue
) -> None:
    runner = issue("runner")
    url = f"/api/v1/artifacts/{digest_of(b'expected')}"
    answer = client.put(url, content=b"something else", headers=bearer(runner))
    assert answer.status_code == 422
    assert "upload the file the digest names" in answer.json()["detail"]
    assert client.head(url, headers=bearer(runner)).status_code == 404
    bad = client.put("/api/v1/artifacts/..%2F..%2Fetc", content=b"x", headers=bearer(runner))
    assert bad.status_code in (400, 404)


@pytest.fixture
def small_server(settings: Settings, clock: FrozenClock) -> Iterator[tuple[Client, str]]:
    """A server accepting bodies of at most 1000 bytes, and a runner token for it."""
    app = create_app(replace(settings, max_upload_bytes=1000), clock=clock)
    with serving(app) as url, Client(base_url=url, timeout=10) as c:
        service = TokenService(db=app.state.conveyor.db, clock=clock)
        yield c, service.create(role="runner", actor="root").token


def test_an_upload_over_the_limit_is_413_and_stores_nothing(
    small_server: tuple[Client, str],
) -> None:
    client, runner = small_server
    data = b"x" * 5000
    url = f"/api/v1/artifacts/{digest_of(data)}"

    sized = client.put(url, content=data, headers=bearer(runner))
    streamed = client.put(url, content=iter([data[:900], data[900:]]), headers=bearer(runner))

    assert (sized.status_code, streamed.status_code) == (413, 413)
    assert "CONVEYOR_MAX_UPLOAD" in streamed.json()["detail"]
    assert client.head(url, headers=bearer(runner)).status_code == 404


def test_the_server_sweeps_expired_leases_by_itself_and_counts_them_in_metrics(
    client: Client, issue: Issue, world: QueueWorld, clock: FrozenClock
) -> None:
    runner = issue("runner")
    run = world.submit("version: 1\njobs:\n  build: {run: make, retry: {max: 0}}\n")
    claim(client, runner, register(client, runner))
    before = client.get("/metrics").text
    assert "conveyor_agents_connected 1.0" in before
    assert "conveyor_job_queue_seconds_count 1.0" in before

    clock.advance(31)
    deadline = time.monotonic() + 10
    while world.statuses(run) != {"build": "runner_lost"}:
        assert time.monotonic() < deadline, "the lease was not swept"
        time.sleep(0.1)
    # The sweeper counts what it swept once its transaction committed: a moment later.
    while "conveyor_leases_expired_total 1.0" not in (after := client.get("/metrics").text):
        assert time.monotonic() < deadline, "the swept lease was not counted"
        time.sleep(0.05)
    assert "conveyor_agents_connected 0.0" in after

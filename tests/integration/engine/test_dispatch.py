"""The dispatch service on SQLite and on the real PostgreSQL: claims, DAG progress, groups,
leases, retries and cancels, each recorded as Events."""

from __future__ import annotations

import threading

import pytest

from conveyor.core.errors import NotFound
from conveyor.core.records import OutputRecord, RunId, TestCounts
from conveyor.engine import run_rules
from conveyor.engine.dispatch import LeaseSweeper
from conveyor.engine.dispatch_rules import Claim
from conveyor.store import attempts, queue
from conveyor.store.db import Database
from integration.store.conftest import (  # noqa: F401 - fixtures
    database_url,
    db,
    empty_db,
    postgres_schema_url,
    postgres_url,
)

from .queue_world import QueueWorld

CHAIN = """\
version: 1
jobs:
  build: {run: make, outputs: [dist/app]}
  test: {run: make test, needs: build}
  deploy: {run: ./deploy, needs: test}
"""


@pytest.fixture
def world(db: Database) -> QueueWorld:  # noqa: F811 - the fixture above
    return QueueWorld(db)


def test_a_runner_takes_only_jobs_whose_labels_it_has(world: QueueWorld) -> None:
    run = world.submit(
        "version: 1\njobs:\n  gpu: {run: train, runs_on: [linux, cuda]}\n"
        "  any: {run: lint}\n  linux: {run: make, runs_on: linux}\n"
    )
    plain = world.agent("plain")
    linux = world.agent("linux-1", ("linux",), concurrency=5)
    cuda = world.agent("cuda-1", ("linux", "cuda", "big"))

    assert world.claim(plain).job.name == "any"
    assert world.dispatch.claim(plain) is None  # one slot, and it is taken
    assert world.claim(linux).job.name == "linux"
    assert world.dispatch.claim(linux) is None  # 'gpu' needs cuda too
    assert world.claim(cuda).job.name == "gpu"
    assert world.statuses(run) == {"gpu": "running", "any": "running", "linux": "running"}


def test_each_expansion_of_a_matrix_job_goes_to_a_runner_with_its_own_labels(
    world: QueueWorld,
) -> None:
    run = world.submit(
        "version: 1\njobs:\n  test:\n    run: make test\n"
        "    matrix: {os: [linux, macos]}\n    runs_on: ['${os}']\n"
    )
    mac = world.agent("mac-1", ("macos",), concurrency=2)
    linux = world.agent("linux-1", ("linux",), concurrency=2)

    assert world.claim(mac).job.name == "test (os=macos)"
    assert world.dispatch.claim(mac) is None  # the linux expansion is not for it
    assert world.claim(linux).job.name == "test (os=linux)"
    assert world.statuses(run) == {"test (os=linux)": "running", "test (os=macos)": "running"}


def test_a_dag_progresses_as_jobs_complete_and_the_run_succeeds(world: QueueWorld) -> None:
    run = world.submit(CHAIN)
    agent = world.agent("a", concurrency=3)

    build = world.claim(agent)
    assert (build.job.name, build.job.run, build.number) == ("build", "make", 1)
    assert build.source.path == "/srv/shop" and build.env == {"CONVEYOR_RUN": "remote"}
    assert world.dispatch.claim(agent) is None  # 'test' waits for 'build'
    world.clock.advance(2)
    output = OutputRecord("dist/app", "sha256:" + "1" * 64, 3)
    assert world.finish(build, agent, exit_code=0, duration_s=2.0, outputs=(output,))

    test = world.claim(agent)
    assert test.job.name == "test" and test.upstream == (output,)
    world.finish(test, agent, tests=TestCounts(passed=3))
    deploy = world.claim(agent)
    assert deploy.upstream == (output,)  # ancestors' outputs reach every job below them
    world.finish(deploy, agent, log_digest="sha256:" + "2" * 64)

    record = world.run(run)
    assert record.status == "success"
    jobs = {job.name: job for job in record.jobs}
    assert jobs["build"].outputs == (output,) and jobs["build"].exit_code == 0
    assert jobs["test"].tests == TestCounts(passed=3)
    assert jobs["deploy"].log_digest == "sha256:" + "2" * 64
    assert world.kinds(run, "test") == ["job.queued", "job.running", "job.success"]
    assert world.kinds(run)[0] == "run.started" and world.kinds(run)[-1] == "run.success"
    assert [a.queued_s for a in world.attempts(run)] == [0.0, 0.0, 0.0]


def test_queue_time_is_recorded_from_when_a_job_became_claimable(world: QueueWorld) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x}\n")
    world.clock.advance(1.5)
    world.claim(world.agent("a"))

    assert [a.queued_s for a in world.attempts(run)] == [1.5]


def test_a_failed_need_skips_its_dependents_like_a_local_run(world: QueueWorld) -> None:
    run = world.submit(CHAIN + "  lint: {run: ruff}\n")
    agent = world.agent("a", concurrency=2)
    build, lint = world.claim(agent), world.claim(agent)
    assert lint.job.name == "lint"

    world.finish(build, agent, "failed", exit_code=2, reason="exited with code 2")
    world.finish(lint, agent)

    assert world.statuses(run) == {
        "build": "failed",
        "test": "skipped",
        "deploy": "skipped",
        "lint": "success",
    }
    assert world.reasons(run)["test"] == "need 'build' failed"
    assert world.reasons(run)["deploy"] == "need 'test' was skipped"
    assert world.run(run).status == "failed"


def test_without_keep_going_a_failure_stops_jobs_not_yet_started(world: QueueWorld) -> None:
    run = world.submit(CHAIN + "  lint: {run: ruff}\n")
    agent = world.agent("a")

    world.finish(world.claim(agent), agent, "failed", exit_code=1)

    assert world.statuses(run)["lint"] == "skipped"
    assert world.reasons(run)["lint"] == (
        "not started: 'build' failed (--keep-going runs independent jobs)"
    )
    assert world.run(run).status == "failed"


def test_with_keep_going_independent_jobs_still_run(world: QueueWorld) -> None:
    run = world.submit(CHAIN + "  lint: {run: ruff}\n", keep_going=True)
    agent = world.agent("a")

    world.finish(world.claim(agent), agent, "failed", exit_code=1)
    lint = world.claim(agent)

    assert lint.job.name == "lint"
    world.finish(lint, agent)
    assert world.statuses(run)["lint"] == "success"
    assert world.run(run).status == "failed"


def test_a_job_allowed_to_fail_lets_its_dependents_run(world: QueueWorld) -> None:
    run = world.submit(
        "version: 1\njobs:\n  flaky: {run: x, allow_failure: true}\n"
        "  next: {run: y, needs: flaky}\n"
    )
    agent = world.agent("a")

    world.finish(world.claim(agent), agent, "failed", exit_code=1)
    world.finish(world.claim(agent), agent)

    assert world.statuses(run) == {"flaky": "failed", "next": "success"}
    assert world.run(run).status == "success"


def test_a_job_skipped_by_its_condition_skips_its_dependents(world: QueueWorld) -> None:
    run = world.submit(CHAIN, skipped={"build": "'if' is false: branch == 'main'"})

    assert world.statuses(run) == {"build": "skipped", "test": "skipped", "deploy": "skipped"}
    assert world.reasons(run)["test"] == "need 'build' was skipped"
    assert world.run(run).status == "success"
    assert world.dispatch.claim(world.agent("a")) is None


GROUPED = "version: 1\njobs:\n  deploy: {run: ./deploy, concurrency: prod}\n"


def test_a_concurrency_group_runs_one_holder_at_a_time_across_runs(world: QueueWorld) -> None:
    first, second = world.submit(GROUPED), world.submit(GROUPED)
    agent = world.agent("a", concurrency=4)

    held = world.claim(agent)
    assert held.run_id == first
    assert world.dispatch.claim(agent) is None  # the second run's deploy waits
    world.finish(held, agent)
    assert world.claim(agent).run_id == second


def test_cancel_in_progress_cancels_the_older_runs_holder(world: QueueWorld) -> None:
    text = (
        "version: 1\njobs:\n"
        "  deploy: {run: x, concurrency: {group: prod, cancel_in_progress: true}}\n"
    )
    first = world.submit(text)
    agent = world.agent("a", concurrency=4)
    held = world.claim(agent)
    waiting = world.submit(text)
    assert world.dispatch.claim(agent) is None  # the older holder has not stopped yet

    newest = world.submit(text)

    assert world.statuses(waiting) == {"deploy": "canceled"}
    assert world.reasons(waiting)["deploy"] == f"superseded by run {newest}"
    assert world.run(waiting).status == "canceled"
    assert world.dispatch.heartbeat(held.attempt_id, agent_id=agent) == "cancel"
    world.finish(held, agent, "canceled", reason="canceled")
    assert world.run(first).status == "canceled"
    assert world.kinds(first, "deploy")[-1] == "job.canceled"
    assert world.claim(agent).run_id == newest


def test_a_pipeline_group_makes_a_newer_run_wait_for_the_older(world: QueueWorld) -> None:
    text = "version: 1\nconcurrency: shop\njobs:\n  a: {run: x}\n  b: {run: y, needs: a}\n"
    first, second = world.submit(text), world.submit(text)
    agent = world.agent("a", concurrency=4)

    world.finish(world.claim(agent), agent)
    b = world.claim(agent)
    assert (b.run_id, b.job.name) == (first, "b")
    assert world.dispatch.claim(agent) is None
    world.finish(b, agent)
    assert world.claim(agent).run_id == second


def test_a_pipeline_group_with_cancel_in_progress_cancels_the_older_run(
    world: QueueWorld,
) -> None:
    text = (
        "version: 1\nconcurrency: {group: shop, cancel_in_progress: true}\n"
        "jobs:\n  a: {run: x}\n  b: {run: y, needs: a}\n"
    )
    first = world.submit(text)
    second = world.submit(text)

    assert world.statuses(first) == {"a": "canceled", "b": "canceled"}
    assert world.run(first).status == "canceled"
    assert world.claim(world.agent("a")).run_id == second


def test_an_expired_lease_is_runner_lost_and_the_job_is_retried_on_another_runner(
    world: QueueWorld,
) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x, retry: 1}\n")
    gone, other = world.agent("gone"), world.agent("other")
    first = world.claim(gone)
    world.clock.advance(20)
    assert world.dispatch.heartbeat(first.attempt_id, agent_id=gone) == "ok"
    world.clock.advance(29)
    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 0  # the heartbeat extended it

    world.clock.advance(2)
    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1

    second = world.claim(other)
    assert (second.job.name, second.number) == ("a", 2)
    world.finish(second, other)
    attempts = world.attempts(run)
    assert [(a.agent_id, a.status) for a in attempts] == [(gone, "runner_lost"), (other, "success")]
    assert world.statuses(run) == {"a": "success"}
    assert world.kinds(run, "a") == [
        "job.queued",
        "job.running",
        "job.runner_lost",
        "job.retrying",
        "job.running",
        "job.success",
    ]


def test_a_run_read_back_lists_each_attempt_with_its_runner_and_result(
    world: QueueWorld,
) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x, retry: {max: 2, backoff: 1s}}\n")
    gone, other = world.agent("gone"), world.agent("other")
    world.claim(gone)
    world.clock.advance(31)
    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1
    tests = TestCounts(passed=3, failed=1, failures=("test_pay",))
    world.finish(world.claim(other), other, "failed", exit_code=4, duration_s=0.5, tests=tests)
    world.clock.advance(10)  # past the backoff
    world.finish(world.claim(other), other, exit_code=0, duration_s=0.25)

    (job,) = world.run(run).jobs
    assert [
        (a.number, a.status, a.runner, a.exit_code, a.duration_s, a.tests)
        for a in job.attempt_results
    ] == [
        (1, "runner_lost", "gone", None, None, None),
        (2, "failed", "other", 4, 0.5, tests),
        (3, "success", "other", 0, 0.25, None),
    ]
    lost, failed, passed = job.attempt_results
    assert lost.reason is not None and lost.reason.startswith("runner lost")
    assert lost.started_at < failed.started_at < passed.started_at
    assert all(a.finished_at is not None for a in job.attempt_results)


def test_without_retries_a_lost_runner_ends_the_job_runner_lost(world: QueueWorld) -> None:
    run = world.submit(CHAIN)
    agent = world.agent("a")
    world.claim(agent)
    world.clock.advance(31)

    LeaseSweeper(dispatch=world.dispatch).run_once()

    assert world.statuses(run) == {"build": "runner_lost", "test": "skipped", "deploy": "skipped"}
    assert (world.reasons(run)["build"] or "").startswith("runner lost")
    assert world.reasons(run)["test"] == "need 'build' runner lost"
    assert world.run(run).status == "failed"


def test_heartbeat_and_complete_after_the_lease_was_lost_are_refused_and_recorded(
    world: QueueWorld,
) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x, retry: 1}\n")
    slow = world.agent("slow")
    held = world.claim(slow)
    world.clock.advance(31)
    LeaseSweeper(dispatch=world.dispatch).run_once()

    assert world.dispatch.heartbeat(held.attempt_id, agent_id=slow) == "lost"
    assert world.finish(held, slow) is False

    assert world.statuses(run) == {"a": "queued"}
    assert world.kinds(run, "a")[-1] == "job.result_refused"


def test_a_runner_cannot_extend_or_complete_anothers_attempt(world: QueueWorld) -> None:
    world.submit("version: 1\njobs:\n  a: {run: x}\n")
    owner, intruder = world.agent("owner"), world.agent("intruder")
    held = world.claim(owner)

    assert world.dispatch.heartbeat(held.attempt_id, agent_id=intruder) == "lost"
    assert world.finish(held, intruder) is False
    assert world.finish(held, owner) is True


def test_a_failed_attempt_is_retried_after_its_backoff(world: QueueWorld) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x, retry: {max: 1, backoff: 10s}}\n")
    agent = world.agent("a")
    world.finish(world.claim(agent), agent, "failed", exit_code=1)

    assert world.dispatch.claim(agent) is None
    world.clock.advance(10)
    again = world.claim(agent)
    world.finish(again, agent, "failed", exit_code=1)

    assert again.number == 2
    assert world.statuses(run) == {"a": "failed"}
    assert world.run(run).jobs[0].attempts == 2


FLAKY_BESIDE_BROKEN = """\
version: 1
jobs:
  flaky: {run: flaky, retry: {max: 3, backoff: 30s}}
  broken: {run: broken}
  after: {run: after, needs: flaky}
"""


def both_running(world: QueueWorld, concurrency: int = 2) -> tuple[RunId, int, Claim, Claim]:
    """FLAKY_BESIDE_BROKEN submitted, and its two first jobs claimed by one runner."""
    run = world.submit(FLAKY_BESIDE_BROKEN)
    agent = world.agent("a", concurrency=concurrency)
    flaky, broken = world.claim(agent), world.claim(agent)
    return run, agent, flaky, broken


def test_without_keep_going_a_job_waiting_to_retry_ends_with_its_last_failure_once_another_failed(
    world: QueueWorld,
) -> None:
    run, agent, flaky, broken = both_running(world)
    log = "sha256:" + "3" * 64
    tests = TestCounts(passed=2, failed=1, failures=("test_pay",))
    failed = {"exit_code": 1, "duration_s": 4.0, "log_digest": log, "tests": tests}
    world.finish(flaky, agent, "failed", reason="exited with code 1", **failed)
    assert world.statuses(run)["flaky"] == "queued"  # to be retried in 30 s

    world.finish(broken, agent, "failed", exit_code=2, reason="exited with code 2")

    jobs = {job.name: job for job in world.run(run).jobs}
    flaky_run = jobs["flaky"]
    assert (flaky_run.status, flaky_run.exit_code, flaky_run.attempts) == ("failed", 1, 1)
    assert (flaky_run.log_digest, flaky_run.tests, flaky_run.duration_s) == (log, tests, 4.0)
    assert flaky_run.reason == "exited with code 1; not retried: 'broken' failed"
    assert (jobs["after"].status, jobs["after"].reason) == ("skipped", "need 'flaky' failed")
    world.clock.advance(60)
    assert world.dispatch.claim(agent) is None
    assert world.run(run).status == "failed"
    events = world.events(run, "flaky")
    assert [e.kind for e in events] == ["job.queued", "job.running", "job.retrying", "job.failed"]
    # As a local job's retry says: which attempt, after what, how long until the next.
    retrying = dict(events[2].data)
    assert retrying.pop("delay_s") > 0
    assert retrying == {"status": "retrying", "attempt": 1, "after": "failed"}
    assert {k: events[-1].data[k] for k in ("status", "exit_code", "reason", "attempts")} == {
        "status": "failed",
        "exit_code": 1,
        "reason": "exited with code 1; not retried: 'broken' failed",
        "attempts": 1,
    }
    assert world.kinds(run)[-1] == "run.failed"


def test_with_keep_going_a_job_waiting_to_retry_is_retried_after_another_failed(
    world: QueueWorld,
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN, keep_going=True)
    agent = world.agent("a", concurrency=2)
    flaky, broken = world.claim(agent), world.claim(agent)
    world.finish(flaky, agent, "failed", exit_code=1, reason="exited with code 1")
    world.finish(broken, agent, "failed", exit_code=2)
    assert world.statuses(run)["flaky"] == "queued"

    world.clock.advance(30)
    again = world.claim(agent)
    assert (again.job.name, again.number) == ("flaky", 2)
    world.finish(again, agent, exit_code=0)

    assert world.statuses(run) == {"flaky": "success", "broken": "failed", "after": "queued"}
    assert world.reasons(run)["flaky"] is None


def test_a_retry_that_ends_without_a_result_keeps_nothing_of_the_failed_attempt(
    world: QueueWorld,
) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x, retry: {max: 1, backoff: 10s}}\n")
    agent = world.agent("a")
    world.finish(world.claim(agent), agent, "failed", exit_code=1, log_digest="sha256:" + "3" * 64)
    world.clock.advance(10)
    world.claim(agent)

    world.clock.advance(31)
    LeaseSweeper(dispatch=world.dispatch).run_once()

    job = world.run(run).jobs[0]
    assert (job.status, job.attempts) == ("runner_lost", 2)
    assert (job.exit_code, job.log_digest) == (None, None)  # not the first attempt's


def test_without_keep_going_a_job_queued_again_after_its_runner_was_lost_ends_runner_lost(
    world: QueueWorld,
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN)
    gone, agent = world.agent("gone"), world.agent("a")
    world.claim(gone)
    broken = world.claim(agent)
    world.clock.advance(20)
    assert world.dispatch.heartbeat(broken.attempt_id, agent_id=agent) == "ok"
    world.clock.advance(11)
    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1
    assert world.statuses(run)["flaky"] == "queued"  # a lost runner is retried at once

    world.finish(broken, agent, "failed", exit_code=2)

    flaky = world.run(run).jobs[0]
    assert (flaky.status, flaky.attempts, flaky.exit_code) == ("runner_lost", 1, None)
    assert flaky.reason == (
        "runner lost: its lease ran out without a heartbeat; not retried: 'broken' failed"
    )
    assert world.dispatch.claim(gone) is None
    assert world.run(run).status == "failed"
    assert world.events(run, "flaky")[-1].data["status"] == "runner_lost"


def test_without_keep_going_a_queued_job_the_halt_skips_skips_its_dependents_too(
    world: QueueWorld,
) -> None:
    run = world.submit(
        "version: 1\njobs:\n  broken: {run: x}\n  b: {run: y}\n  c: {run: z, needs: b}\n"
    )
    agent = world.agent("a")

    world.finish(world.claim(agent), agent, "failed", exit_code=1)

    assert world.statuses(run) == {"broken": "failed", "b": "skipped", "c": "skipped"}
    assert world.reasons(run)["c"] == "need 'b' was skipped"
    assert world.run(run).status == "failed"


def test_without_keep_going_a_job_that_fails_once_another_failed_is_not_retried(
    world: QueueWorld,
) -> None:
    run, agent, flaky, broken = both_running(world)
    world.finish(broken, agent, "failed", exit_code=2, reason="exited with code 2")
    log = "sha256:" + "3" * 64

    world.finish(flaky, agent, "failed", exit_code=1, reason="exited with code 1", log_digest=log)

    job = world.run(run).jobs[0]
    assert (job.status, job.exit_code, job.log_digest, job.attempts) == ("failed", 1, log, 1)
    assert job.reason == "exited with code 1; not retried: 'broken' failed"
    assert world.reasons(run)["after"] == "need 'flaky' failed"
    world.clock.advance(60)
    assert world.dispatch.claim(agent) is None
    assert world.run(run).status == "failed"
    assert world.kinds(run, "flaky") == ["job.queued", "job.running", "job.failed"]


def test_without_keep_going_a_job_whose_runner_is_lost_once_another_failed_is_not_retried(
    world: QueueWorld,
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN)
    gone, agent = world.agent("gone"), world.agent("a")
    world.claim(gone)
    world.finish(world.claim(agent), agent, "failed", exit_code=2)
    world.clock.advance(31)

    assert LeaseSweeper(dispatch=world.dispatch).run_once() == 1

    job = world.run(run).jobs[0]
    assert (job.status, job.attempts) == ("runner_lost", 1)
    assert job.reason == (
        "runner lost: its lease ran out without a heartbeat; not retried: 'broken' failed"
    )
    assert world.dispatch.claim(agent) is None
    assert world.run(run).status == "failed"
    assert world.kinds(run, "flaky") == ["job.queued", "job.running", "job.runner_lost"]


@pytest.mark.parametrize("handed_back", ["before the halt", "after the halt"])
def test_without_keep_going_a_job_handed_back_is_not_started_again_once_another_failed(
    world: QueueWorld, handed_back: str
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN)
    leaving, agent = world.agent("leaving"), world.agent("a")
    flaky, broken = world.claim(leaving), world.claim(agent)

    if handed_back == "before the halt":
        assert world.dispatch.hand_back(flaky.attempt_id, agent_id=leaving)
    world.finish(broken, agent, "failed", exit_code=2)
    if handed_back == "after the halt":
        assert world.dispatch.hand_back(flaky.attempt_id, agent_id=leaving)

    assert world.statuses(run) == {"flaky": "skipped", "broken": "failed", "after": "skipped"}
    assert world.reasons(run)["flaky"] == (
        "handed back by its runner; "
        "not started again: 'broken' failed (--keep-going runs independent jobs)"
    )
    assert world.dispatch.claim(leaving) is None
    assert world.run(run).status == "failed"
    assert world.kinds(run, "flaky")[-2:] == ["job.handed_back", "job.skipped"]


@pytest.mark.parametrize("handed_back", ["before the halt", "after the halt"])
def test_without_keep_going_a_job_handed_back_after_a_failed_attempt_ends_with_that_failure(
    world: QueueWorld, handed_back: str
) -> None:
    run, agent, flaky, broken = both_running(world)
    log = "sha256:" + "3" * 64
    failed = {"exit_code": 1, "duration_s": 4.0, "log_digest": log, "reason": "exited with code 1"}
    world.finish(flaky, agent, "failed", **failed)
    world.clock.advance(30)
    again = world.claim(agent)
    assert (again.job.name, again.number) == ("flaky", 2)

    if handed_back == "before the halt":
        assert world.dispatch.hand_back(again.attempt_id, agent_id=agent)
    world.finish(broken, agent, "failed", exit_code=2)
    if handed_back == "after the halt":
        assert world.dispatch.hand_back(again.attempt_id, agent_id=agent)

    job = world.run(run).jobs[0]
    assert (job.status, job.exit_code, job.log_digest, job.duration_s) == ("failed", 1, log, 4.0)
    assert job.reason == "exited with code 1; not retried: 'broken' failed"
    assert job.attempts == 2
    world.clock.advance(60)
    assert world.dispatch.claim(agent) is None
    assert world.run(run).status == "failed"
    assert world.events(run, "flaky")[-1].data["exit_code"] == 1


def test_a_job_canceled_while_waiting_to_retry_shows_nothing_of_the_failed_attempt(
    world: QueueWorld,
) -> None:
    run = world.submit(FLAKY_BESIDE_BROKEN, keep_going=True)
    agent = world.agent("a")
    log = "sha256:" + "3" * 64
    tests = TestCounts(passed=2, failed=1, failures=("test_pay",))
    failed = {"exit_code": 1, "duration_s": 4.0, "log_digest": log, "tests": tests}
    world.finish(world.claim(agent), agent, "failed", reason="exited with code 1", **failed)
    assert world.statuses(run)["flaky"] == "queued"

    assert world.dispatch.cancel(run, actor="ada")

    job = world.run(run).jobs[0]
    assert (job.status, job.reason) == ("canceled", "the run was canceled")
    assert (job.exit_code, job.duration_s, job.log_digest, job.tests) == (None, None, None, None)
    with world.db.read() as tx:  # the failed attempt keeps its own result
        last = attempts.last_attempts(tx, [job.id])[job.id]
    assert (last.status, last.exit_code, last.log_digest, last.tests) == ("failed", 1, log, tests)


POSTGRESQL_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def claim_just_after(
    world: QueueWorld, agent: int, monkeypatch: pytest.MonkeyPatch, module: object, name: str
) -> list[Claim | None]:
    """Make another server process claim (and commit) right after the next call of
    `module.name`, in the middle of the transaction making it; the list gets what it took."""
    real = getattr(module, name)
    claimed: list[Claim | None] = []
    armed = [True]

    def hooked(*args: object) -> object:
        found = real(*args)
        if armed:
            armed.clear()
            other = threading.Thread(target=lambda: claimed.append(world.dispatch.claim(agent)))
            other.start()
            other.join(10)
            assert claimed, "the claim did not end"
        return found

    monkeypatch.setattr(module, name, hooked)
    return claimed


def flaky_failed_and_due_again(world: QueueWorld) -> tuple[RunId, int, Claim]:
    """`flaky` failed and its retry is due, `broken` still runs, a third slot is free."""
    run, agent, flaky, broken = both_running(world, concurrency=3)
    world.finish(flaky, agent, "failed", exit_code=1, reason="exited with code 1")
    world.clock.advance(30)
    return run, agent, broken


@POSTGRESQL_ONLY
def test_a_retry_claimed_while_a_failure_halts_the_run_runs_and_ends_once(
    world: QueueWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, agent, broken = flaky_failed_and_due_again(world)
    # It reads the run's JobRuns unlocked, and the due retry is claimed: it runs, and ends once.
    claimed = claim_just_after(world, agent, monkeypatch, queue, "run_jobs")

    world.finish(broken, agent, "failed", exit_code=2)
    monkeypatch.undo()

    again = claimed[0]
    assert again is not None and (again.job.name, again.number) == ("flaky", 2)
    assert world.statuses(run)["flaky"] == "running"
    assert world.finish(again, agent, exit_code=0)
    assert world.statuses(run) == {"flaky": "success", "broken": "failed", "after": "skipped"}
    assert world.kinds(run, "flaky")[-2:] == ["job.running", "job.success"]
    assert world.run(run).status == "failed"


@POSTGRESQL_ONLY
def test_a_retry_due_while_a_failure_halts_the_run_is_not_claimed_once_the_halt_locked_it(
    world: QueueWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, agent, broken = flaky_failed_and_due_again(world)
    # The halt reads the failed attempt once it locked the queued rows: a claim skips them.
    claimed = claim_just_after(world, agent, monkeypatch, attempts, "last_attempts")

    world.finish(broken, agent, "failed", exit_code=2)
    monkeypatch.undo()

    assert claimed == [None]
    assert world.statuses(run) == {"flaky": "failed", "broken": "failed", "after": "skipped"}
    assert world.reasons(run)["flaky"] == "exited with code 1; not retried: 'broken' failed"
    assert world.kinds(run, "flaky") == ["job.queued", "job.running", "job.retrying", "job.failed"]
    assert world.run(run).status == "failed"


@POSTGRESQL_ONLY
def test_a_job_claimed_while_a_failure_halts_the_run_is_not_skipped(
    world: QueueWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = world.submit("version: 1\njobs:\n  broken: {run: x}\n  b: {run: y}\n")
    first, second = world.agent("first"), world.agent("second")
    broken = world.claim(first)
    claimed = claim_just_after(world, second, monkeypatch, queue, "run_jobs")

    world.finish(broken, first, "failed", exit_code=1)
    monkeypatch.undo()

    b = claimed[0]
    assert b is not None and b.job.name == "b"
    assert world.statuses(run) == {"broken": "failed", "b": "running"}
    assert world.finish(b, second)
    assert world.statuses(run) == {"broken": "failed", "b": "success"}
    assert world.kinds(run, "b") == ["job.queued", "job.running", "job.success"]
    assert world.run(run).status == "failed"


def test_canceling_a_run_cancels_waiting_jobs_and_tells_running_ones(world: QueueWorld) -> None:
    run = world.submit(CHAIN + "  lint: {run: ruff}\n")
    agent = world.agent("a")
    held = world.claim(agent)

    assert world.dispatch.cancel(run, actor="ada") is True

    assert world.statuses(run) == {
        "build": "running",
        "test": "canceled",
        "deploy": "canceled",
        "lint": "canceled",
    }
    assert world.run(run).status == "running"
    assert world.dispatch.heartbeat(held.attempt_id, agent_id=agent) == "cancel"
    world.finish(held, agent, "canceled", reason="canceled")
    assert world.run(run).status == "canceled"
    assert world.dispatch.cancel(run, actor="ada") is False
    assert "run.cancel_requested" in world.kinds(run)


def test_handing_back_queues_the_job_again_at_once(world: QueueWorld) -> None:
    run = world.submit("version: 1\njobs:\n  a: {run: x}\n")
    leaving, staying = world.agent("leaving"), world.agent("staying")
    held = world.claim(leaving)

    assert world.dispatch.hand_back(held.attempt_id, agent_id=leaving) is True

    again = world.claim(staying)
    assert again.number == 2
    assert [a.status for a in world.attempts(run)] == ["handed_back", "running"]
    assert "job.handed_back" in world.kinds(run, "a")


def test_a_runner_that_never_registered_cannot_claim(world: QueueWorld) -> None:
    with pytest.raises(NotFound, match="no agent 42; register it first"):
        world.dispatch.claim(42)


def test_registering_again_under_a_name_updates_the_runner(world: QueueWorld) -> None:
    first = world.dispatch.register_agent(name="r1", labels=["linux"], concurrency=1)
    world.clock.advance(60)
    again = world.dispatch.register_agent(name="r1", labels=["linux", "docker"], concurrency=4)

    assert again.id == first.id
    assert (again.labels, again.concurrency) == (("docker", "linux"), 4)
    assert [a.name for a in world.dispatch.connected_agents(within_s=30)] == ["r1"]
    world.clock.advance(31)
    assert world.dispatch.connected_agents(within_s=30) == []


def test_a_file_has_one_producer_as_in_a_local_run(world: QueueWorld) -> None:
    # b does not need a, so it may not produce a's file; c needs a, so it may rewrite it.
    # (b's glob: named alike, the clash is refused before the Run is made.)
    run = world.submit(
        "version: 1\njobs:\n  a: {run: x, outputs: [out]}\n  b: {run: y, outputs: ['ou*']}\n"
        "  c: {run: z, needs: a, outputs: [out]}\n"
    )
    agent = world.agent("w", concurrency=3)
    a, b = world.claim(agent), world.claim(agent)
    world.finish(a, agent, outputs=(OutputRecord("out", "sha256:" + "1" * 64, 1),))
    c = world.claim(agent)
    world.finish(c, agent, outputs=(OutputRecord("out", "sha256:" + "3" * 64, 1),))
    world.finish(b, agent, outputs=(OutputRecord("out", "sha256:" + "2" * 64, 1),))

    assert world.statuses(run) == {"a": "success", "b": "failed", "c": "success"}
    assert world.reasons(run)["b"] == run_rules.shared_output("out", "a")
    assert world.run(run).status == "failed"
    outputs = {job.name: [o.digest[-1] for o in job.outputs] for job in world.run(run).jobs}
    assert outputs == {"a": ["1"], "b": [], "c": ["3"]}  # failed, b has no artifacts

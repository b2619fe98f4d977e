"""The work queue under contention: every JobRun handed out exactly once, every expired lease
given up exactly once, by many threads and processes at the same time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

from conveyor.core.clock import FrozenClock
from conveyor.engine.dispatch import DispatchService, LeaseSweeper
from conveyor.engine.dispatch_rules import AttemptResult
from conveyor.store import attempts, queue
from conveyor.store import events as event_log
from conveyor.store.db import Database
from integration.engine.queue_world import QueueWorld

THREADS = 20
JOBS = 500


def trivial(count: int) -> str:
    return "version: 1\njobs:\n" + "".join(f"  j{i}: {{run: 'true'}}\n" for i in range(count))


def drain(world: QueueWorld, agent: int, claimed: list[int]) -> None:
    while (claim := world.dispatch.claim(agent)) is not None:
        claimed.append(claim.job_run_id)
        world.dispatch.complete(claim.attempt_id, agent_id=agent, result=AttemptResult("success"))


def run_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_many_threads_claiming_at_once_take_every_job_run_exactly_once(db: Database) -> None:
    world = QueueWorld(db)
    run = world.submit(trivial(JOBS))
    agents = [world.agent(f"agent-{i}") for i in range(THREADS)]
    claimed: list[list[int]] = [[] for _ in agents]

    run_threads(THREADS, lambda i: drain(world, agents[i], claimed[i]))

    per_job = Counter(job_id for mine in claimed for job_id in mine)
    assert len(per_job) == JOBS and set(per_job.values()) == {1}
    stored = Counter(a.job_run_id for a in world.attempts(run))
    assert stored == per_job
    assert world.run(run).status == "success"
    kinds = Counter(world.kinds(run))
    assert kinds["job.running"] == JOBS and kinds["job.success"] == JOBS
    assert sum(1 for mine in claimed if mine) > 1  # the work was really shared


def test_processes_claiming_at_once_take_every_job_run_exactly_once(
    db: Database, database_url: str, spawn: Callable[[str, int, Sequence[str]], list[str]]
) -> None:
    world = QueueWorld(db)
    run = world.submit(trivial(200))
    script = (
        "from conveyor.core.clock import FrozenClock\n"
        "from conveyor.engine.dispatch import DispatchService\n"
        "from conveyor.engine.dispatch_rules import AttemptResult\n"
        "from conveyor.store.db import open_database\n"
        "db = open_database(sys.argv[3])\n"
        "service = DispatchService(db=db, clock=FrozenClock(1_767_225_600.0))\n"
        "agent = service.register_agent(name=f'proc-{sys.argv[2]}', labels=[]).id\n"
        "wait_for_go()\n"
        "while (claim := service.claim(agent)) is not None:\n"
        "    print(claim.job_run_id)\n"
        "    service.complete(claim.attempt_id, agent_id=agent, result=AttemptResult('success'))\n"
        "db.close()\n"
    )

    printed = spawn(script, 4, [database_url])

    per_job = Counter(int(line) for out in printed for line in out.split())
    assert len(per_job) == 200 and set(per_job.values()) == {1}
    assert world.run(run).status == "success"


def test_sweepers_running_at_once_give_up_each_expired_lease_exactly_once(db: Database) -> None:
    clock = FrozenClock(1_767_225_600.0)
    world = QueueWorld(db, clock=clock)
    run = world.submit(trivial(60))
    agent = world.dispatch.register_agent(name="gone", labels=[], concurrency=100).id
    while world.dispatch.claim(agent) is not None:
        pass
    clock.advance(31)
    found: list[int] = []

    def sweep(_index: int) -> None:
        found.append(LeaseSweeper(dispatch=DispatchService(db=db, clock=clock), batch=7).run_once())

    run_threads(6, sweep)

    assert sum(found) == 60
    assert Counter(a.status for a in world.attempts(run)) == {"runner_lost": 60}
    assert (
        Counter(e.kind for e in event_log.for_subject(db, f"run/{run}", limit=10_000))[
            "job.runner_lost"
        ]
        == 60
    )
    assert set(world.statuses(run).values()) == {"runner_lost"}


def test_taking_a_job_run_is_conditional_on_it_still_being_queued(db: Database) -> None:
    world = QueueWorld(db)
    run = world.submit(trivial(1))
    job_id = world.run(run).jobs[0].id

    with db.write() as tx:
        first = queue.take(tx, job_id, 1.0)
        second = queue.take(tx, job_id, 2.0)

    assert first is not None and first.attempts == 1
    assert second is None


def test_a_lease_is_extended_only_for_its_holder_while_it_runs(db: Database) -> None:
    world = QueueWorld(db)
    world.submit(trivial(1))
    agent, other = world.agent("a"), world.agent("b")
    claim = world.claim(agent)

    with db.write() as tx:
        assert attempts.extend_lease(tx, claim.attempt_id, other, 1.0, 2.0) is None
        assert attempts.extend_lease(tx, claim.attempt_id, agent, 1.0, 2.0) is False
        attempts.end_attempt(tx, claim.attempt_id, "success", 1.0)
        assert attempts.extend_lease(tx, claim.attempt_id, agent, 1.0, 2.0) is None

"""Benchmark: the work queue of remote runs on PostgreSQL, in-process (no HTTP yet).

50 runner threads claim and complete trivial JobRuns through the dispatch
service, each with a connection pool of its own share (5 connections per 5
runners, as server replicas would have). Two phases:

- backlog: 5,000 JobRuns (runs of 50 independent jobs) queued up front; the
  runners drain them. Gives throughput (jobs/s).
- free runners: runs of 10 jobs submitted at a steady rate, half the measured
  throughput, so runners are mostly idle. Gives queue time (claimable to
  claimed) p50/p95/p99, the figure agents see when they are free. A runner
  that found nothing waits until work is submitted (at most POLL_S); a
  submission wakes as many idle runners as it has jobs, as a long-poll
  server would.

Every JobRun must be claimed exactly once (counted by the runners).

    python bench/queue_bench.py [--url postgresql://...] [--workers 50] [--jobs 5000] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import psycopg

from conveyor.core.clock import SystemClock
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import AttemptResult, Source, Submission
from conveyor.engine.plan import make_plan
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.pipeline import Pipeline
from conveyor.store import migrate
from conveyor.store.db import Database, open_database
from conveyor.store.runs import NewRun

DEFAULT_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
POLL_S = 0.5
# Woken when work may have become claimable: the in-process stand-in for a long poll.
WORK = threading.Condition()
GENERATION = [0]


def announce(jobs: int) -> None:
    """`jobs` became claimable: wake as many idle runners, as a long-poll server would."""
    with WORK:
        GENERATION[0] += 1
        WORK.notify(jobs)


def await_work(seen: int) -> None:
    """Wait for work announced after generation `seen` (or POLL_S)."""
    with WORK:
        if GENERATION[0] == seen:
            WORK.wait(POLL_S)


@functools.cache
def pipeline_of(width: int) -> Pipeline:
    return parse_pipeline(
        "version: 1\njobs:\n" + "".join(f"  j{i}: {{run: 'true'}}\n" for i in range(width))
    )


def submission(width: int, index: int) -> Submission:
    pipeline = pipeline_of(width)
    run = NewRun(
        project="bench",
        pipeline_path="conveyor.yaml",
        spec_digest=pipeline.digest,
        workspace="/bench",
        branch="main",
        commit_sha=None,
        event="push",
        actor="bench",
        targets=(),
        options={},
        host="bench",
        pid=index,
        created_at=time.time(),
    )
    plan = make_plan(pipeline, (), lambda _job: None)
    return Submission(run=run, plan=plan, source=Source(path="/bench"), keep_going=True)


class Runners:
    """`count` runner threads that claim and complete until told to stop."""

    def __init__(self, services: list[DispatchService], count: int) -> None:
        self.claimed: Counter[int] = Counter()
        self.queued: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        for i in range(count):
            service = services[i // 5]
            agent = service.register_agent(name=f"runner-{i}", labels=[]).id
            thread = threading.Thread(target=self._loop, args=(service, agent), daemon=True)
            self._threads.append(thread)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _loop(self, service: DispatchService, agent: int) -> None:
        done = AttemptResult("success", exit_code=0)
        while not self._stop.is_set():
            seen = GENERATION[0]
            claim = service.claim(agent)
            if claim is None:
                await_work(seen)
                continue
            with self._lock:
                self.claimed[claim.job_run_id] += 1
                self.queued.append(claim.queued_s)
            service.complete(claim.attempt_id, agent_id=agent, result=done)


def wait_until(check: Callable[[], bool], timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("the runners did not finish in time")
        time.sleep(0.005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def backlog(services: list[DispatchService], workers: int, jobs: int) -> dict[str, float]:
    for i in range(jobs // 50):
        services[0].submit(submission(50, i))
    runners = Runners(services, workers)
    started = time.perf_counter()
    runners.start()
    wait_until(lambda: sum(runners.claimed.values()) >= jobs)
    elapsed = time.perf_counter() - started
    runners.stop()
    assert set(runners.claimed.values()) == {1}, "a JobRun was handed out twice"
    assert len(runners.claimed) == jobs
    return {"jobs": jobs, "seconds": elapsed, "jobs_per_s": jobs / elapsed}


def free_runners(
    services: list[DispatchService], workers: int, jobs: int, rate: float
) -> dict[str, float]:
    runners = Runners(services, workers)
    runners.start()
    interval = 10 / rate  # one run of 10 jobs per interval
    for i in range(jobs // 10):
        services[0].submit(submission(10, i))
        announce(10)
        time.sleep(interval)
    wait_until(lambda: sum(runners.claimed.values()) >= jobs)
    runners.stop()
    assert set(runners.claimed.values()) == {1}, "a JobRun was handed out twice"
    ms = [q * 1000 for q in runners.queued]
    return {
        "jobs": jobs,
        "submitted_per_s": rate,
        "queue_ms_p50": percentile(ms, 0.50),
        "queue_ms_p95": percentile(ms, 0.95),
        "queue_ms_p99": percentile(ms, 0.99),
        "queue_ms_mean": statistics.fmean(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{args.url}{'&' if '?' in args.url else '?'}options=-csearch_path%3D{schema}"
    databases: list[Database] = [open_database(url) for _ in range((args.workers + 4) // 5)]
    try:
        migrate.upgrade(databases[0])
        services = [DispatchService(db=db, clock=SystemClock()) for db in databases]
        first = backlog(services, args.workers, args.jobs)
        second = free_runners(services, args.workers, args.jobs // 5, rate=first["jobs_per_s"] / 2)
    finally:
        for db in databases:
            db.close()
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    report = {"workers": args.workers, "backlog": first, "free_runners": second}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.workers} runners, PostgreSQL, in-process dispatch")
    took = f"{first['seconds']:.1f}s = {first['jobs_per_s']:.0f} jobs/s"
    print(f"backlog: {first['jobs']} jobs in {took}")
    print(
        f"free runners ({second['jobs']} jobs at {second['submitted_per_s']:.0f}/s): queue time "
        f"p50 {second['queue_ms_p50']:.1f} ms, p95 {second['queue_ms_p95']:.1f} ms, "
        f"p99 {second['queue_ms_p99']:.1f} ms"
    )


if __name__ == "__main__":
    main()

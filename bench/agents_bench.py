"""Benchmark: one `conveyor server` on PostgreSQL, 50 agents over HTTP, 5,000 trivial jobs.

The server is a real `conveyor server` process. The agents are 50 `AgentLoop`s
in this process, each with its own `HttpWorkSource` (the code `conveyor agent`
runs), claiming by long poll, running each job's script with the local
executor, uploading its log by digest and reporting the result. Every job
appends one line naming its run and itself to a file, so the jobs themselves
count that each ran exactly once. Two phases:

- backlog: all jobs (runs of 50 independent jobs) submitted up front; the
  agents drain them. Gives throughput (jobs/s).
- free agents: runs of 10 jobs submitted at a steady rate, half the measured
  throughput, so agents are mostly idle. Gives queue time (claimable to
  claimed, as the server records it on every attempt) p50/p95/p99.

    python bench/agents_bench.py [--url postgresql://...] [--agents 50] [--jobs 5000]
        [--free-jobs 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg

from conveyor.artifacts.cas import ContentStore
from conveyor.control.agent_client import HttpWorkSource
from conveyor.core.clock import SystemClock
from conveyor.engine.agent_loop import AgentLoop
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import Source, Submission
from conveyor.engine.plan import make_plan
from conveyor.engine.tokens import TokenService
from conveyor.executors.local import LocalExecutor
from conveyor.spec.loader import parse_pipeline
from conveyor.store import migrate
from conveyor.store.db import Database, open_database
from conveyor.store.runs import NewRun

DEFAULT_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def submission(width: int, index: int, source: Path, ledger: Path) -> Submission:
    pipeline = parse_pipeline(
        "version: 1\njobs:\n"
        + "".join(
            f'  j{i}: {{run: \'echo "$CONVEYOR_RUN_ID $CONVEYOR_JOB" >> "$LEDGER"\'}}\n'
            for i in range(width)
        )
    )
    run = NewRun(
        project="bench",
        pipeline_path="conveyor.yaml",
        spec_digest=pipeline.digest,
        workspace=str(source),
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
    return Submission(
        run=run,
        plan=plan,
        source=Source(path=str(source)),
        keep_going=True,
        env={"LEDGER": str(ledger)},
    )


class Agents:
    """`count` agent loops over HTTP, each on a thread of its own."""

    def __init__(self, url: str, token: str, count: int, work: Path) -> None:
        self.loops: list[AgentLoop] = []
        self.sources: list[HttpWorkSource] = []
        self.threads: list[threading.Thread] = []
        for i in range(count):
            home = work / f"agent-{i}"
            cas = ContentStore(home / "cas")
            source = HttpWorkSource(server=url, token=token, cas=cas, work_dir=home)
            found = source.register(name=f"bench-{i}", labels=[], concurrency=1)
            loop = AgentLoop(
                source=source,
                executor=LocalExecutor(),
                cas=cas,
                work_dir=home,
                heartbeat_s=found.heartbeat_s,
                poll_s=0.05,
            )
            self.sources.append(source)
            self.loops.append(loop)
            self.threads.append(threading.Thread(target=loop.run, daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        for source, loop in zip(self.sources, self.loops, strict=True):
            source.stop()
            loop.stop(hand_back=True)
        for thread in self.threads:
            thread.join(30)
        for source in self.sources:
            source.close()
        errors = [e for loop in self.loops for e in loop.errors]
        if errors:
            raise SystemExit(f"agents failed: {errors[0]!r}")


def ledger_counts(ledger: Path) -> Counter[str]:
    return Counter(ledger.read_text().splitlines()) if ledger.exists() else Counter()


def wait_for_lines(ledger: Path, count: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(ledger_counts(ledger).values()) < count:
        if time.monotonic() > deadline:
            raise SystemExit("the agents did not finish in time")
        time.sleep(0.05)


def queue_times(db: Database, since_id: int) -> list[float]:
    with db.read() as tx:
        rows = tx.execute(
            "SELECT queued_s FROM job_attempts WHERE id > :i AND status = 'success'",
            {"i": since_id},
        )
    return [float(row[0]) * 1000 for row in rows]


def last_attempt(db: Database) -> int:
    with db.read() as tx:
        return int(tx.execute("SELECT coalesce(max(id), 0) FROM job_attempts")[0][0])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = 18000 + os.getpid() % 1000
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(CONVEYOR_DATABASE_URL=url, CONVEYOR_HOME=str(home), CONVEYOR_LOG_LEVEL="warning")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "server", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.1)


def phases(args: argparse.Namespace, db: Database, base: str, token: str, work: Path) -> dict:
    source = work / "src"
    source.mkdir()
    (source / "README").write_text("bench\n")
    service = DispatchService(db=db, clock=SystemClock())
    agents = Agents(base, token, args.agents, work)
    ledger = work / "backlog.txt"
    for i in range(args.jobs // 50):
        service.submit(submission(50, i, source, ledger))
    started = time.perf_counter()
    agents.start()
    try:
        wait_for_lines(ledger, args.jobs)
        elapsed = time.perf_counter() - started
        backlog = {"jobs": args.jobs, "seconds": elapsed, "jobs_per_s": args.jobs / elapsed}
        free_jobs = args.free_jobs
        rate = backlog["jobs_per_s"] / 2
        mark = last_attempt(db)
        free_ledger = work / "free.txt"
        for i in range(free_jobs // 10):
            service.submit(submission(10, 10_000 + i, source, free_ledger))
            time.sleep(10 / rate)
        wait_for_lines(free_ledger, free_jobs)
    finally:
        agents.stop()
    for name, count in (("backlog", args.jobs), ("free agents", free_jobs)):
        counts = ledger_counts(ledger if name == "backlog" else free_ledger)
        if len(counts) != count or set(counts.values()) != {1}:
            raise SystemExit(f"{name}: a job did not run exactly once")
    ms = queue_times(db, mark)
    free = {
        "jobs": free_jobs,
        "submitted_per_s": rate,
        "queue_ms_p50": percentile(ms, 0.50),
        "queue_ms_p95": percentile(ms, 0.95),
        "queue_ms_p99": percentile(ms, 0.99),
    }
    return {"agents": args.agents, "backlog": backlog, "free_agents": free}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL URL")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--free-jobs", type=int, default=500, help="jobs of the second phase")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = f"{args.url}{'&' if '?' in args.url else '?'}options=-csearch_path%3D{schema}"
    db = open_database(url)
    with tempfile.TemporaryDirectory(prefix="conveyor-agents-bench-") as tmp:
        work = Path(tmp)
        server = None
        try:
            migrate.upgrade(db)
            token = TokenService(db=db).create(role="runner", actor="bench").token
            server, base = start_server(url, work)
            report = phases(args, db, base, token, work)
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
            db.close()
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    if args.json:
        print(json.dumps(report, indent=2))
        return
    backlog, free = report["backlog"], report["free_agents"]
    print(f"{args.agents} agents over HTTP, one server, PostgreSQL")
    print(
        f"backlog: {backlog['jobs']} jobs in {backlog['seconds']:.1f}s = "
        f"{backlog['jobs_per_s']:.0f} jobs/s"
    )
    print(
        f"free agents ({free['jobs']} jobs at {free['submitted_per_s']:.0f}/s): queue time "
        f"p50 {free['queue_ms_p50']:.1f} ms, p95 {free['queue_ms_p95']:.1f} ms, "
        f"p99 {free['queue_ms_p99']:.1f} ms"
    )


if __name__ == "__main__":
    main()

"""A work queue on a real database: submit pipelines, register runners, claim and complete."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.audit.chain import Event
from conveyor.core.clock import FrozenClock
from conveyor.core.records import JobRecord, JobState, RunId, RunRecord
from conveyor.engine.dispatch import DispatchService
from conveyor.engine.dispatch_rules import AttemptResult, Claim, Source, Submission
from conveyor.engine.dispatch_secrets import SecretResolver
from conveyor.engine.plan import make_plan
from conveyor.spec.loader import parse_pipeline
from conveyor.store import attempts
from conveyor.store import events as event_log
from conveyor.store import runs as run_store
from conveyor.store.attempts import AttemptRecord
from conveyor.store.db import Database

T0 = 1_767_225_600.0


def new_run(**overrides: object) -> run_store.NewRun:
    values: dict[str, object] = {
        "project": "shop",
        "pipeline_path": "conveyor.yaml",
        "spec_digest": "sha256:" + "ab" * 32,
        "workspace": "/srv/shop",
        "branch": "main",
        "commit_sha": "c0ffee" * 6 + "c0ff",
        "event": "push",
        "actor": "ada@example.com",
        "targets": (),
        "options": {},
        "host": "server-1",
        "pid": 1,
        "created_at": T0,
    }
    values.update(overrides)
    return run_store.NewRun(**values)  # type: ignore[arg-type]


@dataclass
class QueueWorld:
    """One database, one frozen clock, one dispatch service."""

    db: Database
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(T0))
    lease_s: float = 30.0
    secrets: SecretResolver | None = None

    def __post_init__(self) -> None:
        self.dispatch = DispatchService(
            db=self.db, clock=self.clock, lease_s=self.lease_s, secrets=self.secrets
        )

    def submit(
        self,
        text: str,
        *,
        skipped: Mapping[str, str] | None = None,
        keep_going: bool = False,
        source: Source | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunId:
        pipeline = parse_pipeline(textwrap.dedent(text))
        reasons = dict(skipped or {})
        plan = make_plan(pipeline, (), lambda job: reasons.get(job.name))
        return self.dispatch.submit(
            Submission(
                run=new_run(spec_digest=pipeline.digest),
                plan=plan,
                source=source or Source(path="/srv/shop"),
                concurrency=pipeline.concurrency,
                keep_going=keep_going,
                env={"CONVEYOR_RUN": "remote"} if env is None else env,
                secrets=pipeline.secrets,
            )
        )

    def agent(self, name: str, labels: tuple[str, ...] = (), concurrency: int = 1) -> int:
        return self.dispatch.register_agent(name=name, labels=labels, concurrency=concurrency).id

    def claim(self, agent: int) -> Claim:
        claim = self.dispatch.claim(agent)
        assert claim is not None, "nothing was claimable"
        return claim

    def finish(
        self, claim: Claim, agent: int, status: JobState = "success", **result: object
    ) -> bool:
        outcome = AttemptResult(status, **result)  # type: ignore[arg-type]
        return self.dispatch.complete(claim.attempt_id, agent_id=agent, result=outcome) is not None

    def run(self, run_id: RunId) -> RunRecord:
        return run_store.get_run(self.db, run_id=run_id)

    def job(self, run_id: RunId, name: str) -> JobRecord:
        return next(job for job in self.run(run_id).jobs if job.name == name)

    def kept_log(self, job: JobRecord) -> str | None:
        """The log digest the JobRun's last attempt with a result keeps on its own row."""
        with self.db.read() as tx:
            return attempts.last_attempts(tx, [job.id])[job.id].log_digest

    def statuses(self, run_id: RunId) -> dict[str, str]:
        return {job.name: job.status for job in self.run(run_id).jobs}

    def reasons(self, run_id: RunId) -> dict[str, str | None]:
        return {job.name: job.reason for job in self.run(run_id).jobs}

    def events(self, run_id: RunId, job: str | None = None) -> list[Event]:
        prefix = f"run/{run_id}" if job is None else f"run/{run_id}/job/{job}"
        return event_log.for_subject(self.db, prefix, limit=100_000)

    def kinds(self, run_id: RunId, job: str | None = None) -> list[str]:
        return [e.kind for e in self.events(run_id, job)]

    def attempts(self, run_id: RunId) -> list[AttemptRecord]:
        with self.db.read() as tx:
            return attempts.attempts_of(tx, run_id)

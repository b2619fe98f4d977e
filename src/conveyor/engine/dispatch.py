"""The dispatch service: remote runs handed to runners through the work queue.

A submitted Run is planned as for `conveyor run` and stored with its JobRuns
`pending`. A JobRun whose needs all finished well becomes `queued`; a runner
claims the oldest queued JobRun its labels satisfy, under a lease that its
heartbeats extend, and completes it with the outcome. Each call is one
transaction that changes state and appends the Events recording it; what
moves on is decided by `dispatch_rules`, with the local Scheduler's rules.

A held JobRun whose lease runs out is found by `sweep_expired` (any number of
server processes may sweep at once): the attempt is `runner_lost`, and the
JobRun is queued again while its retry policy allows, else it ends
`runner_lost`. A failed attempt is retried the same way, after its backoff.
A runner that stops hands its JobRuns back: they are queued again at once.
Each attempt's row keeps the result its runner reported. Once a failure halts
the Run (without keep_going), nothing is queued again (`halt_of` is asked
first) and a JobRun waiting to retry is not: it ends with its last failed or
lost attempt's result, or is skipped when it has none (`halted`). As a local
job's, its log then ends with `--- not retried: <why> ---`: the attempt's log
with that line is stored as a new blob for the JobRun, and the attempt's row
keeps the log its runner stored. The queued rows a halt ends are locked first,
so a claim committed meanwhile stands.

Secret values are never stored: a claim reads the secrets its Pipeline
declares through `dispatch_secrets` and hands them to the runner in the Claim
alone. `retry` (`dispatch_retry`) starts a new Run of a finished one,
carrying over what succeeded as cached and queuing the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from conveyor.artifacts.cas import ContentStore
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import ConveyorError
from conveyor.core.records import TERMINAL_JOB_STATES, AttemptOutcome, JobState, OutputRecord, RunId
from conveyor.core.values import replace
from conveyor.engine import logs, run_rules
from conveyor.engine.dispatch_retry import retry_run
from conveyor.engine.dispatch_rules import (
    AttemptResult,
    Beat,
    Claim,
    Step,
    Submission,
    advance,
    claim_of,
    final_event,
    halt_of,
    halted,
    job_event,
    not_retried,
    outcome_of,
    queued_jobs,
    retry_delay,
    secret_names,
    started_event,
    upstream_names,
)
from conveyor.engine.dispatch_secrets import SecretResolver, with_secrets
from conveyor.store import agents, attempts, queue
from conveyor.store import events as event_log
from conveyor.store.agents import AgentRecord
from conveyor.store.attempts import AttemptRecord
from conveyor.store.db import Database, Transaction
from conveyor.store.queue import Candidate, QueueJob, Taken
from conveyor.store.runs import JobUpdate, apply_job_update

DEFAULT_LEASE_S = 30.0
DEFAULT_HEARTBEAT_S = 5.0


class DispatchService:
    """Hands out the JobRuns of remote Runs to runners; records every change as an Event.

    `cas` is the content store runners' logs are uploaded to: a JobRun whose retry
    is not to come gets its log there with the line saying so. Without one (the
    queue alone, in tests), logs stay as their runners stored them.
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        lease_s: float = DEFAULT_LEASE_S,
        actor: str = "conveyor",
        secrets: SecretResolver | None = None,
        cas: ContentStore | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.lease_s = lease_s
        self.actor = actor
        self.secrets = secrets
        self.cas = cas

    # --- runs --------------------------------------------------------------------

    def submit(self, submission: Submission) -> RunId:
        """Store a planned Run; its first JobRuns become claimable at once."""
        now = self.clock.now()
        with self.db.write() as tx:
            options = {**submission.run.options, "keep_going": submission.keep_going}
            run_id = queue.insert_run(tx, replace(submission.run, options=options))
            queue.insert_jobs(tx, run_id, queued_jobs(submission))
            events = [started_event(run_id, submission, now)]
            jobs = {job.name: job for job in queue.run_jobs(tx, run_id)}
            for name, reason in submission.plan.skipped.items():
                queue.set_status(tx, jobs[name].id, "skipped", reason=reason, finished_at=now)
                events.append(self._event(jobs[name], "skipped", now, reason=reason))
            events += self._supersede(tx, run_id, submission, now)
            events += self._progress(tx, run_id, now, keep_going=submission.keep_going)
            event_log.append(tx, events)
        return run_id

    def _supersede(
        self, tx: Transaction, run_id: RunId, submission: Submission, now: float
    ) -> list[NewEvent]:
        """With `cancel_in_progress`, cancel what older runs hold of the same groups."""
        reason = f"superseded by run {run_id}"
        groups = [(job.concurrency, False) for job in submission.plan.jobs if job.concurrency]
        if submission.concurrency is not None:
            groups.append((submission.concurrency, True))
        events: list[NewEvent] = []
        for concurrency, run_level in groups:
            if not concurrency.cancel_in_progress:
                continue
            holders = queue.unfinished_holders(tx, group=concurrency.group, run_level=run_level)
            for older in sorted({h.run_id for h in holders if h.run_id < run_id}):
                mine = [h for h in holders if h.run_id == older]
                events += self._cancel_jobs(tx, older, mine, reason, now)
        return events

    def cancel(self, run_id: RunId, *, actor: str, reason: str = "the run was canceled") -> bool:
        """Cancel a Run's JobRuns; running ones stop at their runner's next heartbeat.

        False when the Run had already finished.
        """
        now = self.clock.now()
        with self.db.write() as tx:
            status, _, _ = queue.lock_run(tx, run_id)
            if status != "running":
                return False
            events = [NewEvent("run.cancel_requested", f"run/{run_id}", actor, now, {})]
            events += self._cancel_jobs(tx, run_id, queue.run_jobs(tx, run_id), reason, now)
            event_log.append(tx, events)
        return True

    def _cancel_jobs(
        self, tx: Transaction, run_id: RunId, jobs: Sequence[QueueJob], reason: str, now: float
    ) -> list[NewEvent]:
        queue.lock_run(tx, run_id)
        unstarted = set(queue.lock_unstarted(tx, [job.id for job in jobs]))
        events = []
        for job in jobs:
            if job.id in unstarted:
                queue.set_status(tx, job.id, "canceled", reason=reason, finished_at=now)
                events.append(self._event(job, "canceled", now, reason=reason))
        # Claims in flight have committed once the rows above were locked: those are running.
        queue.request_cancel(tx, [job.id for job in jobs if job.id not in unstarted])
        return events + self._progress(tx, run_id, now, keep_going=True)

    def _progress(
        self, tx: Transaction, run_id: RunId, now: float, *, keep_going: bool
    ) -> list[NewEvent]:
        """Queue or skip what can move on; finish the Run when nothing is left."""
        listed = queue.run_jobs(tx, run_id)
        last: Mapping[int, AttemptOutcome] = {}
        queued = [job.id for job in listed if job.status == "queued"]
        halt = halt_of(listed, keep_going=keep_going)  # a claim meanwhile does not change it
        if queued and halt is not None:
            # The halt ends the queued ones: lock them first (a claim in flight commits before),
            # then read again, so one a runner claimed meanwhile is seen running and left be.
            queue.lock_unstarted(tx, queued)
            listed = queue.run_jobs(tx, run_id)
            retried = [job.id for job in listed if job.status == "queued" and job.attempts]
            last = attempts.last_attempts(tx, retried)
        jobs = {job.id: job for job in listed}
        events = []
        for step in advance(listed, halt=halt, last=last):
            jobs[step.job.id] = replace(step.job, status=step.status)
            events.append(self._apply(tx, step, now))
        status = outcome_of(list(jobs.values()))
        if status is not None:
            run_status, started, _ = queue.lock_run(tx, run_id)
            if run_status == "running":
                queue.finish_run(tx, run_id, status, now, started)
                data = {"status": status}
                events.append(NewEvent(f"run.{status}", f"run/{run_id}", self.actor, now, data))
        return events

    def _apply(self, tx: Transaction, step: Step, now: float) -> NewEvent:
        """Record one Step: a JobRun queued or skipped, or ended with its last attempt's result."""
        if step.result is not None:
            return self._end(tx, step.job, step.result, now, note=step.note)
        queued_at = now if step.status == "queued" else None
        finished_at = None if step.status == "queued" else now
        queue.set_status(
            tx,
            step.job.id,
            step.status,
            reason=step.reason,
            queued_at=queued_at,
            finished_at=finished_at,
        )
        return self._event(step.job, step.status, now, reason=step.reason)

    def _halt(self, tx: Transaction, run_id: RunId, *, keep_going: bool) -> str | None:
        """Why the Run halts (`halt_of`); None while it goes on.

        The caller holds the Run's lock, so no JobRun of it ends meanwhile: a claim
        moves one from queued to running only, which decides nothing here.
        """
        return None if keep_going else halt_of(queue.run_jobs(tx, run_id), keep_going=False)

    def retry(self, run_id: RunId, *, actor: str) -> RunId:
        """A new Run of a finished one: its successful jobs carried over as cached, the rest queued.

        Conflict when the Run is still running or nothing in it failed.
        """
        now = self.clock.now()
        return retry_run(
            self.db, run_id, actor=actor, system=self.actor, now=now, progress=self._progress
        )

    def _event(self, job: QueueJob, status: str, now: float, **data: object) -> NewEvent:
        return job_event(job, status, self.actor, now, status=status, **data)

    # --- agents ------------------------------------------------------------------

    def register_agent(
        self, *, name: str, labels: Sequence[str], concurrency: int = 1, token_id: int | None = None
    ) -> AgentRecord:
        """Record a runner (again, after a restart); recorded as an Event."""
        now = self.clock.now()
        with self.db.write() as tx:
            agent = agents.register_agent(
                tx, name=name, labels=labels, concurrency=concurrency, token_id=token_id, now=now
            )
            data = {"labels": list(agent.labels), "concurrency": agent.concurrency}
            event = NewEvent("agent.registered", f"agent/{agent.name}", name, now, data)
            event_log.append(tx, [event])
        return agent

    def connected_agents(self, *, within_s: float) -> list[AgentRecord]:
        """Runners heard from in the last `within_s` seconds."""
        with self.db.read() as tx:
            return agents.agents_seen_since(tx, self.clock.now() - within_s)

    # --- claims and leases -------------------------------------------------------

    def claim(self, agent_id: int) -> Claim | None:
        """The oldest claimable JobRun this runner may take, under a new lease; None if none."""
        now = self.clock.now()
        with self.db.write() as tx:
            agent, held = agents.touch_agent(tx, agent_id, now)
            if held >= agent.concurrency:
                return None
            taken = self._take(tx, frozenset(agent.labels), now)
            if taken is None:
                return None
            lease_until = now + self.lease_s
            attempt_id = attempts.insert_attempt(
                tx, taken, agent_id=agent_id, now=now, lease_until=lease_until
            )
            queued_s = max(0.0, now - taken.queued_at)
            upstream = self._upstream(tx, taken)
            names = secret_names(taken)
            project = queue.run_project(tx, taken.run_id) if names else ""
            data = {"agent": agent.name, "attempt": taken.attempts, "queued_s": queued_s}
            subject = f"run/{taken.run_id}/job/{taken.name}"
            event_log.append(tx, [NewEvent("job.running", subject, agent.name, now, data)])
        claim = claim_of(
            taken,
            attempt_id=attempt_id,
            upstream=upstream,
            lease_until=lease_until,
            queued_s=queued_s,
        )
        return self._with_secrets(claim, agent_id, project, names) if names else claim

    def _with_secrets(
        self, claim: Claim, agent_id: int, project: str, names: tuple[str, ...]
    ) -> Claim | None:
        """The claim with its secrets' values; None (the attempt failed) if they cannot be read.

        Read after the claim is committed, so a store that cannot open them
        fails this one job instead of leaving it at the head of the queue.
        """
        try:
            return with_secrets(claim, self.secrets, project, names)
        except ConveyorError as exc:  # the message names the secret and key, never a value
            result = AttemptResult("failed", reason=f"its secrets could not be read: {exc}")
            self.complete(claim.attempt_id, agent_id=agent_id, result=result)
            return None

    def _take(self, tx: Transaction, labels: frozenset[str], now: float) -> Taken | None:
        """Take a locked batch's first fitting row; failing that, try the others one by one."""
        for candidate in queue.locked_batch(tx, now):
            if self._fits(tx, candidate, labels) and (taken := queue.take(tx, candidate.id, now)):
                return taken
        for candidate in queue.scan(tx, now):
            if not candidate.runs_on <= labels or not queue.lock_one(tx, candidate.id):
                continue
            if self._fits(tx, candidate, labels) and (taken := queue.take(tx, candidate.id, now)):
                return taken
        return None

    @staticmethod
    def _fits(tx: Transaction, candidate: Candidate, labels: frozenset[str]) -> bool:
        """Labels satisfied, and no other holder of its concurrency groups is at work."""
        if not candidate.runs_on <= labels:
            return False
        group = candidate.concurrency_group
        if group is not None and (
            not queue.try_group_lock(tx, group) or queue.group_busy(tx, group)
        ):
            return False
        run_group = candidate.run_group
        if run_group is None:
            return True
        if not queue.try_group_lock(tx, f"run:{run_group}"):
            return False
        return not queue.older_run_unfinished(tx, run_group, candidate.run_id)

    @staticmethod
    def _upstream(tx: Transaction, taken: Taken) -> tuple[OutputRecord, ...]:
        job = taken.payload.get("job")
        if not isinstance(job, dict) or not job.get("needs"):
            return ()  # spares reading the whole run for the many jobs that need nothing
        jobs = queue.run_jobs(tx, taken.run_id)
        wanted = set(upstream_names(jobs, taken.name))
        ids = [job.id for job in jobs if job.name in wanted]
        found = queue.outputs_of(tx, ids)
        return tuple(output for job_id in ids for output in found.get(job_id, ()))

    def heartbeat(self, attempt_id: int, *, agent_id: int) -> Beat:
        """Extend a lease: `ok`, `cancel` (stop the job), or `lost` (no longer held; stop)."""
        now = self.clock.now()
        with self.db.write() as tx:
            cancel = attempts.extend_lease(tx, attempt_id, agent_id, now, now + self.lease_s)
            if cancel is None:
                return "lost"
            agents.touch_agent(tx, agent_id, now)
        return "cancel" if cancel else "ok"

    # --- ends of attempts --------------------------------------------------------

    def complete(self, attempt_id: int, *, agent_id: int, result: AttemptResult) -> JobState | None:
        """Record an attempt's outcome; the status it stands at, or None (and recorded) when
        its lease was lost.

        The status may not be the result's: a success whose outputs take a file
        another job of the Run produced is a failure (the runner must then not
        share it through the cache).
        """
        now = self.clock.now()
        with self.db.write() as tx:
            attempt = attempts.lock_attempt(tx, attempt_id)
            if attempt.status != "running" or attempt.agent_id != agent_id:
                if _sent_again(attempt, agent_id, result):  # its answer was lost on the way
                    return _standing(self._job_of(tx, attempt)[0], attempt)
                event_log.append(tx, [self._refused(tx, attempt, result, now)])
                return None
            job, keep_going = self._job_of(tx, attempt)
            attempts.end_attempt(
                tx,
                attempt.id,
                result.status,
                now,
                result.reason,
                exit_code=result.exit_code,
                duration_s=result.duration_s,
                log_digest=result.log_digest,
                tests=result.tests,
            )
            events, status = self._settle(tx, job, result, now, keep_going=keep_going)
            event_log.append(tx, events)
        return status

    def _refused(
        self, tx: Transaction, attempt: AttemptRecord, result: AttemptResult, now: float
    ) -> NewEvent:
        job, _ = self._job_of(tx, attempt)
        return job_event(
            job,
            "result_refused",
            self.actor,
            now,
            attempt=attempt.number,
            attempt_status=attempt.status,
            reported=result.status,
            reason="the attempt no longer holds the job; its result is ignored",
        )

    def _job_of(self, tx: Transaction, attempt: AttemptRecord) -> tuple[QueueJob, bool]:
        """The attempt's JobRun, with its Run locked, and whether the Run keeps going."""
        _, _, keep_going = queue.lock_run(tx, attempt.run_id)
        return queue.job_run(tx, attempt.job_run_id), keep_going

    def _settle(
        self,
        tx: Transaction,
        job: QueueJob,
        result: AttemptResult,
        now: float,
        *,
        keep_going: bool,
    ) -> tuple[list[NewEvent], JobState]:
        """Retry a failed attempt if its policy allows and the Run goes on, else record the
        JobRun's end; the Events, and the status the attempt stands at."""
        note = None
        if result.status in ("failed", "timed_out", "runner_lost"):
            delay = retry_delay(job, attempts.failures(tx, job.id), result.status)
            halt = None if delay is None else self._halt(tx, job.run_id, keep_going=keep_going)
            if delay is not None and halt is None:
                queue.set_status(tx, job.id, "queued", reason=result.reason, queued_at=now + delay)
                retrying = {"attempt": job.attempts, "after": result.status, "delay_s": delay}
                return [self._event(job, "retrying", now, **retrying)], result.status
            if halt is not None:  # as a local job's: this attempt's result stands
                result, note = not_retried(result, halt), run_rules.not_retried_note(halt)
        elif result.outputs and result.status in ("success", "cached"):
            result = self._one_producer(tx, job, result)
        events = [self._end(tx, job, result, now, note=note)]
        return events + self._progress(tx, job.run_id, now, keep_going=keep_going), result.status

    @staticmethod
    def _one_producer(tx: Transaction, job: QueueJob, result: AttemptResult) -> AttemptResult:
        """`result`, failed when one of its outputs is one another job of the Run produced
        that `job` does not need, as a local Run judges it (`Scheduler._one_producer`)."""
        jobs = queue.run_jobs(tx, job.run_id)
        above = set(upstream_names(jobs, job.name))
        others = {
            other.id: other.name
            for other in jobs
            if other.id != job.id
            and other.name not in above
            and other.status in ("success", "cached")
        }
        produced = queue.outputs_of(tx, list(others))
        first: dict[str, str] = {}  # a path -> the first of those jobs to produce it
        for other_id in sorted(produced):
            for made in produced[other_id]:
                first.setdefault(made.path, others[other_id])
        for output in result.outputs:
            if output.path in first:
                reason = run_rules.shared_output(output.path, first[output.path])
                return replace(result, status="failed", reason=reason, outputs=())
        return result

    def _end(
        self,
        tx: Transaction,
        job: QueueJob,
        result: AttemptResult,
        now: float,
        *,
        note: str | None = None,
    ) -> NewEvent:
        """Record a JobRun's end with `result`, its log ending with `note` if given; the Event
        saying so."""
        if note is not None:
            result = self._noted(result, note)
        apply_job_update(
            tx,
            JobUpdate(
                job_id=job.id,
                status=result.status,
                cached=result.status == "cached",
                exit_code=result.exit_code,
                reason=result.reason,
                finished_at=now,
                duration_s=result.duration_s,
                log_digest=result.log_digest,
                tests=result.tests,
                outputs=result.outputs,
            ),
        )
        return final_event(job, result, self.actor, now)

    def _noted(self, result: AttemptResult, note: str) -> AttemptResult:
        """`result` with its log ending in `note`, stored as a new blob (the attempt's row
        keeps the log its runner stored).

        Unchanged when there is no log to end: its runner was lost before storing one
        (a log of the note alone would hide the lines the runner streamed, or say the
        job printed nothing; the JobRun's reason says it was not retried), the log was
        pruned, or it is not a log Conveyor wrote.
        """
        digest = result.log_digest
        if self.cas is None or digest is None or not self.cas.has(digest):
            return result
        noted = logs.with_note(self.cas.read_bytes(digest), note)
        if noted is None:
            return result
        return replace(result, log_digest=self.cas.put_bytes(noted).digest)

    def hand_back(self, attempt_id: int, *, agent_id: int) -> bool:
        """A stopping runner gives a JobRun back: it is queued again at once, unless the Run
        was canceled or halted."""
        now = self.clock.now()
        with self.db.write() as tx:
            attempt = attempts.lock_attempt(tx, attempt_id)
            if attempt.status != "running" or attempt.agent_id != agent_id:
                return False
            job, keep_going = self._job_of(tx, attempt)
            attempts.end_attempt(tx, attempt.id, "handed_back", now, "the runner stopped")
            if job.cancel_requested:
                result = AttemptResult("canceled", reason="the run was canceled")
                events, _ = self._settle(tx, job, result, now, keep_going=keep_going)
            else:
                events = [self._event(job, "handed_back", now, attempt=attempt.number)]
                events += self._handed_back(tx, job, now, keep_going=keep_going)
            event_log.append(tx, events)
        return True

    def _handed_back(
        self, tx: Transaction, job: QueueJob, now: float, *, keep_going: bool
    ) -> list[NewEvent]:
        """Queue a handed-back JobRun again; once the Run halted, end it as `halted` says."""
        halt = self._halt(tx, job.run_id, keep_going=keep_going)
        if halt is None:
            queue.set_status(tx, job.id, "queued", queued_at=now)
            return []
        last = attempts.last_attempts(tx, [job.id]).get(job.id)
        events = [self._apply(tx, halted(job, last, halt), now)]
        return events + self._progress(tx, job.run_id, now, keep_going=keep_going)

    def sweep_expired(self, *, limit: int = 100) -> int:
        """Give up attempts whose lease ran out; how many were found."""
        now = self.clock.now()
        with self.db.write() as tx:
            lost = attempts.expired(tx, now, limit)
            events: list[NewEvent] = []
            for attempt in lost:
                job, keep_going = self._job_of(tx, attempt)
                reason = "runner lost: its lease ran out without a heartbeat"
                attempts.end_attempt(tx, attempt.id, "runner_lost", now, reason)
                events.append(
                    self._event(job, "runner_lost", now, attempt=attempt.number, reason=reason)
                )
                status: JobState = "canceled" if job.cancel_requested else "runner_lost"
                settled, _ = self._settle(
                    tx, job, AttemptResult(status, reason=reason), now, keep_going=keep_going
                )
                if settled and settled[0].kind == "job.runner_lost":
                    events.pop()  # the JobRun's end says it, with every detail
                events += settled
            event_log.append(tx, events)
        return len(lost)


def _sent_again(attempt: AttemptRecord, agent_id: int, result: AttemptResult) -> bool:
    """Whether `result` is the one its runner already reported for the attempt (a client
    sends it again when the answer did not reach it): recorded once, answered alike."""
    return (
        attempt.agent_id == agent_id
        and attempt.status == result.status
        and attempt.reason == result.reason
    )


def _standing(job: QueueJob, attempt: AttemptRecord) -> JobState:
    """The status an ended attempt stands at: its job's, while the job ended with it (a
    success the Run failed is `failed`), else the attempt's own (a failure to be retried)."""
    if job.attempts == attempt.number and job.status in TERMINAL_JOB_STATES:
        return job.status
    return cast(JobState, attempt.status)


class LeaseSweeper:
    """The loop service that returns expired leases to the queue; `run_once` is one pass."""

    def __init__(self, *, dispatch: DispatchService, batch: int = 100) -> None:
        self._dispatch = dispatch
        self._batch = batch

    def run_once(self) -> int:
        """Sweep until no expired lease is left; how many were given up."""
        total = 0
        while (found := self._dispatch.sweep_expired(limit=self._batch)) > 0:
            total += found
        return total

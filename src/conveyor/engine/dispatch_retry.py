"""Retrying a finished remote Run's failed jobs: a new Run of the same source and plan.

The history model keeps one execution per JobRun, so a retry is a new Run.
Its jobs that succeeded (or were cached) in the old Run are carried over as
`cached` with their outputs and logs; jobs the plan skipped by their `if:`
stay skipped; the rest are queued. The new Run's `run.started` names the old
one (`retry_of`) and a `run.retried` Event on the old Run names the new one,
all in one transaction.
"""

from __future__ import annotations

from typing import Protocol

from conveyor.audit.chain import NewEvent
from conveyor.core.records import RunId
from conveyor.engine.dispatch_rules import (
    carried_event,
    carried_update,
    job_event,
    retry_events,
    retry_plan,
)
from conveyor.store import events as event_log
from conveyor.store import queue
from conveyor.store.db import Database, Transaction
from conveyor.store.runs import apply_job_update, get_run


class Progress(Protocol):
    """Queues or skips what can move on in a Run, and finishes it when nothing is left."""

    def __call__(
        self, tx: Transaction, run_id: RunId, now: float, *, keep_going: bool
    ) -> list[NewEvent]: ...


def retry_run(
    db: Database,
    run_id: RunId,
    *,
    actor: str,
    system: str,
    now: float,
    progress: Progress,
) -> RunId:
    """The new Run retrying `run_id`, started by `actor`; changes recorded as `system`.

    Conflict when the Run is still running or nothing in it failed; UsageError
    when it ran on one machine rather than on runners.
    """
    old = get_run(db, run_id=run_id)  # a finished Run's jobs no longer change
    with db.write() as tx:
        status, _, keep_going = queue.lock_run(tx, run_id)
        plan = retry_plan(old, status, queue.planned_skips(tx, run_id))
        new = queue.copy_run(tx, run_id, actor=actor, now=now)
        jobs = {job.name: job for job in queue.run_jobs(tx, new)}
        events = retry_events(old, new, plan, actor, now)
        for record in plan.carried:
            apply_job_update(tx, carried_update(jobs[record.name].id, record, run_id, now))
            events.append(carried_event(jobs[record.name], record, run_id, system, now))
        for name, reason in plan.skipped.items():
            queue.set_status(tx, jobs[name].id, "skipped", reason=reason, finished_at=now)
            events.append(
                job_event(jobs[name], "skipped", system, now, status="skipped", reason=reason)
            )
        events += progress(tx, new, now, keep_going=keep_going)
        event_log.append(tx, events)
    return new

"""Reading what happened: runs, their jobs, logs and why jobs ran."""

from __future__ import annotations

import os
from collections.abc import Mapping

from conveyor.artifacts.cas import ContentStore
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import NotFound, UsageError
from conveyor.core.masking import Masker
from conveyor.core.records import AttemptOutcome, JobRecord, RunId, RunRecord
from conveyor.core.values import frozen
from conveyor.engine import fingerprint as fp_module
from conveyor.engine.keys import load_listing
from conveyor.engine.locks import is_abandoned
from conveyor.engine.logs import attempt_part, decompress
from conveyor.engine.workspace import Workspace
from conveyor.executors.base import Executor
from conveyor.store import runs as run_store
from conveyor.store.db import Database


class History:
    """The Runs of one workspace's project, as stored; notices Runs whose process died."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        db: Database,
        cas: ContentStore,
        executor: Executor,
        clock: Clock | None = None,
    ) -> None:
        self.workspace = workspace
        self.executor = executor
        self.db = db
        self.cas = cas
        self.clock = clock or SystemClock()
        self.host = os.uname().nodename

    def reconcile_interrupted(self) -> None:
        """Mark Runs whose process died (on this host) as `interrupted`."""
        for run_id, pid in run_store.running_runs(self.db, host=self.host):
            if run_id is not None and is_abandoned(self.workspace.locks_dir, run_id, pid):
                self._stop_leftovers(run_id)
                now = self.clock.now()
                run_store.mark_interrupted(
                    self.db,
                    run_id=run_id,
                    now=now,
                    reason="the conveyor process running it stopped without finishing",
                    event=NewEvent("run.interrupted", f"run/{run_id}", "conveyor", now, {}),
                )

    def _stop_leftovers(self, run_id: RunId) -> None:
        """Kill what the dead Run's jobs left running (only groups that carry its marks)."""
        markers = (f"CONVEYOR_RUN_ID={run_id}", f"CONVEYOR_WORKSPACE={self.workspace.root}")
        for pgid in run_store.running_job_pids(self.db, run_id=run_id):
            self.executor.stop_orphans(pgid, markers)

    def resolve(self, ref: str | int | None) -> RunId:
        """A Run id from what a user typed: a number, `latest`, or nothing."""
        if ref is None or str(ref).lower() in ("latest", "last", "-"):
            return run_store.latest_run_id(self.db, project=self.workspace.project)
        text = str(ref).removeprefix("#")
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            import difflib  # only for this message: not among what `conveyor run` loads

            close = difflib.get_close_matches(text.lower(), ["latest"], n=1, cutoff=0.6)
            if close:
                raise NotFound(f"'{ref}' is not a run id; did you mean 'latest'?")
            raise NotFound(
                f"'{ref}' is not a run id; use a number from `conveyor runs` or 'latest'"
            )
        return RunId(int(text))

    def get_run(self, ref: str | int | None) -> RunRecord:
        self.reconcile_interrupted()
        return run_store.get_run(self.db, run_id=self.resolve(ref))

    def list_runs(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        branch: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]:
        self.reconcile_interrupted()
        return run_store.list_runs(
            self.db,
            project=self.workspace.project,
            status=status,
            branch=branch,
            limit=limit,
            before=before,
            with_jobs=True,
        )

    def job_log(
        self, ref: str | int | None, job: str, attempt: int | None = None
    ) -> tuple[str, bool]:
        """The job's log text, and whether it is still being written.

        `attempt`: that attempt's own log. Each attempt a runner held keeps the
        log it sent, and each attempt of a job retried on this machine its part
        of the job's log; the attempt running is read as the job's live log, as
        is the only attempt of a job never retried.
        """
        run = self.get_run(ref)
        record = find_job(run, job)
        found = self._read_log(run, record, attempt)
        if found is None:
            # The job may have ended since its record was read: its live log goes only
            # once the JobRun naming the stored one is recorded, so a new read finds it.
            run = self.get_run(run.id)
            record = find_job(run, record.name)
            found = self._read_log(run, record, attempt)
        if found is None:
            raise NotFound(f"'{record.name}' in run {run.id} has no log ({record.status})")
        return found

    def _read_log(
        self, run: RunRecord, record: JobRecord, attempt: int | None
    ) -> tuple[str, bool] | None:
        """`job_log` from one reading of the record; None when the live log is gone."""
        held = None if attempt is None else kept_attempt(run, record, attempt)
        if held is not None:
            which = f"attempt {attempt} of '{record.name}' in run {run.id}"
            if held.log_digest:
                return self._stored_log(held.log_digest, which), False
            if held.status != "running":
                status = held.status.replace("_", " ")
                raise NotFound(f"{which} left no log ({status})")
        which = f"'{record.name}' in run {run.id}"
        if record.log_digest:
            text, live = self._stored_log(record.log_digest, which), False
        else:
            path = self.workspace.logs_dir / f"run-{run.id}" / f"{record.position:04d}.log"
            try:
                # As written: a lone carriage return stays one, as in the stored log.
                with open(path, encoding="utf-8", errors="replace", newline="") as written:
                    text = written.read()
            except FileNotFoundError:
                return None
            # A job's start is recorded a moment after its log begins.
            live = record.status in ("running", "pending")
        if attempt is not None and held is None:
            # A JobRun counts its attempts as they start (one recorded before that: 0
            # until its end); no later one follows the last of a job that is over,
            # whatever lines its output holds.
            last = not live and 0 < record.attempts <= attempt
            part = attempt_part(text, attempt, last=last)
            if part is None and not live:
                raise NotFound(f"attempt {attempt} of {which} never began ({record.status})")
            text = part or ""
        return text, live

    def _stored_log(self, digest: str, which: str) -> str:
        if not self.cas.has(digest):
            # Pruned, or deleted when a read found it damaged (that read said so).
            raise NotFound(f"the log of {which} is no longer stored (pruned, or found corrupt)")
        return decompress(self.cas.read_bytes(digest))

    def explain(
        self, ref: str | int | None, job: str, environ: Mapping[str, str] | None = None
    ) -> Explanation:
        """Why a job of a Run ran instead of restoring from the cache.

        The values `environ` holds for the job's secrets are masked (a file's
        name may hold one).
        """
        run = self.get_run(ref)
        record = find_job(run, job)
        if record.cached:
            return Explanation(run.id, record.name, "cached", ("restored from the cache",))
        if record.fingerprint is None:
            return Explanation(
                run.id,
                record.name,
                record.status,
                (f"it did not start ({record.reason or record.status})",),
            )
        found = run_store.previous_fingerprint(
            self.db, project=self.workspace.project, job=record.name, before_run=run.id
        )
        if found is None:
            return Explanation(
                run.id, record.name, record.status, ("no earlier cached execution of this job",)
            )
        changes = fp_module.diff(found[1], record.fingerprint, lambda d: load_listing(self.cas, d))
        secrets = [key[len("secret:") :] for key in record.fingerprint if key.startswith("secret:")]
        masker = Masker(v for name in secrets if (v := (environ or {}).get(name)))
        texts = tuple(masker.mask(c.text) for c in changes) or (
            "nothing changed; the cache was bypassed (--no-cache or cache: false) "
            "or the entry was pruned",
        )
        return Explanation(run.id, record.name, record.status, texts, compared_to=found[0])


@frozen
class Explanation:
    """Why a job ran: the changes since its last cached execution."""

    run_id: RunId
    job: str
    status: str
    reasons: tuple[str, ...]
    compared_to: RunId | None = None


def kept_attempt(run: RunRecord, job: JobRecord, number: int) -> AttemptOutcome | None:
    """Attempt `number` of a JobRun as kept; None when the job's own log holds that attempt's.

    That is so for the attempt running on this machine (no attempt is kept
    before it ends), for the one a killed `conveyor run` left, and for the
    only attempt of a job never retried.
    """
    kept = job.attempt_results
    for held in kept:
        if held.number == number:
            return held
    if number == 1 and not kept and job.status == "pending":
        return None  # its start is recorded a moment after its log begins
    # A runner's attempt is kept from its claim; one on this machine once it ends, and
    # only once the job is retried. The one not kept (running, interrupted, or the only
    # one) is read from the job's own log. A JobRun counts an attempt as it starts (one
    # recorded before that counted them at its end: 0 until then), and a job still
    # running may be waiting out the back-off before its next.
    counted = (0, len(kept) + 1) + ((len(kept),) if job.status == "running" else ())
    unkept = (
        not job.cached
        and job.started_at is not None
        and all(a.status != "running" for a in kept)
        and job.attempts in counted
    )
    if unkept and number == len(kept) + 1:
        return None
    if not kept and job.attempts > 1:
        raise UsageError(
            f"'{job.name}' in run {run.id} was recorded before each attempt's log was kept: "
            "its attempts share one log, each marked '--- attempt N of M ---'; leave out --attempt"
        )
    made = [a.number for a in kept] + ([len(kept) + 1] if unkept else [])
    if not made:
        raise NotFound(f"'{job.name}' in run {run.id} made no attempt ({job.status})")
    numbers = ", ".join(str(n) for n in made)
    raise NotFound(f"'{job.name}' in run {run.id} has no attempt {number}; its attempts: {numbers}")


def find_job(run: RunRecord, name: str) -> JobRecord:
    for job in run.jobs:
        if job.name == name:
            return job
    matches = [job for job in run.jobs if job.base_name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(f"'{job.name}'" for job in matches)
        raise NotFound(f"'{name}' is a matrix job in run {run.id}; name one of its jobs: {names}")
    from conveyor.spec.suggest import closest, one_of  # only for this message

    jobs = [job.name for job in run.jobs]
    close = closest(name, jobs)
    hint = f"; did you mean '{close}'?" if close else f"; its jobs are {one_of(jobs)}"
    raise NotFound(f"run {run.id} has no job '{name}'{hint}")

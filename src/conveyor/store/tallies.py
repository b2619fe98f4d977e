"""Counts of Runs and JobRuns by status, read when metrics are scraped."""

from __future__ import annotations

from conveyor.core.values import frozen
from conveyor.store.db import Database


@frozen
class StatusCounts:
    """How many Runs and JobRuns the database holds in each status."""

    runs: dict[str, int]
    jobs: dict[str, int]


def status_counts(db: Database) -> StatusCounts:
    """Runs and JobRuns by status, in one read transaction so both describe one moment."""
    with db.read() as tx:
        runs = tx.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")
        jobs = tx.execute("SELECT status, COUNT(*) FROM job_runs GROUP BY status")
    return StatusCounts(
        runs={str(status): int(count) for status, count in runs},
        jobs={str(status): int(count) for status, count in jobs},
    )

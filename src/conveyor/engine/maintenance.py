"""Keeping the local state in bounds: pruning and clearing the cache."""

from __future__ import annotations

import os

from conveyor.artifacts.cache import DEFAULT_GRACE_S, JobCache
from conveyor.artifacts.cas import ContentStore
from conveyor.core.digest import is_digest
from conveyor.engine.locks import is_abandoned
from conveyor.engine.service import open_store
from conveyor.engine.workspace import Workspace
from conveyor.store import releases as release_store
from conveyor.store import runs as run_store


def referenced_by_recent_runs(workspace: Workspace, keep_runs: int) -> set[str]:
    """Digests (artifacts, logs, input listings) the newest `keep_runs` Runs refer to."""
    if keep_runs <= 0:
        return set()
    db = open_store(workspace)
    try:
        recent = run_store.list_runs(db, limit=keep_runs, with_jobs=True)
    finally:
        db.close()
    pinned: set[str] = set()
    for run in recent:
        for job in run.jobs:
            pinned.update(output.digest for output in job.outputs)
            if job.log_digest:
                pinned.add(job.log_digest)
            pinned.update(a.log_digest for a in job.attempt_results if a.log_digest)
            for key in ("files", "inputs"):
                value = (job.fingerprint or {}).get(key)
                if value and is_digest(value):
                    pinned.add(value)
    return pinned


def released_digests(workspace: Workspace) -> set[str]:
    """Digests of every artifact any Release holds: a Release stays deployable for good."""
    db = open_store(workspace)
    try:
        return release_store.released_digests(db)
    finally:
        db.close()


def run_in_progress(workspace: Workspace) -> bool:
    """Whether a live `conveyor run` (on this host) may be writing to the cache now."""
    db = open_store(workspace)
    try:
        running = run_store.running_runs(db, host=os.uname().nodename)
    finally:
        db.close()
    return any(not is_abandoned(workspace.locks_dir, run_id, pid) for run_id, pid in running)


def prune_cache(workspace: Workspace, *, max_bytes: int, keep_runs: int) -> dict[str, int]:
    """Shrink the cache under `max_bytes`, sparing what recent Runs and every Release reference.

    New blobs nothing refers to yet are spared for a grace period while a Run
    is in progress (it may be about to write the entry that refers to them);
    with no Run in progress there is nothing to wait for.
    """
    cache = JobCache(workspace.cache_dir, ContentStore(workspace.cas_dir))
    grace = DEFAULT_GRACE_S if run_in_progress(workspace) else 0.0
    pinned = referenced_by_recent_runs(workspace, keep_runs) | released_digests(workspace)
    report = cache.prune(max_bytes, pinned=pinned, grace_s=grace)
    return {
        "entries_removed": report.entries_removed,
        "blobs_removed": report.blobs_removed,
        "temp_files_removed": report.temp_files_removed,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
        "max_bytes": report.max_bytes,
    }


def clear_cache(workspace: Workspace) -> int:
    """Remove every cache entry; blobs go at the next prune."""
    return JobCache(workspace.cache_dir, ContentStore(workspace.cas_dir)).clear()

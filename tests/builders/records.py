"""Runs and JobRuns as the store returns them, built with defaults for what a test leaves out."""

from __future__ import annotations

from conveyor.core.records import JobRecord, RunId, RunRecord


def job_record(name: str = "a", status: str = "success", **fields: object) -> JobRecord:
    """A finished JobRun of run 1 named `name`; `fields` set any other column."""
    values: dict[str, object] = {
        "id": 1,
        "run_id": RunId(1),
        "position": 0,
        "name": name,
        "base_name": name,
        "needs": (),
        "status": status,
        "cached": status == "cached",
        "allow_failure": False,
        "exit_code": None,
        "attempts": 1,
        "reason": None,
        "started_at": 0.0,
        "finished_at": 1.0,
        "duration_s": 1.0,
        "cache_key": None,
        "fingerprint": None,
        "log_digest": None,
        "tests": None,
    }
    values.update(fields)
    return JobRecord(**values)  # type: ignore[arg-type]


def run_record(*jobs: JobRecord, status: str = "success", **fields: object) -> RunRecord:
    """Run 1 of project `shop` with `jobs`; `fields` set any other column."""
    values: dict[str, object] = {
        "id": RunId(1),
        "project": "shop",
        "status": status,
        "pipeline_path": "conveyor.yaml",
        "spec_digest": "sha256:" + "0" * 64,
        "workspace": "/srv/shop",
        "branch": "main",
        "commit_sha": None,
        "event": "push",
        "actor": "ada",
        "targets": (),
        "host": "h",
        "pid": 1,
        "created_at": 0.0,
        "started_at": 0.0,
        "finished_at": 1.0,
        "duration_s": 1.0,
        "error": None,
        "jobs": jobs,
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]

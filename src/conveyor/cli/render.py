"""Turning records into what users read: JSON objects and plain text."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

from conveyor.core import record_json
from conveyor.core.clock import iso
from conveyor.core.digest import short
from conveyor.core.durations import format_duration
from conveyor.core.records import RunRecord

# Moved below the interfaces so the API renders a run exactly as `show --json` does.
run_json = record_json.run_json


def dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def counts(run: RunRecord) -> str:
    tally: Counter[str] = Counter(job.status for job in run.jobs)
    order = (
        "success",
        "cached",
        "failed",
        "timed_out",
        "runner_lost",
        "skipped",
        "canceled",
        "pending",
        "queued",
        "running",
    )
    return ", ".join(f"{tally[s]} {s.replace('_', ' ')}" for s in order if tally[s])


def summary(run: RunRecord, explanations: Mapping[str, Sequence[str]] | None = None) -> str:
    """The text printed after a Run: outcome, artifacts, failed tests, why jobs ran."""
    took = format_duration(run.duration_s or 0.0)
    jobs = f"{len(run.jobs)} job" + ("" if len(run.jobs) == 1 else "s")
    lines = [f"run {run.id} {run.status} in {took}: {jobs} ({counts(run)})"]
    outputs = [(job.name, o) for job in run.jobs for o in job.outputs]
    if outputs:
        lines.append("artifacts:")
        lines += [
            f"  {name}  {o.path}  {short(o.digest)}  ({_size(o.size)})" for name, o in outputs
        ]
    failures = [(job.name, f) for job in run.jobs if job.tests for f in job.tests.failures]
    if failures:
        lines.append("failed tests:")
        lines += [f"  {name}  {failure}" for name, failure in failures]
    broken = [job for job in run.jobs if job.status in ("failed", "timed_out") and job.log_digest]
    for job in broken:
        lines.append(f"see the log: conveyor logs {run.id} '{job.name}'")
    if explanations:
        lines.append("why jobs ran:")
        for name, reasons in explanations.items():
            lines += [f"  {name}: {reason}" for reason in reasons]
    return "\n".join(lines)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def runs_table(runs: Sequence[RunRecord]) -> str:
    if not runs:
        return "no runs yet; start one with `conveyor run`"
    rows = [("RUN", "STATUS", "STARTED", "TOOK", "BRANCH", "COMMIT", "JOBS")]
    for run in runs:
        rows.append(
            (
                str(run.id),
                run.status,
                iso(run.created_at) or "",
                format_duration(run.duration_s) if run.duration_s is not None else "-",
                run.branch or "-",
                (run.commit_sha or "-")[:10],
                counts(run),
            )
        )
    return table(rows)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def show(run: RunRecord) -> str:
    from conveyor.cli.progress import SYMBOLS, describe, describe_attempt

    head = [
        f"run {run.id}  {run.status}",
        f"  pipeline  {run.pipeline_path} ({run.project})",
        f"  commit    {run.commit_sha or '-'} on {run.branch or '-'} ({run.event})",
        f"  by        {run.actor}",
        f"  started   {iso(run.created_at)}",
    ]
    if run.duration_s is not None:
        head.append(f"  took      {format_duration(run.duration_s)}")
    if run.error:
        head.append(f"  error     {run.error}")
    head.append("jobs:")
    for job in run.jobs:
        head.append(f"  {SYMBOLS.get(job.status, '·')} {job.name}  {describe(job)}")
        for output in job.outputs:
            head.append(f"      {output.path}  {short(output.digest)}")
        if job.tests and job.tests.failures:
            head += [f"      failed: {f}" for f in job.tests.failures]
        head += [f"      {describe_attempt(a)}" for a in job.attempt_results]
    return "\n".join(head)

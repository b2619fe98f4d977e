"""The one place errors become exit codes and messages.

0 success, 1 the work failed (a job, a gate, an event log that does not verify,
an approval the process refuses), 2 bad input (spec, arguments), 3 infrastructure
fault (store, executor, artifacts).

A Run that failed only because runners were lost (`runner_lost` jobs) is 3:
the jobs did not fail, the infrastructure did; one job that failed on its own
makes it 1.

A refused approval (`PolicyViolation`) is 1, not 2: the request was understood
and is well-formed, and the process said no with a reason, as a blocking gate does.
"""

from __future__ import annotations

import json
import sys

from conveyor.core.errors import (
    ArtifactError,
    Conflict,
    ConveyorError,
    ExecutorError,
    IntegrityError,
    NotFound,
    PolicyViolation,
    SpecError,
    SpecIssue,
    StoreError,
    UsageError,
)
from conveyor.core.records import RunRecord

OK = 0
WORK_FAILED = 1
BAD_INPUT = 2
INFRASTRUCTURE = 3


def exit_code_for(error: ConveyorError) -> int:
    if isinstance(error, IntegrityError | PolicyViolation):
        return WORK_FAILED
    if isinstance(error, SpecError | UsageError | NotFound | Conflict):
        return BAD_INPUT
    if isinstance(error, StoreError | ExecutorError | ArtifactError):
        return INFRASTRUCTURE
    return INFRASTRUCTURE


def exit_code_for_run(run: RunRecord) -> int:
    """0 for a Run that succeeded; 3 when lost runners alone failed it; else 1."""
    if run.status == "success":
        return OK
    statuses = {job.status for job in run.jobs if not job.allow_failure}
    lost_only = "runner_lost" in statuses and not statuses & {"failed", "timed_out"}
    if run.status == "failed" and lost_only:
        return INFRASTRUCTURE
    return WORK_FAILED


def issue_json(issue: SpecIssue) -> dict[str, object]:
    """A located problem as `--json` shows it."""
    where = issue.location
    return {
        "file": where.file,
        "line": where.line,
        "column": where.column,
        "message": issue.message,
        "hint": issue.hint,
    }


def report(error: ConveyorError, *, as_json: bool = False) -> int:
    """Print `error` for a person on stderr (and, `as_json`, for a program on stdout).

    Returns the exit code it means. The JSON is one object:
    `{"error": {"message", "exit_code"}}`, with `"errors"` (each located
    problem) for a pipeline file that is not valid.
    """
    code = exit_code_for(error)
    if as_json:
        doc: dict[str, object] = {"message": str(error), "exit_code": code}
        if isinstance(error, SpecError):
            doc["errors"] = [issue_json(issue) for issue in error.issues]
        try:
            sys.stdout.write(json.dumps({"error": doc}, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except OSError:
            pass  # the text on stderr still says it
    if isinstance(error, SpecError):
        count = len(error.issues)
        for issue in error.issues:
            sys.stderr.write(f"error: {issue.render()}\n")
        noun = "error" if count == 1 else "errors"
        sys.stderr.write(f"{count} {noun} found\n")
    else:
        sys.stderr.write(f"error: {error}\n")
    return code

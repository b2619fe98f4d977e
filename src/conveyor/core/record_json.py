"""Runs and their jobs as JSON: one form for `conveyor show --json` and the API, and back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from conveyor.core.clock import iso
from conveyor.core.records import (
    JOB_STATES,
    RUN_STATUSES,
    AttemptOutcome,
    JobRecord,
    OutputRecord,
    RunId,
    RunRecord,
    TestCounts,
)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def job_json(job: JobRecord, explanation: Sequence[str] | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "name": job.name,
        "status": job.status,
        "cached": job.cached,
        "duration_s": _round(job.duration_s),
        "exit_code": job.exit_code,
        "outputs": [{"path": o.path, "digest": o.digest, "size": o.size} for o in job.outputs],
        "tests": tests_to_json(job.tests),
        "attempts": job.attempts,
        "allow_failure": job.allow_failure,
        "reason": job.reason,
        "needs": list(job.needs),
        "cache_key": job.cache_key,
        "attempt_results": [attempt_json(a) for a in job.attempt_results],
    }
    if explanation is not None:
        out["explain"] = list(explanation)
    return out


def attempt_json(attempt: AttemptOutcome) -> dict[str, object]:
    """One attempt of a JobRun (its log is read with `logs --attempt N`)."""
    return {
        "number": attempt.number,
        "status": attempt.status,
        "runner": attempt.runner,
        "started_at": iso(attempt.started_at),
        "finished_at": iso(attempt.finished_at),
        "duration_s": _round(attempt.duration_s),
        "exit_code": attempt.exit_code,
        "reason": attempt.reason,
        "tests": tests_to_json(attempt.tests),
    }


def tests_to_json(tests: TestCounts | None) -> dict[str, object] | None:
    """Test counts as every JSON document of Conveyor writes them (None: no report)."""
    if tests is None:
        return None
    return {
        "passed": tests.passed,
        "failed": tests.failed,
        "skipped": tests.skipped,
        "failures": list(tests.failures),
    }


def run_json(
    run: RunRecord, explanations: Mapping[str, Sequence[str]] | None = None
) -> dict[str, object]:
    explanations = explanations or {}
    return {
        "id": run.id,
        "status": run.status,
        "duration_s": _round(run.duration_s),
        "project": run.project,
        "pipeline": run.pipeline_path,
        "branch": run.branch,
        "commit": run.commit_sha,
        "event": run.event,
        "actor": run.actor,
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
        "jobs": [job_json(j, explanations.get(j.name)) for j in run.jobs],
    }


# --- reading the same JSON back (the remote control plane rebuilds records from the API) ---

_T = TypeVar("_T")


class RecordFormatError(ValueError):
    """A JSON document is not a run (or job) in the form `run_json` writes."""


def run_from_json(doc: Mapping[str, object]) -> RunRecord:
    """A RunRecord from `run_json`'s form; RecordFormatError names the first misfit.

    Fields the JSON does not carry (host, pid, the workspace, fingerprints, log
    digests) come back empty, so `run_json(run_from_json(doc)) == doc`.
    """
    run_id = RunId(_int(doc, "id"))
    created = _required_time(doc, "created_at")
    return RunRecord(
        id=run_id,
        project=_str(doc, "project"),
        status=_choice(doc, "status", RUN_STATUSES),
        pipeline_path=_str(doc, "pipeline"),
        spec_digest="",
        workspace="",
        branch=_opt(doc, "branch", str),
        commit_sha=_opt(doc, "commit", str),
        event=_str(doc, "event"),
        actor=_str(doc, "actor"),
        targets=(),
        host="",
        pid=0,
        created_at=created,
        started_at=created,
        finished_at=_time(doc, "finished_at"),
        duration_s=_number(doc, "duration_s"),
        error=_opt(doc, "error", str),
        jobs=tuple(
            job_from_json(_object(item, f"jobs[{i}]"), run_id=run_id, position=i)
            for i, item in enumerate(_list(doc, "jobs"))
        ),
    )


def job_from_json(doc: Mapping[str, object], *, run_id: RunId, position: int) -> JobRecord:
    """A JobRecord from `job_json`'s form (without its `explain`)."""
    name = _str(doc, "name")
    try:
        return JobRecord(
            id=0,
            run_id=run_id,
            position=position,
            name=name,
            base_name=name,
            needs=tuple(_str_list(doc, "needs")),
            status=_choice(doc, "status", JOB_STATES),
            cached=_bool(doc, "cached"),
            allow_failure=_bool(doc, "allow_failure"),
            exit_code=_opt(doc, "exit_code", int),
            attempts=_int(doc, "attempts"),
            reason=_opt(doc, "reason", str),
            started_at=None,
            finished_at=None,
            duration_s=_number(doc, "duration_s"),
            cache_key=_opt(doc, "cache_key", str),
            fingerprint=None,
            log_digest=None,
            tests=_tests(doc.get("tests")),
            outputs=tuple(
                _output(_object(item, f"outputs[{i}]"))
                for i, item in enumerate(_list(doc, "outputs"))
            ),
            # A server from before per-attempt results sends none.
            attempt_results=tuple(
                _attempt(_object(item, f"attempt_results[{i}]"), f"attempt_results[{i}]")
                for i, item in enumerate(_list(doc, "attempt_results"))
            )
            if "attempt_results" in doc
            else (),
        )
    except RecordFormatError as err:
        raise RecordFormatError(f"job '{name}': {err}") from None


def _output(doc: Mapping[str, object]) -> OutputRecord:
    return OutputRecord(path=_str(doc, "path"), digest=_str(doc, "digest"), size=_int(doc, "size"))


def _attempt(doc: Mapping[str, object], where: str) -> AttemptOutcome:
    try:
        return AttemptOutcome(
            number=_int(doc, "number"),
            status=_str(doc, "status"),
            runner=_opt(doc, "runner", str),
            started_at=_required_time(doc, "started_at"),
            finished_at=_time(doc, "finished_at"),
            duration_s=_number(doc, "duration_s"),
            exit_code=_opt(doc, "exit_code", int),
            reason=_opt(doc, "reason", str),
            tests=_tests(doc.get("tests")),
        )
    except RecordFormatError as err:
        raise RecordFormatError(f"{where}.{err}") from None


def _tests(value: object) -> TestCounts | None:
    if value is None:
        return None
    doc = _object(value, "tests")
    return TestCounts(
        passed=_int(doc, "passed"),
        failed=_int(doc, "failed"),
        skipped=_int(doc, "skipped"),
        failures=tuple(_str_list(doc, "failures")),
    )


def _object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise RecordFormatError(f"{where}: expected an object, found {type(value).__name__}")
    return value


def _list(doc: Mapping[str, object], key: str) -> list[object]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise RecordFormatError(f"{key}: expected a list, found {type(value).__name__}")
    return value


def _str_list(doc: Mapping[str, object], key: str) -> list[str]:
    items = _list(doc, key)
    if not all(isinstance(item, str) for item in items):
        raise RecordFormatError(f"{key}: expected a list of strings")
    return [str(item) for item in items]


def _opt(doc: Mapping[str, object], key: str, kind: type[_T]) -> _T | None:
    value = doc.get(key)
    # bool is an int to Python, never to JSON.
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise RecordFormatError(
        f"{key}: expected {kind.__name__} or null, found {type(value).__name__}"
    )


def _str(doc: Mapping[str, object], key: str) -> str:
    value = _opt(doc, key, str)
    if value is None:
        raise RecordFormatError(f"{key}: expected a string, found null")
    return value


def _int(doc: Mapping[str, object], key: str) -> int:
    value = _opt(doc, key, int)
    if value is None:
        raise RecordFormatError(f"{key}: expected an integer, found null")
    return value


def _bool(doc: Mapping[str, object], key: str) -> bool:
    value = doc.get(key)
    if not isinstance(value, bool):
        raise RecordFormatError(f"{key}: expected true or false, found {type(value).__name__}")
    return value


def _number(doc: Mapping[str, object], key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise RecordFormatError(f"{key}: expected a number or null, found {type(value).__name__}")


def _time(doc: Mapping[str, object], key: str) -> float | None:
    text = _opt(doc, key, str)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise RecordFormatError(f"{key}: '{text[:40]}' is not an ISO 8601 time") from None


def _required_time(doc: Mapping[str, object], key: str) -> float:
    value = _time(doc, key)
    if value is None:
        raise RecordFormatError(f"{key}: expected a time, found null")
    return value


def _choice(doc: Mapping[str, object], key: str, options: tuple[_T, ...]) -> _T:
    value = doc.get(key)
    for option in options:
        if value == option:
            return option
    raise RecordFormatError(
        f"{key}: '{str(value)[:40]}' is not one of {', '.join(map(str, options))}"
    )

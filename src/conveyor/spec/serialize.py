"""A validated Pipeline to JSON and back, so an unchanged file need not be parsed again.

Parsing and validating a large conveyor.yaml (YAML with positions, pydantic
models) costs far more than a fully cached Run; the engine keeps the result
keyed by the file's digest. Only values produced by the loader go through
here, so reading back trusts the shape it wrote (and a `FORMAT` mismatch, or
any damage, makes the caller parse the file again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from conveyor.core.errors import Location
from conveyor.spec.pipeline import Concurrency, Job, Pipeline, RetryPolicy

if TYPE_CHECKING:
    from conveyor.spec.delivery import Delivery

FORMAT = 6


def location_list(loc: Location | None) -> list[object] | None:
    return None if loc is None else [loc.file, loc.line, loc.column]


def from_location(value: object) -> Location | None:
    if value is None:
        return None
    file, line, column = cast(list[object], value)
    return Location(str(file), int(cast(int, line)), int(cast(int, column)))


def to_dict(pipeline: Pipeline) -> dict[str, object]:
    return {
        "format": FORMAT,
        "path": pipeline.path,
        "digest": pipeline.digest,
        "version": pipeline.version,
        "env": dict(pipeline.env),
        "secrets": list(pipeline.secrets),
        "jobs": [_job_to_dict(job) for job in pipeline.jobs],
        "delivery": None if pipeline.delivery is None else _delivery_doc(pipeline),
        "concurrency": _concurrency_to_list(pipeline.concurrency),
    }


def _concurrency_to_list(value: Concurrency | None) -> list[object] | None:
    return None if value is None else [value.group, value.cancel_in_progress]


def _concurrency_from_list(value: object) -> Concurrency | None:
    if value is None:
        return None
    group, cancel = cast(list[object], value)
    return Concurrency(str(group), bool(cancel))


def job_to_dict(job: Job) -> dict[str, object]:
    """One Job as JSON values (what a remote runner is handed)."""
    return _job_to_dict(job)


def job_from_dict(doc: object) -> Job:
    """The Job `job_to_dict` wrote; ValueError when `doc` is not one."""
    try:
        return _job_from_dict(cast(dict[str, object], doc))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a stored job: {exc}") from exc


def _job_to_dict(job: Job) -> dict[str, object]:
    return {
        "name": job.name,
        "run": job.run,
        "location": location_list(job.location),
        "base_name": job.base_name,
        "needs": list(job.needs),
        "env": dict(job.env),
        "workdir": job.workdir,
        "inputs": None if job.inputs is None else list(job.inputs),
        "outputs": list(job.outputs),
        "reports_junit": list(job.reports_junit),
        "timeout_s": job.timeout_s,
        "retry": [job.retry.max, job.retry.backoff_s],
        "allow_failure": job.allow_failure,
        "cache": job.cache,
        "condition": job.condition,
        "condition_location": location_list(job.condition_location),
        "matrix": dict(job.matrix),
        "runs_on": list(job.runs_on),
        "concurrency": _concurrency_to_list(job.concurrency),
    }


def from_dict(doc: object) -> Pipeline:
    """The Pipeline `to_dict` wrote; ValueError when `doc` is not one."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("written by another version")
    try:
        jobs = tuple(
            _job_from_dict(cast(dict[str, object], j)) for j in cast(list[object], doc["jobs"])
        )
        return Pipeline(
            path=str(doc["path"]),
            digest=str(doc["digest"]),
            jobs=jobs,
            env=cast(dict[str, str], doc["env"]),
            secrets=tuple(cast(list[str], doc["secrets"])),
            version=int(cast(int, doc["version"])),
            delivery=_delivery_of(doc.get("delivery")),
            concurrency=_concurrency_from_list(doc["concurrency"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a stored pipeline: {exc}") from exc


def _job_from_dict(doc: dict[str, object]) -> Job:
    retry = cast(list[float], doc["retry"])
    inputs = doc["inputs"]
    location = from_location(doc["location"])
    if location is None:
        raise ValueError("a job without a location")
    return Job(
        name=str(doc["name"]),
        run=str(doc["run"]),
        location=location,
        base_name=str(doc["base_name"]),
        needs=tuple(cast(list[str], doc["needs"])),
        env=cast(dict[str, str], doc["env"]),
        workdir=str(doc["workdir"]),
        inputs=None if inputs is None else tuple(cast(list[str], inputs)),
        outputs=tuple(cast(list[str], doc["outputs"])),
        reports_junit=tuple(cast(list[str], doc["reports_junit"])),
        timeout_s=None if doc["timeout_s"] is None else float(cast(float, doc["timeout_s"])),
        retry=RetryPolicy(int(retry[0]), float(retry[1])),
        allow_failure=bool(doc["allow_failure"]),
        cache=bool(doc["cache"]),
        condition=None if doc["condition"] is None else str(doc["condition"]),
        condition_location=from_location(doc["condition_location"]),
        matrix=cast(dict[str, str], doc["matrix"]),
        runs_on=tuple(cast(list[str], doc["runs_on"])),
        concurrency=_concurrency_from_list(doc["concurrency"]),
    )


# The delivery section's codec is imported only for a pipeline that has one.


def _delivery_doc(pipeline: Pipeline) -> dict[str, object]:
    from conveyor.spec.serialize_delivery import delivery_to_dict

    assert pipeline.delivery is not None
    return delivery_to_dict(pipeline.delivery)


def _delivery_of(value: object) -> Delivery | None:
    if value is None:
        return None
    from conveyor.spec.serialize_delivery import delivery_from_dict

    return delivery_from_dict(value)

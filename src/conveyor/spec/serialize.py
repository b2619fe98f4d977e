"""A validated Pipeline to JSON and back, so an unchanged file need not be parsed again.

Parsing and validating a large conveyor.yaml (YAML with positions, pydantic
models) costs far more than a fully cached Run; the engine keeps the result
keyed by the file's digest. Only values produced by the loader go through
here, so reading back trusts the shape it wrote (and a `FORMAT` mismatch, or
any damage, makes the caller parse the file again).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from conveyor.core.errors import Location
from conveyor.spec.delivery import (
    Approvals,
    Delivery,
    Environment,
    Freeze,
    Health,
    Requirements,
)
from conveyor.spec.pipeline import Concurrency, Job, Pipeline, RetryPolicy
from conveyor.spec.windows import parse_window

FORMAT = 3
# Where the values of a delivery config read back from a Release come from.
RECORDED = Location("recorded release config", 1, 1)


def _location(loc: Location | None) -> list[object] | None:
    return None if loc is None else [loc.file, loc.line, loc.column]


def _from_location(value: object) -> Location | None:
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
        "delivery": None if pipeline.delivery is None else _delivery_to_dict(pipeline.delivery),
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
        "location": _location(job.location),
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
        "condition_location": _location(job.condition_location),
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
            delivery=_delivery_from_dict(doc.get("delivery")),
            concurrency=_concurrency_from_list(doc["concurrency"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a stored pipeline: {exc}") from exc


def _job_from_dict(doc: dict[str, object]) -> Job:
    retry = cast(list[float], doc["retry"])
    inputs = doc["inputs"]
    location = _from_location(doc["location"])
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
        condition_location=_from_location(doc["condition_location"]),
        matrix=cast(dict[str, str], doc["matrix"]),
        runs_on=tuple(cast(list[str], doc["runs_on"])),
        concurrency=_concurrency_from_list(doc["concurrency"]),
    )


def _delivery_to_dict(delivery: Delivery) -> dict[str, object]:
    health = delivery.health
    return {
        "service": delivery.service,
        "artifacts": list(delivery.artifacts),
        "run": delivery.run,
        "location": _location(delivery.location),
        "health": [health.http, health.timeout_s, health.within_s],
        "environments": [_environment_to_dict(env) for env in delivery.environments],
    }


def delivery_config(delivery: Delivery) -> dict[str, object]:
    """The delivery section as JSON values without source positions: what a Release records."""
    doc = _delivery_to_dict(delivery)
    del doc["location"]
    doc["environments"] = [
        {key: value for key, value in _environment_to_dict(env).items() if key != "location"}
        for env in delivery.environments
    ]
    return doc


def delivery_from_config(doc: Mapping[str, object]) -> Delivery:
    """Read back what `delivery_config` wrote (a Release's record); ValueError when damaged.

    The source positions are gone from a recorded config; every value points
    at `RECORDED` instead.
    """
    where = _location(RECORDED)
    try:
        environments = [
            {**cast(dict[str, object], env), "location": where}
            for env in cast(list[object], doc["environments"])
        ]
        delivery = _delivery_from_dict({**doc, "location": where, "environments": environments})
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(f"not a recorded delivery config: {err!r}") from err
    if delivery is None:
        raise ValueError("not a recorded delivery config: it is empty")
    return delivery


def _environment_to_dict(env: Environment) -> dict[str, object]:
    req = env.requires
    return {
        "name": env.name,
        "location": _location(env.location),
        "auto": env.auto,
        "instances": env.instances,
        "strategy": env.strategy,
        "change_record": env.change_record,
        "after": req.after,
        "soak_s": req.soak_s,
        "approvals": None
        if req.approvals is None
        else [req.approvals.count, list(req.approvals.roles)],
        "windows": [window.text for window in req.windows],
        "freezes": [[f.start.isoformat(), f.end.isoformat(), f.reason] for f in req.freezes],
        "policies": list(req.policies),
        "signed": req.signed,
    }


def _delivery_from_dict(value: object) -> Delivery | None:
    if value is None:
        return None
    doc = cast(dict[str, object], value)
    location = _from_location(doc["location"])
    if location is None:
        raise ValueError("a delivery without a location")
    http, timeout_s, within_s = cast(list[object], doc["health"])
    return Delivery(
        service=str(doc["service"]),
        artifacts=tuple(cast(list[str], doc["artifacts"])),
        run=str(doc["run"]),
        environments=tuple(
            _environment_from_dict(cast(dict[str, object], env))
            for env in cast(list[object], doc["environments"])
        ),
        location=location,
        health=Health(str(http), float(cast(float, timeout_s)), float(cast(float, within_s))),
    )


def _environment_from_dict(doc: dict[str, object]) -> Environment:
    location = _from_location(doc["location"])
    if location is None:
        raise ValueError("an environment without a location")
    approvals = cast(list[object] | None, doc["approvals"])
    soak = doc["soak_s"]
    return Environment(
        name=str(doc["name"]),
        location=location,
        auto=bool(doc["auto"]),
        instances=int(cast(int, doc["instances"])),
        strategy=str(doc["strategy"]),
        change_record=bool(doc["change_record"]),
        requires=Requirements(
            after=None if doc["after"] is None else str(doc["after"]),
            soak_s=None if soak is None else float(cast(float, soak)),
            approvals=None
            if approvals is None
            else Approvals(int(cast(int, approvals[0])), tuple(cast(list[str], approvals[1]))),
            windows=tuple(parse_window(text) for text in cast(list[str], doc["windows"])),
            freezes=tuple(
                Freeze(datetime.fromisoformat(a), datetime.fromisoformat(b), reason)
                for a, b, reason in cast(list[tuple[str, str, str]], doc["freezes"])
            ),
            policies=tuple(cast(list[str], doc["policies"])),
            signed=bool(doc["signed"]),
        ),
    )

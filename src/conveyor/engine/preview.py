"""`conveyor run --dry-run`: what a Run would do, and why, without doing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from conveyor.artifacts.cache import CacheEntry, JobCache
from conveyor.core.masking import Masker
from conveyor.core.records import OutputRecord
from conveyor.core.values import frozen, replace
from conveyor.engine import fingerprint as fp_module
from conveyor.engine.keys import KeyMaker
from conveyor.engine.plan import Plan, upstream_outputs
from conveyor.spec.graph import topological_order
from conveyor.spec.pipeline import Job

Action = Literal["run", "cached", "skipped"]


@frozen
class PlannedJob:
    """What would happen to one job, and why."""

    name: str
    action: Action
    reasons: tuple[str, ...]


Previous = Callable[[str], dict[str, str] | None]


def preview(
    plan: Plan,
    *,
    keys: KeyMaker,
    cache: JobCache,
    use_cache: bool,
    previous: Previous,
    masker: Masker | None = None,
) -> list[PlannedJob]:
    """Predict each job's fate in pipeline order; cache lookups only, nothing runs.

    `masker` masks secret values in the reasons (a file's name may hold one).
    """
    jobs = {job.name: job for job in plan.jobs}
    order = topological_order(list(jobs), {name: job.needs for name, job in jobs.items()})
    outputs: dict[str, tuple[OutputRecord, ...]] = {}
    decided: dict[str, PlannedJob] = {}
    for name in order:
        decided[name] = _decide(
            jobs[name],
            plan=plan,
            decided=decided,
            outputs=outputs,
            keys=keys,
            cache=cache,
            use_cache=use_cache,
            previous=previous,
        )
    if masker:
        decided = {
            name: replace(planned, reasons=tuple(map(masker.mask, planned.reasons)))
            for name, planned in decided.items()
        }
    return [decided[job.name] for job in plan.jobs]


def _decide(
    job: Job,
    *,
    plan: Plan,
    decided: dict[str, PlannedJob],
    outputs: dict[str, tuple[OutputRecord, ...]],
    keys: KeyMaker,
    cache: JobCache,
    use_cache: bool,
    previous: Previous,
) -> PlannedJob:
    if job.name in plan.skipped:
        return PlannedJob(job.name, "skipped", (plan.skipped[job.name],))
    skipped_needs = [n for n in job.needs if decided[n].action == "skipped"]
    if skipped_needs:
        return PlannedJob(job.name, "skipped", (f"need '{skipped_needs[0]}' would be skipped",))
    if not job.cache:
        return PlannedJob(job.name, "run", ("the job opts out of the cache (cache: false)",))
    if not use_cache:
        return PlannedJob(job.name, "run", ("--no-cache",))
    running_needs = [n for n in job.needs if decided[n].action == "run"]
    if running_needs:
        return PlannedJob(
            job.name,
            "run",
            (f"need '{running_needs[0]}' will run first; may be cached if its outputs match",),
        )
    fingerprint = keys.fingerprint(
        job, upstream_outputs(plan, job, lambda name: outputs.get(name, ()))
    )
    found = cache.lookup(fp_module.cache_key(fingerprint))
    if isinstance(found, CacheEntry):
        outputs[job.name] = tuple(OutputRecord(o.path, o.digest, o.size) for o in found.outputs)
        return PlannedJob(job.name, "cached", ("nothing it depends on changed",))
    earlier = previous(job.name)
    if earlier is None:
        return PlannedJob(job.name, "run", ("no earlier cached execution of this job",))
    changes = fp_module.diff(earlier, fingerprint, keys.load_listing)
    reasons = tuple(c.text for c in changes) or ("the cache entry is gone (pruned or corrupt)",)
    return PlannedJob(job.name, "run", reasons)

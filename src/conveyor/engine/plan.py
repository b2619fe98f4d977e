"""Which jobs a Run covers and which of them a condition skips (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from conveyor.core.errors import SpecError, SpecIssue, UsageError
from conveyor.core.records import OutputRecord
from conveyor.core.values import frozen
from conveyor.spec.graph import topological_order
from conveyor.spec.paths import named_file, names_state, rooted_glob, shared_in_matrix
from conveyor.spec.pipeline import Job, Pipeline


@frozen
class Plan:
    """The jobs of one Run in pipeline order, and the reason each skipped one is skipped.

    `producers`: for each job, the jobs further up (needed directly or through
    others) that declare `outputs`, in pipeline order; only they can leave a
    file the job may read.
    """

    jobs: tuple[Job, ...]
    skipped: Mapping[str, str]
    dependents: Mapping[str, tuple[str, ...]]
    producers: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self.jobs)


def select(pipeline: Pipeline, targets: Sequence[str]) -> tuple[Job, ...]:
    """`targets` and everything they need, in pipeline order (all jobs when none given)."""
    if not targets:
        return pipeline.jobs
    by_name = {job.name: job for job in pipeline.jobs}
    wanted: set[str] = set()
    for target in targets:
        matched = [j.name for j in pipeline.jobs if target in (j.name, j.base_name)]
        if not matched:
            raise UsageError(_unknown_job(target, pipeline))
        wanted.update(matched)
    stack = list(wanted)
    while stack:
        for need in by_name[stack.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                stack.append(need)
    return tuple(job for job in pipeline.jobs if job.name in wanted)


def _unknown_job(target: str, pipeline: Pipeline) -> str:
    names = sorted({*pipeline.names, *(j.base_name for j in pipeline.jobs)})
    import difflib  # only for this message: not among what `conveyor run` loads

    close = difflib.get_close_matches(target, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"there is no job '{target}' in {pipeline.path}{hint} (jobs: {', '.join(names)})"


ConditionCheck = Callable[[Job], str | None]


def make_plan(pipeline: Pipeline, targets: Sequence[str], condition: ConditionCheck) -> Plan:
    """Select the jobs and apply `condition`, which returns a skip reason or None."""
    jobs = select(pipeline, targets)
    skipped: dict[str, str] = {}
    issues: list[SpecIssue] = []  # every condition that cannot be evaluated, said at once
    for job in jobs:
        try:
            reason = condition(job)
        except SpecError as exc:
            issues.extend(exc.issues)
            continue
        if reason is not None:
            skipped[job.name] = reason
    if issues:
        raise SpecError(list(dict.fromkeys(issues)))  # a matrix job's expansions share one
    dependents: dict[str, list[str]] = {job.name: [] for job in jobs}
    for job in jobs:
        for need in job.needs:
            dependents[need].append(job.name)
    producers = _producers(jobs)
    if clashes := _shared_files(jobs, skipped, producers):
        raise SpecError(clashes)
    return Plan(jobs, skipped, {k: tuple(v) for k, v in dependents.items()}, producers)


def state_outputs(jobs: Sequence[Job], state: str) -> list[SpecIssue]:
    """Outputs and reports that name Conveyor's state directory `state` (a CONVEYOR_HOME
    inside the workspace): no file of it is ever a job's, so the job could never succeed."""
    issues = []
    for job in jobs:
        for pattern in (*job.outputs, *job.reports_junit):
            rooted = rooted_glob(job.workdir, pattern)
            if rooted is not None and names_state(rooted, state):
                issues.append(
                    SpecIssue(
                        job.location,
                        f"job '{job.name}': '{pattern}' names Conveyor's own state ({state}/, "
                        "where CONVEYOR_HOME puts it)",
                        "a job's outputs and reports are files it writes elsewhere in the "
                        "workspace; write them elsewhere, or set CONVEYOR_HOME outside it",
                    )
                )
                break
    return issues


def clashes_of_every_run(pipeline: Pipeline) -> list[SpecIssue]:
    """The shared output files that refuse a Run of the whole pipeline, whatever its facts.

    Jobs with a condition might not run, and count as skipped; a Run of some
    targets may leave one of the two jobs out, so these are warnings to
    `conveyor validate`, not errors.
    """
    jobs = pipeline.jobs
    unsure = {job.name: "it has a condition" for job in jobs if job.condition is not None}
    return _shared_files(jobs, unsure, _producers(jobs))


def _shared_files(
    jobs: tuple[Job, ...], skipped: Mapping[str, str], producers: Mapping[str, tuple[str, ...]]
) -> list[SpecIssue]:
    """Jobs of the Run that declare one file by name as an output, neither needing the other.

    A file has one producer: the Run would fail whichever of the two ended
    second (`run_rules.shared_output`). Named without a glob, the clash is
    certain once both run, so it is said before anything does. Jobs a
    condition skips, and those that need them, will not run and are left out.
    """
    if not any(job.outputs for job in jobs):
        return []
    needs = {job.name: job.needs for job in jobs}
    out = set(skipped)
    for name in topological_order(list(needs), needs):
        if any(need in out for need in needs[name]):
            out.add(name)
    declared: dict[str, list[Job]] = {}  # file -> the jobs that name it, in pipeline order
    issues: dict[tuple[str, str, str], SpecIssue] = {}  # one per file and pair of written jobs
    for job in jobs:
        if job.name in out:
            continue
        for path in dict.fromkeys(_named_files(job)):
            for other in declared.setdefault(path, []):
                if other.name in producers[job.name] or job.name in producers[other.name]:
                    continue  # along `needs` a job may rewrite a file
                key = (path, other.base_name, job.base_name)
                issues.setdefault(key, _shared_file(path, other, job))
                break
            declared[path].append(job)
    return list(issues.values())


def _named_files(job: Job) -> list[str]:
    """The job's outputs written without a glob, from the workspace root."""
    named = (named_file(job.workdir, pattern) for pattern in job.outputs)
    return [path for path in named if path is not None]


def _shared_file(path: str, first: Job, then: Job) -> SpecIssue:
    if first.base_name == then.base_name:  # two expansions of one matrix job
        axis = next((a for a, value in then.matrix.items() if first.matrix.get(a) != value), "")
        message, hint = shared_in_matrix(path, first.name, then.name, then.base_name, axis)
        return SpecIssue(then.location, message, hint)
    return SpecIssue(
        then.location,
        f"jobs '{first.name}' and '{then.name}' both declare output {path}, and neither "
        "needs the other: a file has one producer",
        f"add '{first.base_name}' to the needs of '{then.base_name}', or have each write "
        "its own file",
    )


def _producers(jobs: tuple[Job, ...]) -> dict[str, tuple[str, ...]]:
    """For each job, the jobs it needs directly or through others that declare outputs.

    Only those are collected: a graph of many layers whose jobs produce nothing
    costs nothing here, where the full set of ancestors grows with depth times width.
    """
    needs = {job.name: job.needs for job in jobs}
    produces = {job.name for job in jobs if job.outputs}
    position = {job.name: i for i, job in enumerate(jobs)}
    found: dict[str, set[str]] = {}
    for name in topological_order(list(needs), needs):
        above = found[name] = set()
        for need in needs[name]:
            above |= found[need]
            if need in produces:
                above.add(need)
    return {name: tuple(sorted(found[name], key=position.__getitem__)) for name in needs}


def upstream_outputs(
    plan: Plan, job: Job, outputs: Callable[[str], tuple[OutputRecord, ...]]
) -> dict[str, tuple[OutputRecord, ...]]:
    """The outputs a job may read: of each job it needs, and of any job further up that has some.

    A job can read a file an ancestor produced even when the jobs in between
    produce nothing, so every ancestor's outputs belong in its cache key.
    """
    upstream = {need: outputs(need) for need in job.needs}
    for producer in plan.producers[job.name]:
        if producer not in upstream and (found := outputs(producer)):
            upstream[producer] = found
    return upstream

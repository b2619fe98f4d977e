"""Read `conveyor.yaml` into a validated, frozen Pipeline, or fail with every issue found.

The stages: `source` reads YAML with positions, `model` checks the shape of
each value, and this module checks what spans several jobs (needs, cycles,
conditions, secrets), expands matrices, and builds the Pipeline.

Each Job's `env` is complete: the file's `env`, then the job's, then its
matrix values, later ones winning.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from pydantic import ValidationError

from conveyor.core import digest
from conveyor.core.errors import SpecError, SpecIssue
from conveyor.spec import graph, placeholders, rules
from conveyor.spec.conditions import check_condition, type_problems
from conveyor.spec.delivery import Delivery
from conveyor.spec.delivery_check import DeliveryCheck
from conveyor.spec.delivery_model import DeliveryModel
from conveyor.spec.matrix import Expansion, expand, matrix_issues, parse_expansion_name
from conveyor.spec.model import (
    Checked,
    ConcurrencyModel,
    FileModel,
    JobModel,
    Violation,
    check,
    file_json_schema,
)
from conveyor.spec.paths import (
    STATE_DIR_NAME,
    named_file,
    names_state,
    rooted_glob,
    shared_in_matrix,
)
from conveyor.spec.pipeline import Concurrency, Job, Pipeline, RetryPolicy
from conveyor.spec.reading import read_spec
from conveyor.spec.source import Document, NodePath, read_yaml
from conveyor.spec.suggest import did_you_mean, one_of

DEFAULT_FILE = "conveyor.yaml"


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate the pipeline file at `path`."""
    file = str(path)
    return parse_pipeline(read_spec(file), file)


def parse_pipeline(text: str | bytes, path: str = DEFAULT_FILE) -> Pipeline:
    """Validate the text of a pipeline file; `path` names it in messages."""
    data = text.encode() if isinstance(text, str) else text
    document = read_yaml(data, path)
    return _Assembly(document, check(document.data)).pipeline(digest.of_bytes(data))


def json_schema() -> dict[str, object]:
    """JSON Schema of `conveyor.yaml` for editors and YAML language servers."""
    return file_json_schema()


def _concurrency(
    model: ConcurrencyModel | None, values: Mapping[str, str] | None = None
) -> Concurrency | None:
    if model is None:
        return None
    return Concurrency(placeholders.fill(model.group, values or {}), model.cancel_in_progress)


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


class _Assembly:
    """Checks across jobs and builds the Pipeline, collecting every issue on the way."""

    def __init__(self, document: Document, checked: Checked) -> None:
        self.data = document.data
        self.positions = document.positions
        self.checked = checked
        self.raw_jobs = _mapping(document.data.get("jobs"))
        self.expansions: dict[str, list[Expansion]] = {}
        self.issues = [*document.issues, *map(self._located, checked.violations)]

    def pipeline(self, file_digest: str) -> Pipeline:
        """The Pipeline; SpecError with every issue when there is any."""
        jobs = self.checked.jobs
        for name, job in jobs.items():
            self.expansions[name] = self._expand(name, job)
        needs = {name: self._needs(name, job) for name, job in jobs.items()}
        self._check_cycles(needs)
        for name, job in jobs.items():
            self._check_condition(name, job)
            self._check_paths(name, job)
        self._check_secrets()
        self._check_file_group()
        file = self.checked.file
        delivery = self._delivery(file)
        if self.issues or file is None:
            # An anchor used twice yields the same issue twice, at the same place.
            raise SpecError(list(dict.fromkeys(self.issues)))
        env = self._env(("env",), file.env)
        return Pipeline(
            path=self.positions.file,
            digest=file_digest,
            jobs=tuple(self._jobs(env, needs)),
            env=env,
            secrets=tuple(file.secrets),
            delivery=delivery,
            concurrency=_concurrency(file.concurrency),
        )

    def _delivery(self, file: FileModel | None) -> Delivery | None:
        """The `delivery:` section, checked even when other parts of the file are broken."""
        if file is not None:
            model = file.delivery
        else:
            raw = self.data.get("delivery")
            if raw is None or any(v.path[:1] == ("delivery",) for v in self.checked.violations):
                return None  # its own shape is broken: those issues are reported already
            try:
                model = DeliveryModel.model_validate(raw)
            except ValidationError:
                return None
        if model is None:
            return None
        checker = DeliveryCheck(self.positions)
        delivery = checker.build(model)
        self.issues.extend(checker.issues)
        return delivery

    def _jobs(self, env: Mapping[str, str], needs: Mapping[str, list[str]]) -> Iterator[Job]:
        for name, job in self.checked.jobs.items():
            job_env = {**env, **self._env(("jobs", name, "env"), job.env)}
            retry = RetryPolicy(job.retry.max, job.retry.backoff) if job.retry else RetryPolicy()
            has_condition = job.condition is not None
            for expansion in self.expansions[name]:
                values = expansion.values  # also what `${axis}` in its paths stands for
                yield Job(
                    name=expansion.name,
                    run=job.run,
                    location=self.positions.key(("jobs", name)),
                    base_name=name,
                    needs=tuple(needs[name]),
                    env={**job_env, **values},
                    workdir=_workdir(job, values),
                    inputs=_filled(job.inputs, values) if job.inputs is not None else None,
                    outputs=_filled(job.outputs, values),
                    reports_junit=_filled(job.reports.junit, values) if job.reports else (),
                    timeout_s=job.timeout,
                    retry=retry,
                    allow_failure=job.allow_failure,
                    cache=job.cache,
                    condition=job.condition,
                    condition_location=(
                        self.positions.value(("jobs", name, "if")) if has_condition else None
                    ),
                    matrix=dict(expansion.values),
                    runs_on=tuple(dict.fromkeys(_filled(job.runs_on, values))),
                    concurrency=_concurrency(job.concurrency, values),
                )

    def _expand(self, name: str, job: JobModel) -> list[Expansion]:
        if job.matrix is None:
            # A matrix with problems of its own leaves the expansions unknown.
            return [] if "matrix" in _mapping(self.raw_jobs.get(name)) else [Expansion(name, {})]
        at: NodePath = ("jobs", name, "matrix")
        axes = {
            axis: [self._text(value, (*at, axis, i)) for i, value in enumerate(values)]
            for axis, values in job.matrix.axes.items()
        }
        exclude = [
            {axis: self._text(value, (*at, "exclude", i, axis)) for axis, value in entry.items()}
            for i, entry in enumerate(job.matrix.exclude)
        ]
        issues = matrix_issues(axes, exclude)
        for issue in issues:
            path = (*at, *issue.at)
            where = self.positions.key(path) if issue.on_key else self.positions.value(path)
            self.issues.append(SpecIssue(where, issue.message, issue.hint))
        return [] if issues else expand(name, axes, exclude)

    def _needs(self, name: str, job: JobModel) -> list[str]:
        """The expanded names `name` needs, in the order written."""
        written_once = isinstance(_mapping(self.raw_jobs.get(name)).get("needs"), str)
        resolved: list[str] = []
        for index, need in enumerate(job.needs):
            path = ("jobs", name, "needs") if written_once else ("jobs", name, "needs", index)
            resolved.extend(self._resolve(name, need.strip(), path))
        return list(dict.fromkeys(resolved))

    def _resolve(self, name: str, need: str, path: NodePath) -> list[str]:
        parsed = parse_expansion_name(need)
        base = parsed[0] if parsed else need
        if base == name:
            self._add(path, f"job '{name}' needs itself", "remove it from 'needs'")
            return []
        if need in self.expansions:
            return [expansion.name for expansion in self.expansions[need]]
        # An expansion named whole (a value may hold ',', which the parse splits on).
        whole = need.partition(" (")[0]
        if whole != name and any(e.name == need for e in self.expansions.get(whole, ())):
            return [need]
        if base in self.raw_jobs and base not in self.expansions:
            return []  # that job cannot be read, and its problems are reported already
        if parsed and base in self.expansions:
            return self._pick(name, need, path, parsed)
        choices = [*self.raw_jobs, *(e.name for es in self.expansions.values() for e in es)]
        hint = did_you_mean(need, choices) or f"the jobs are {one_of(self.raw_jobs)}"
        self._add(path, f"job '{name}' needs '{need}', which is not a job", hint)
        return []

    def _pick(
        self, name: str, need: str, path: NodePath, parsed: tuple[str, dict[str, str]]
    ) -> list[str]:
        """The expansions of a matrix job that have the values `need` names."""
        base, wanted = parsed
        expansions = self.expansions[base]
        if not expansions:
            return []  # its matrix has problems of its own, reported already
        picked = [
            expansion.name
            for expansion in expansions
            if all(expansion.values.get(axis) == value for axis, value in wanted.items())
        ]
        if picked:
            return picked
        if expansions and not expansions[0].values:
            self._add(path, f"job '{base}' has no matrix", f"write '{base}'")
        else:
            names = [expansion.name for expansion in expansions]
            message = f"job '{name}' needs '{need}', but no expansion of '{base}' matches"
            self._add(path, message, did_you_mean(need, names) or f"write one of {one_of(names)}")
        return []

    def _check_cycles(self, needs: Mapping[str, Sequence[str]]) -> None:
        base_of = {e.name: base for base, expansions in self.expansions.items() for e in expansions}
        base_needs = {
            name: list(dict.fromkeys(base_of[need] for need in names))
            for name, names in needs.items()
        }
        remaining = list(needs)
        while (cycle := graph.find_cycle(remaining, base_needs)) is not None:
            where = self.positions.key(("jobs", cycle[0]))
            message = "jobs form a cycle: " + " -> ".join(cycle)
            hint = "each job needs the next one; remove one of these needs"
            self.issues.append(SpecIssue(where, message, hint))
            remaining = [name for name in remaining if name not in cycle]

    def _check_condition(self, name: str, job: JobModel) -> None:
        if job.condition is None:
            return
        path = ("jobs", name, "if")
        problems = check_condition(job.condition) or type_problems(job.condition)
        for offset, message, hint in problems:
            self.issues.append(SpecIssue(self.positions.inside(path, offset), message, hint))

    def _check_paths(self, name: str, job: JobModel) -> None:
        """Globs are relative to the job's workdir and must stay inside the workspace.

        A matrix job's paths may name its axes (`${os}`): they are checked as
        each expansion has them, each problem said for the first that has it.
        """
        axes = self._axes(name, job)
        at: NodePath = ("jobs", name)
        lists = self._path_lists(name, job)
        written: list[tuple[NodePath, str]] = [(("workdir",), job.workdir)]
        written += [(path, pattern) for path, patterns in lists.items() for pattern in patterns]
        unreadable = {
            path for path, text in written if self._placeholders_wrong(at, path, text, axes)
        }
        self._check_labels(name, job, axes)
        self._check_group(name, job, axes)
        if ("workdir",) in unreadable:
            return  # no glob of the job can be placed
        named = any(placeholders.OPEN in text for _, text in written)
        expansions = self.expansions[name] if named and axes else [Expansion(name, {})]
        said = len(self.issues)
        self._place_globs(name, job, lists, unreadable, expansions)
        placed = len(self.issues) == said and not unreadable
        if placed and job.condition is None and job.outputs:
            self._check_matrix_outputs(name, job, lists)

    def _place_globs(
        self,
        name: str,
        job: JobModel,
        lists: Mapping[NodePath, list[str]],
        unreadable: set[NodePath],
        expansions: list[Expansion],
    ) -> None:
        """Each glob where each expansion has it: inside the workspace, not Conveyor's state."""
        at: NodePath = ("jobs", name)
        broken: set[tuple[object, ...]] = set()
        for expansion in expansions:
            which = f" (in '{expansion.name}')" if expansion.values else ""
            try:
                workdir = _workdir(job, expansion.values)
            except rules.RuleError as exc:
                if ("workdir",) not in broken:
                    broken.add(("workdir",))
                    self._add((*at, "workdir"), f"{exc.message}{which}", exc.hint)
                continue
            for path, patterns in lists.items():
                for pattern in () if path in unreadable else patterns:
                    key = (*path, pattern)
                    filled = _fill_glob(pattern, expansion.values)
                    problem = (
                        None if key in broken else _path_problem(str(path[0]), workdir, filled)
                    )
                    if problem is not None:
                        broken.add(key)
                        message, hint = problem
                        self._add((*at, *path), f"{message}{which}", hint)

    def _check_matrix_outputs(
        self, name: str, job: JobModel, lists: Mapping[NodePath, list[str]]
    ) -> None:
        """Two expansions of a matrix job that name one output file clash in every Run.

        They run together; only a condition, which sees their values, could
        tell them apart, and a job with one is checked when a Run plans.
        """
        first: dict[str, Expansion] = {}  # a file -> the first expansion to name it
        said: set[str] = set()  # each file once, however many expansions name it
        for expansion in self.expansions[name]:
            workdir = _workdir(job, expansion.values)
            for path, patterns in lists.items():
                for pattern in patterns if path[0] == "outputs" else ():
                    file = named_file(workdir, _fill_glob(pattern, expansion.values))
                    earlier = first.setdefault(file, expansion) if file else expansion
                    if file is None or earlier is expansion or file in said:
                        continue
                    said.add(file)
                    values = expansion.values
                    axis = next(a for a in values if earlier.values.get(a) != values[a])
                    message, hint = shared_in_matrix(file, earlier.name, expansion.name, name, axis)
                    self._add(("jobs", name, *path), message, hint)

    def _axes(self, name: str, job: JobModel) -> list[str] | None:
        """The axes a job's `${...}` may name; None when its matrix is written but broken
        (its own problems are said, and what its placeholders stand for is unknown)."""
        if job.matrix is not None:
            return list(job.matrix.axes)
        return None if "matrix" in _mapping(self.raw_jobs.get(name)) else []

    def _placeholders_wrong(
        self, at: NodePath, path: NodePath, text: str, axes: list[str] | None
    ) -> bool:
        """Say what is wrong with the `${...}` of `text`; whether it cannot be filled."""
        if axes is None:
            return placeholders.OPEN in text
        problems = placeholders.issues(text, str(at[1]), axes)
        for issue in problems:
            where = self.positions.inside((*at, *path), issue.offset)
            self.issues.append(SpecIssue(where, issue.message, issue.hint))
        return bool(problems)

    def _check_labels(self, name: str, job: JobModel, axes: list[str] | None) -> None:
        """`runs_on` labels that name an axis (`${os}`): a label once filled, for each expansion."""
        for path, label in self._items(name, ("runs_on",), job.runs_on):
            self._check_filled(name, path, label, axes, rules.check_label)

    def _check_group(self, name: str, job: JobModel, axes: list[str] | None) -> None:
        """A job's concurrency group that names an axis: a group once filled, for each
        expansion (`deploy-${region}`: one at a time per region)."""
        if job.concurrency is None:
            return
        written = _mapping(self.raw_jobs.get(name)).get("concurrency")
        path: NodePath = ("concurrency",) if isinstance(written, str) else ("concurrency", "group")
        self._check_filled(name, path, job.concurrency.group, axes, rules.check_group)

    def _check_filled(
        self,
        name: str,
        path: NodePath,
        text: str,
        axes: list[str] | None,
        rule: Callable[[str], object],
    ) -> None:
        """A value that names an axis keeps `rule` once filled, for each expansion (the first
        that breaks it is said)."""
        at: NodePath = ("jobs", name)
        if placeholders.OPEN not in text or self._placeholders_wrong(at, path, text, axes):
            return
        for expansion in self.expansions[name]:
            try:
                rule(placeholders.fill(text, expansion.values))
            except rules.RuleError as exc:
                self._add((*at, *path), f"{exc.message} (in '{expansion.name}')", exc.hint)
                return

    def _check_file_group(self) -> None:
        """The file's own concurrency group names no axis: it is one for every run. Read as
        written, so that it is said beside any other problem of the file."""
        written = self.data.get("concurrency")
        path: NodePath = ("concurrency",)
        if isinstance(written, dict):
            written, path = written.get("group"), ("concurrency", "group")
        if not isinstance(written, str):
            return  # not a group: the model said so
        owner = "the file, whose concurrency group is one for every run,"
        for issue in placeholders.issues(written, "", [], owner=owner):
            self.issues.append(
                SpecIssue(self.positions.inside(path, issue.offset), issue.message, issue.hint)
            )

    def _items(
        self, name: str, keys: tuple[str, ...], values: list[str]
    ) -> list[tuple[NodePath, str]]:
        """Each item of a job's list at `keys` with where it is written (`runs_on[0]`, or
        `runs_on` for one item written as a string)."""
        written: object = _mapping(self.raw_jobs.get(name))
        for key in keys:
            written = _mapping(written).get(key)
        if isinstance(written, str):
            return [(keys, value) for value in values]
        return [((*keys, index), value) for index, value in enumerate(values)]

    def _path_lists(self, name: str, job: JobModel) -> dict[NodePath, list[str]]:
        """The job's globs by where each is written (`outputs` or `outputs[0]`)."""
        lists: dict[tuple[str, ...], list[str]] = {
            ("inputs",): job.inputs or [],
            ("outputs",): job.outputs,
            ("reports", "junit"): job.reports.junit if job.reports else [],
        }
        located: dict[NodePath, list[str]] = {}
        for keys, patterns in lists.items():
            for path, pattern in self._items(name, keys, patterns):
                located.setdefault(path, []).append(pattern)
        return located

    def _check_secrets(self) -> None:
        """A secret's value comes from the caller; written in the file, it would leak."""
        raw = self.data.get("secrets")
        secrets = (
            {name for name in raw if isinstance(name, str)} if isinstance(raw, list) else set()
        )
        places: list[NodePath] = [("env",)]
        places += [("jobs", name, "env") for name in self.raw_jobs]
        for at in places:
            env = _mapping(self.data.get("env")) if at == ("env",) else self._job_env(at)
            for key in env:
                if key in secrets:
                    message = f"'{key}' is a secret, so its value cannot be written in the file"
                    hint = "remove it from 'env'; jobs get it from the caller's environment"
                    self.issues.append(SpecIssue(self.positions.key((*at, key)), message, hint))

    def _job_env(self, at: NodePath) -> dict[str, object]:
        return _mapping(_mapping(self.raw_jobs.get(str(at[1]))).get("env"))

    def _env(self, at: NodePath, env: Mapping[str, str | int | float | bool]) -> dict[str, str]:
        return {key: self._text(value, (*at, key)) for key, value in env.items()}

    def _text(self, value: str | int | float | bool, path: NodePath) -> str:
        """A scalar as text, as written: numbers (`3.10`) and what YAML reads as true or
        false (`COUNTRY: no` stays `no`, `DEBUG: yes` stays `yes`)."""
        if isinstance(value, str):
            return value
        written = self.positions.text(path)
        if written is not None:
            return written
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def _add(self, path: NodePath, message: str, hint: str | None) -> None:
        self.issues.append(SpecIssue(self.positions.value(path), message, hint))

    def _located(self, violation: Violation) -> SpecIssue:
        if violation.where == "key":
            where = self.positions.key(violation.path)
        else:
            where = self.positions.value(violation.path)
        return SpecIssue(where, violation.message, violation.hint)


def _workdir(job: JobModel, values: Mapping[str, str]) -> str:
    """The workdir of one expansion; RuleError when its values make it a bad one.

    One that names an axis is kept as written until filled (`${svc}/..` would
    lose its axis if it were normalised first).
    """
    if placeholders.OPEN not in job.workdir:
        return job.workdir
    return rules.normalize_workdir(placeholders.fill(job.workdir, values))


def _filled(patterns: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(_fill_glob(pattern, values) for pattern in patterns)


def _fill_glob(pattern: str, values: Mapping[str, str]) -> str:
    """A glob with an expansion's values, each standing for itself (`[` in one is no class)."""
    return placeholders.fill(pattern, values, quote=glob.escape)


def _path_problem(kind: str, workdir: str, pattern: str) -> tuple[str, str | None] | None:
    """What is wrong with a glob of a job's `kind` (`outputs`...) in `workdir`, with a hint."""
    try:
        rules.check_glob(pattern)  # as written it passed; an axis's value may break it
    except rules.RuleError as exc:
        return exc.message or f"'{pattern}' is not a glob", exc.hint
    rooted = rooted_glob(workdir, pattern)
    if rooted is None:
        return (
            f"'{pattern}' leads outside the workspace",
            "globs are relative to the job's workdir; name files inside the "
            "directory that holds conveyor.yaml",
        )
    if kind != "inputs" and names_state(rooted):
        return (
            f"'{pattern}' names Conveyor's own state ({STATE_DIR_NAME}/)",
            f"a job's {kind} are files it writes elsewhere in the workspace; "
            f"{STATE_DIR_NAME}/ holds the store, the cache and the keys",
        )
    return None

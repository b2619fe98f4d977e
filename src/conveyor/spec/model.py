"""The file format of `conveyor.yaml` as pydantic models: shape, per-field rules, JSON Schema.

Only this module imports pydantic. It reports problems as `Violation`s
addressed by their path in the file, in plain words; the loader turns paths
into positions and checks what spans several jobs (needs, cycles, conditions).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import ErrorDetails, core_schema

from conveyor.core.values import frozen, replace
from conveyor.spec import rules
from conveyor.spec.delivery_model import (
    ApprovalsModel,
    DeliveryModel,
    EnvironmentModel,
    FreezeModel,
    HealthModel,
    RequirementsModel,
)
from conveyor.spec.messages import (
    expected,
    hint_for,
    missing_hint,
    pattern,
    subject,
    unknown_key_hint,
)
from conveyor.spec.rules import (
    ENV_NAME,
    JOB_NAME,
    MAX_JOB_NAME,
    MAX_RETRIES,
    ManyRulesError,
    RuleError,
)
from conveyor.spec.source import NodePath, describe
from conveyor.spec.suggest import did_you_mean


@frozen
class Violation:
    """One problem found by the models, at a path; `where` says which position to show."""

    path: NodePath
    message: str
    hint: str | None = None
    where: Literal["key", "value"] = "value"


JobName = Annotated[str, AfterValidator(rules.check_job_name)]
EnvName = Annotated[str, AfterValidator(rules.check_env_name)]
EnvKey = Annotated[str, AfterValidator(rules.check_env_key)]
Scalar = Annotated[str | int | float | bool, BeforeValidator(rules.check_scalar)]
Glob = Annotated[str, AfterValidator(rules.check_glob)]
Globs = Annotated[
    list[Glob], BeforeValidator(rules.listify, json_schema_input_type=str | list[str])
]
Duration = Annotated[float, BeforeValidator(rules.to_seconds, json_schema_input_type=str)]
Env = Annotated[
    dict[EnvKey, Scalar],
    Field(
        description="Environment variables: names to text, numbers or true/false.",
        json_schema_extra={"propertyNames": {"pattern": f"^{ENV_NAME.pattern}$"}},
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RetryModel(_Strict):
    """How often a failed job is tried again, and how long to wait in between."""

    model_config = ConfigDict(title="Retry")

    max: Annotated[int, AfterValidator(rules.check_retry_count)] = Field(
        description=f"Extra attempts after the first, 0 to {MAX_RETRIES}.",
        json_schema_extra={"minimum": 0, "maximum": MAX_RETRIES},
    )
    backoff: Annotated[Duration, AfterValidator(rules.check_backoff)] = Field(
        default=1.0,
        description="Wait before the first retry, like '5s' (at most 1 day); it doubles each time.",
    )


class ConcurrencyModel(_Strict):
    """At most one holder of the group runs at a time, across all runs (remote runs)."""

    model_config = ConfigDict(title="Concurrency")

    group: Annotated[str, AfterValidator(rules.once_filled(rules.check_group))] = Field(
        description="The group's name, like 'deploy-prod' (letters, digits, '_', '.', ':', "
        "'/', '-'); in a matrix job, ${axis} is the expansion's value."
    )
    cancel_in_progress: bool = Field(
        default=False,
        description="When true, a newer run cancels the older run's holder instead of "
        "waiting for it.",
    )


Concurrency = Annotated[
    ConcurrencyModel | None,
    BeforeValidator(rules.expand_group_shorthand, json_schema_input_type=str | ConcurrencyModel),
]
ConcurrencyField = Field(
    default=None,
    description="Serialize across runs: a group name, or {group, cancel_in_progress}.",
)


class ReportsModel(_Strict):
    """Test reports the job writes, shown with the run."""

    model_config = ConfigDict(title="Reports")

    junit: Globs = Field(
        default_factory=list,
        description="Globs of JUnit XML files, like 'reports/*.xml'; "
        "in a matrix job, ${axis} is the expansion's value.",
    )


class MatrixModel(BaseModel):
    """Axes of values; the job runs once per combination, minus `exclude`."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, title="Matrix")
    __pydantic_extra__: dict[
        EnvKey,
        Annotated[
            list[Scalar], AfterValidator(rules.check_axis), Field(json_schema_extra={"minItems": 1})
        ],
    ]

    exclude: list[dict[str, Scalar]] = Field(
        default_factory=list,
        description="Combinations to skip, like [{python: '3.11', os: windows}].",
    )

    @property
    def axes(self) -> dict[str, list[str | int | float | bool]]:
        """The axes in the order written."""
        return dict(self.__pydantic_extra__)

    @model_validator(mode="before")
    @classmethod
    def _no_include_and_no_misspelled_exclude(cls, data: object) -> object:
        """A key like `exlude` would otherwise be taken for an axis, and its values run.

        `excludes` is a name built on `exclude`, an axis like any other, unless
        it holds combinations (mappings), which no axis does.
        """
        for key in data if isinstance(data, dict) else ():
            if key == "include":
                raise RuleError(
                    "'include' is not supported in a matrix",
                    "add its values to the axes and 'exclude' the combinations that should "
                    "not run, or write that job out on its own",
                    at=(key,),
                    on_key=True,
                )
            value = data[key]  # type: ignore[index]
            combinations = isinstance(value, list) and any(isinstance(v, dict) for v in value)
            if isinstance(key, str) and _misspells_exclude(key, combinations=combinations):
                message = f"'{key}' looks like a misspelled 'exclude', not an axis"
                raise RuleError(message, "did you mean 'exclude'?", at=(key,), on_key=True)
        return data

    @model_validator(mode="after")
    def _axes_have_values(self) -> MatrixModel:
        if not self.__pydantic_extra__:
            raise RuleError("a matrix needs at least one axis", "like matrix: {python: ['3.12']}")
        return self


def _misspells_exclude(key: str, *, combinations: bool) -> bool:
    """`exlude`, `exclued`: within two edits of `exclude`; a name built on it (`excludes`)
    only when it holds `combinations`, which no axis does."""
    if key == "exclude" or abs(len(key) - 7) > 2:
        return False
    if key.startswith("exclude") and not combinations:
        return False
    return _edits(key, "exclude") <= 2


def _edits(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


class JobModel(_Strict):
    """One job: a shell script with what it needs, reads and produces."""

    model_config = ConfigDict(title="Job")

    run: Annotated[str, AfterValidator(rules.check_text)] = Field(
        description="The shell script to run; several lines run as one script."
    )
    needs: Annotated[
        list[Annotated[str, AfterValidator(rules.check_text)]],
        BeforeValidator(rules.listify, json_schema_input_type=str | list[str]),
    ] = Field(
        default_factory=list,
        description="Jobs that must succeed first: names, a matrix job's name for all its "
        "expansions, or one expansion like 'test (python=3.12)'.",
    )
    env: Env = Field(default_factory=dict)
    workdir: Annotated[str, AfterValidator(rules.once_filled(rules.normalize_workdir))] = Field(
        default=".",
        description="Directory to run in, relative to the workspace root; "
        "in a matrix job, ${axis} is the expansion's value.",
    )
    inputs: Globs | None = Field(
        default=None,
        description="Globs of the files the result depends on (the cache key); "
        "leave out to use every file, [] for none; in a matrix job, ${axis} is the "
        "expansion's value.",
    )
    outputs: Globs = Field(
        default_factory=list,
        description="Globs of files kept as artifacts, like 'dist/*.whl'; in a matrix job, "
        "${axis} is the expansion's value, like 'dist/app-${os}'.",
    )
    reports: ReportsModel | None = None
    timeout: Annotated[Duration, AfterValidator(rules.check_job_timeout)] | None = Field(
        default=None, description="Stop the job after this long, like '10m' or '1h30m'."
    )
    retry: Annotated[
        RetryModel | None,
        BeforeValidator(rules.expand_retry_shorthand, json_schema_input_type=int | RetryModel),
    ] = Field(default=None, description="Retries on failure: a count, or {max, backoff}.")
    allow_failure: bool = Field(
        default=False, description="When true, a failure does not fail the run."
    )
    cache: bool = Field(default=True, description="When false, never restore from the cache.")
    matrix: MatrixModel | None = None
    condition: str | None = Field(
        default=None,
        alias="if",
        description="Run only when this CEL expression is true; it can use branch, commit, "
        "event, env.NAME and changed('glob'), like: branch == 'main' && changed('src/**').",
    )
    runs_on: Annotated[
        list[Annotated[str, AfterValidator(rules.once_filled(rules.check_label))]],
        BeforeValidator(rules.listify, json_schema_input_type=str | list[str]),
        AfterValidator(rules.check_labels_once),
    ] = Field(
        default_factory=list,
        description="Labels a runner must have to take this job, like [linux, docker]; "
        "in a matrix job, ${axis} is the expansion's value; ignored by local runs.",
    )
    concurrency: Concurrency = ConcurrencyField

    @field_validator(
        "inputs",
        "reports",
        "timeout",
        "retry",
        "matrix",
        "condition",
        "concurrency",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # An empty value is a mistake, not a way to write the default.
        if value is None:
            raise RuleError()
        return value


class FileModel(_Strict):
    """A Conveyor pipeline: jobs, their needs, and what they read and produce."""

    model_config = ConfigDict(title="conveyor.yaml")

    version: Annotated[int, AfterValidator(rules.check_version)] = Field(
        description="Version of this file format; write 1.", json_schema_extra={"const": 1}
    )
    env: Env = Field(default_factory=dict)
    secrets: list[EnvName] = Field(
        default_factory=list,
        description="Names of environment variables whose values are secret: "
        "passed to jobs and masked in logs.",
    )
    jobs: dict[JobName, JobModel] = Field(
        description="The jobs, by name (letters, digits, '_', '.', '-').",
        json_schema_extra={
            "minProperties": 1,
            "propertyNames": {"pattern": f"^{JOB_NAME.pattern}$", "maxLength": MAX_JOB_NAME},
        },
    )
    delivery: DeliveryModel | None = Field(
        default=None,
        description="How Releases of this service are made from a run, run, and promoted "
        "through environments.",
    )
    concurrency: Concurrency = ConcurrencyField

    @field_validator("delivery", "concurrency", mode="before")
    @classmethod
    def _delivery_not_null(cls, value: object) -> object:
        if value is None:
            raise RuleError()
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets_once(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        twice: list[RuleError] = []
        for index, name in enumerate(names):
            if name in seen:
                twice.append(RuleError(f"secret '{name}' is listed twice", at=(index,)))
            seen.add(name)
        if twice:
            raise ManyRulesError(twice)
        return names

    @field_validator("jobs")
    @classmethod
    def _some_jobs(cls, jobs: dict[str, JobModel]) -> dict[str, JobModel]:
        if not jobs:
            raise RuleError("'jobs' is empty; expected at least one job", "like jobs: {build: ...}")
        return jobs


@frozen
class Checked:
    """What validation accepted: the whole file, or else the usable part of each job.

    When the file has violations, `jobs` holds each job without its broken
    keys, so checks across jobs (needs, cycles, conditions) still run and
    every issue is reported at once. Such jobs never reach a Pipeline.
    """

    file: FileModel | None
    jobs: dict[str, JobModel]
    violations: list[Violation]


def check(data: dict[str, object]) -> Checked:
    """Validate a file's plain values; every violation, and the usable jobs."""
    try:
        file = FileModel.model_validate(data)
    except ValidationError as exc:
        violations = list(_dedupe(_violations(exc)))
    else:
        return Checked(file, dict(file.jobs), [])
    raw_jobs = data.get("jobs")
    jobs: dict[str, JobModel] = {}
    if isinstance(raw_jobs, dict):
        for name, raw in raw_jobs.items():
            job = _salvage(name, raw, violations)
            if job is not None:
                jobs[name] = job
    return Checked(None, jobs, violations)


def _salvage(name: str, raw: object, violations: list[Violation]) -> JobModel | None:
    """The job without the keys that have violations, or None when nothing is usable."""
    try:
        rules.check_job_name(name)
    except RuleError:
        return None
    if not isinstance(raw, dict):
        return None
    usable = dict(raw)
    for violation in violations:
        below = violation.path[2:] if violation.path[:2] == ("jobs", name) else ()
        if below and not _stand_in_glob(usable, below):
            usable.pop(below[0], None)
    # A stand-in script, so that a job without a valid `run` still shows its other problems.
    usable.setdefault("run", "true")
    try:
        return JobModel.model_validate(usable)
    except ValidationError:
        return None


# Lists of globs whose broken items are stood in for (by "."), so that the
# others' problems (a pattern leading outside the workspace) are said too.
_GLOB_LISTS = (("inputs",), ("outputs",), ("reports", "junit"))


def _stand_in_glob(job: dict[str, object], path: tuple[object, ...]) -> bool:
    """Replace the broken glob `path` names in a job's raw values; whether it was one."""
    for keys in _GLOB_LISTS:
        if len(path) != len(keys) + 1 or path[: len(keys)] != keys:
            continue
        holder: object = job
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                return False
            holder = dict(holder)  # a copy: the raw document stays as read
            job[key] = holder
        assert isinstance(holder, dict)
        items, index = holder.get(keys[-1]), path[-1]
        if isinstance(items, list) and isinstance(index, int) and 0 <= index < len(items):
            holder[keys[-1]] = [*items[:index], ".", *items[index + 1 :]]
            return True
    return False


def _violations(exc: ValidationError) -> Iterator[Violation]:
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if "[key]" in loc:
            path, on_key = loc[: loc.index("[key]")], True
        else:
            path, on_key = loc, False
        yield from _translate(error, path, on_key)


def _translate(error: ErrorDetails, path: NodePath, on_key: bool) -> Iterator[Violation]:
    kind = error["type"]
    found = error.get("input")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ManyRulesError | RuleError):
        problems = cause.problems if isinstance(cause, ManyRulesError) else [cause]
        for problem in problems:
            yield _from_problem(problem, path, on_key, found)
    elif kind == "missing":
        parent, key = path[:-1], str(path[-1])
        yield Violation(parent, f"{subject(parent)} has no '{key}'", missing_hint(path), "key")
    elif kind == "too_short":
        yield Violation(path, f"{subject(path)} is empty; write {expected(path)}", None)
    elif kind == "literal_error":
        hint = did_you_mean(found, _literal_choices(error)) if isinstance(found, str) else None
        yield replace(_mismatch(path, found, on_key), hint=hint)
    elif kind == "extra_forbidden":
        parent, key = path[:-1], str(path[-1])
        message = f"unknown key '{key}' in {subject(parent)}"
        yield Violation(
            path, message, unknown_key_hint(parent, key, found, _keys_at(parent)), "key"
        )
    else:
        yield _mismatch(path, found, on_key)


def _literal_choices(error: ErrorDetails) -> list[str]:
    """The allowed values pydantic lists in a literal error: `'a', 'b' or 'c'`."""
    listed = str((error.get("ctx") or {}).get("expected", ""))
    return [part.strip(" '") for part in re.split(r",| or ", listed) if part.strip(" '")]


def _from_problem(problem: RuleError, path: NodePath, on_key: bool, found: object) -> Violation:
    where: Literal["key", "value"] = "key" if on_key or problem.on_key else "value"
    if problem.message is None:
        violation = _mismatch((*path, *problem.at), found, on_key)
        return replace(violation, hint=problem.hint or violation.hint)
    return Violation((*path, *problem.at), problem.message, problem.hint, where)


def _mismatch(path: NodePath, found: object, on_key: bool) -> Violation:
    message = f"{subject(path)} must be {expected(path)}, found {describe(found)}"
    where: Literal["key", "value"] = "key" if on_key or found is None else "value"
    return Violation(path, message, hint_for(path, found), where)


def _dedupe(violations: Iterator[Violation]) -> Iterator[Violation]:
    # Pydantic may report one place more than once; one report per place is enough.
    # Several missing keys of one mapping share its place but not their message.
    seen: set[tuple[NodePath, str, str]] = set()
    for violation in violations:
        key = (violation.path, violation.where, violation.message)
        if key not in seen:
            seen.add(key)
            yield violation


def _keys_at(path: NodePath) -> list[str]:
    models: dict[str, type[BaseModel]] = {
        "": FileModel,
        "jobs.*": JobModel,
        "jobs.*.retry": RetryModel,
        "jobs.*.reports": ReportsModel,
        "jobs.*.concurrency": ConcurrencyModel,
        "concurrency": ConcurrencyModel,
        "delivery": DeliveryModel,
        "delivery.health": HealthModel,
        "delivery.environments.#": EnvironmentModel,
        "delivery.environments.#.requires": RequirementsModel,
        "delivery.environments.#.requires.approvals": ApprovalsModel,
        "delivery.environments.#.requires.freeze.#": FreezeModel,
    }
    model = models.get(pattern(path))
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


class _EditorSchema(GenerateJsonSchema):
    """JSON Schema for editors: no nulls (an empty value is an error) and no generated titles."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if result.get("default", 0) is None:
            del result["default"]
        return result

    def field_title_should_be_set(self, schema: object) -> bool:
        return False


def file_json_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) of `conveyor.yaml`, generated from the models."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **FileModel.model_json_schema(schema_generator=_EditorSchema),
    }
    return schema

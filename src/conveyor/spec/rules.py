"""Rules for single values of `conveyor.yaml`, used as validators by `conveyor.spec.model`.

Each rule returns the value (maybe normalised) or raises `RuleError` with a
message in plain words; `RuleError()` without a message means "not the
expected type", and the model composes that message from the path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import PureWindowsPath

from conveyor.core.durations import EXAMPLES, parse_duration
from conveyor.spec import placeholders
from conveyor.spec.pipeline import SPEC_VERSION
from conveyor.spec.source import NodePath

JOB_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL = re.compile(r"[a-z0-9][a-z0-9._-]*")
GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
MAX_JOB_NAME = 100
MAX_LABEL = 63
MAX_GROUP = 200
MAX_RETRIES = 10


class RuleError(ValueError):
    """A rule broken by one value; `at` points below it, `message=None` means a type mismatch."""

    def __init__(
        self,
        message: str | None = None,
        hint: str | None = None,
        *,
        at: NodePath = (),
        on_key: bool = False,
    ) -> None:
        super().__init__(message or "type mismatch")
        self.message = message
        self.hint = hint
        self.at = at
        self.on_key = on_key


class ManyRulesError(ValueError):
    """Several problems found by one validator, all reported."""

    def __init__(self, problems: list[RuleError]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


def check_job_name(name: str) -> str:
    """A job name: letters, digits, '_', '.', '-', at most 100 characters."""
    if not name:
        raise RuleError("a job name cannot be empty")
    if len(name) > MAX_JOB_NAME:
        raise RuleError(
            f"job name '{name[:20]}...' has {len(name)} characters; at most 100 are allowed"
        )
    if not JOB_NAME.fullmatch(name):
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "build"
        raise RuleError(
            f"job name '{name}' may only use letters, digits, '_', '.' and '-'",
            f"spaces and parentheses are kept for matrix expansions; try '{fixed}'",
        )
    return name


def check_env_name(name: str, *, on_key: bool = False) -> str:
    """An environment variable name, as POSIX shells accept it."""
    if not ENV_NAME.fullmatch(name):
        fixed = re.sub(r"\W", "_", name)
        fixed = f"_{fixed}" if fixed[:1].isdigit() or not fixed else fixed
        raise RuleError(
            f"'{name}' is not a valid environment variable name",
            f"use letters, digits and '_', not starting with a digit, like '{fixed}'",
            on_key=on_key,
        )
    return name


def check_env_key(name: str) -> str:
    """An environment variable name used as a key (of `env`, or a matrix axis)."""
    return check_env_name(name, on_key=True)


def check_text(value: str) -> str:
    """Text that is not blank."""
    if not value.strip():
        raise RuleError()
    return value


def check_scalar(value: object) -> object:
    """Text, a number or true/false; anything else is a type mismatch."""
    if isinstance(value, str | int | float):
        return value
    raise RuleError()


def listify(value: object) -> object:
    """One string stands for a list of one."""
    return [value] if isinstance(value, str) else value


_DAY = 86400.0


def to_seconds(value: object) -> object:
    """A duration like '10m' as seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RuleError()
    if not isinstance(value, str):
        raise RuleError(f"found the number {value}; a duration needs a unit, like {EXAMPLES}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise RuleError(str(exc)) from None


def check_positive(seconds: float) -> float:
    """A timeout longer than zero."""
    if seconds <= 0:
        raise RuleError("a timeout must be longer than zero", "remove it for no timeout")
    return seconds


def check_job_timeout(seconds: float) -> float:
    """A job's timeout: longer than zero, at most 30 days."""
    if check_positive(seconds) > 30 * _DAY:
        raise RuleError("a job's timeout may be at most 30 days", "remove it for no timeout")
    return seconds


def check_backoff(seconds: float) -> float:
    """The wait before a job's first retry: at most a day (it doubles with each)."""
    if seconds > _DAY:
        raise RuleError(
            "a retry's backoff may be at most 1 day (it doubles with each retry)",
            "write a shorter one, like '30s' or '10m'",
        )
    return seconds


def once_filled(rule: Callable[[str], str]) -> Callable[[str], str]:
    """`rule` for a value as written, but for one that names a matrix axis (`${os}`,
    `${svc}/..`): the loader checks that once filled, for each expansion, with `rule`."""

    def check(value: str) -> str:
        return value if placeholders.OPEN in value else rule(value)

    return check


def normalize_workdir(value: str) -> str:
    """A relative posix path that stays inside the workspace, normalised."""
    path = value.strip()
    if not path:
        raise RuleError("workdir is empty", "remove it to run in the workspace root")
    if path.startswith(("/", "~")) or PureWindowsPath(path).drive:
        raise RuleError(
            f"workdir '{value}' is absolute; expected a path relative to the workspace root",
            "paths start at the directory that holds conveyor.yaml",
        )
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        raise RuleError(f"workdir '{value}' leads outside the workspace through '..'")
    return normal


def check_glob(value: str) -> str:
    """A relative glob pattern."""
    if not value.strip():
        raise RuleError("a glob cannot be empty")
    if value.startswith("/"):
        raise RuleError(f"glob '{value}' is absolute; expected a path relative to the workdir")
    return value


def check_axis(values: list[str | int | float | bool]) -> list[str | int | float | bool]:
    """A matrix axis with at least one value."""
    if not values:
        raise RuleError("a matrix axis needs at least one value", "like python: ['3.12']")
    return values


def check_retry_count(value: int) -> int:
    """A retry count from 0 to MAX_RETRIES."""
    if not 0 <= value <= MAX_RETRIES:
        raise RuleError(f"retry max must be from 0 to {MAX_RETRIES}, found {value}")
    return value


def expand_retry_shorthand(value: object) -> object:
    """`retry: 2` stands for `retry: {max: 2}`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"max": value}
    return value


def check_label(value: str) -> str:
    """A runner label: lowercase letters, digits, '.', '_' and '-'; not starting with a sign."""
    if not value:
        raise RuleError("a label cannot be empty", "remove it, or write one like 'linux'")
    if len(value) > MAX_LABEL:
        raise RuleError(f"label '{value[:20]}...' is longer than {MAX_LABEL} characters")
    if not LABEL.fullmatch(value):
        fixed = re.sub(r"[^a-z0-9._-]+", "-", value.lower()).strip("-._") or "linux"
        raise RuleError(
            f"label '{value}' may only use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit",
            f"try '{fixed}'",
        )
    return value


def check_labels_once(labels: list[str]) -> list[str]:
    """Each label once; a repeat is a slip."""
    seen: set[str] = set()
    twice: list[RuleError] = []
    for index, label in enumerate(labels):
        if label in seen:
            twice.append(RuleError(f"label '{label}' is listed twice", at=(index,)))
        seen.add(label)
    if twice:
        raise ManyRulesError(twice)
    return labels


def check_group(value: str) -> str:
    """A concurrency group name."""
    if len(value) > MAX_GROUP:
        raise RuleError(f"group '{value[:20]}...' is longer than {MAX_GROUP} characters")
    if not GROUP.fullmatch(value):
        fixed = re.sub(r"[^A-Za-z0-9_.:/-]+", "-", value).strip("-") or "deploy"
        raise RuleError(
            f"group '{value}' may only use letters, digits, '_', '.', ':', '/' and '-'",
            f"try '{fixed}'",
        )
    return value


def expand_group_shorthand(value: object) -> object:
    """`concurrency: deploy` stands for `concurrency: {group: deploy}`."""
    if isinstance(value, str):
        return {"group": value}
    return value


def check_version(value: int) -> int:
    """The file format version this Conveyor reads."""
    if value != SPEC_VERSION:
        raise RuleError(
            f"unsupported version {value}; this Conveyor reads version {SPEC_VERSION}",
            f"write 'version: {SPEC_VERSION}'",
        )
    return value

"""Matrix expansion: one job per combination of axis values, like `test (python=3.12, os=linux)`.

Values arrive as the text the user wrote (`3.10` stays `3.10`), so names,
environment variables and `exclude` all compare what the user sees.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from conveyor.core.values import frozen
from conveyor.spec.source import NodePath
from conveyor.spec.suggest import did_you_mean, one_of

# A file that expands one job past this is almost surely a mistake, and
# would flood the runners.
MAX_EXPANSIONS = 256
_NAME = re.compile(r"(?P<base>[^ ()]+) \((?P<pairs>.*)\)")


@frozen
class Expansion:
    """One combination of a matrix job: its name and the value of each axis."""

    name: str
    values: Mapping[str, str]


@frozen
class MatrixIssue:
    """A problem in a matrix, at a path below `matrix`; `on_key` points at the key."""

    at: NodePath
    message: str
    hint: str | None = None
    on_key: bool = False


def expansion_name(base: str, values: Mapping[str, str]) -> str:
    """`test (python=3.12, os=linux)`: axes in the order written."""
    pairs = ", ".join(f"{axis}={value}" for axis, value in values.items())
    return f"{base} ({pairs})"


def parse_expansion_name(name: str) -> tuple[str, dict[str, str]] | None:
    """`("test", {"python": "3.12"})` for `test (python=3.12)`; None for a plain name."""
    match = _NAME.fullmatch(name.strip())
    if match is None:
        return None
    values: dict[str, str] = {}
    for pair in match["pairs"].split(","):
        axis, equals, value = pair.partition("=")
        if not equals:
            return None
        values[axis.strip()] = value.strip()
    return match["base"], values


def expand(
    base: str, axes: Mapping[str, Sequence[str]], exclude: Sequence[Mapping[str, str]]
) -> list[Expansion]:
    """The product of the axes in the order written, minus combinations matching an exclude."""
    names = list(axes)
    expansions: list[Expansion] = []
    for combination in itertools.product(*(axes[name] for name in names)):
        values = dict(zip(names, combination, strict=True))
        if any(_matches(entry, values) for entry in exclude):
            continue
        expansions.append(Expansion(expansion_name(base, values), values))
    return expansions


def _matches(entry: Mapping[str, str], values: Mapping[str, str]) -> bool:
    return bool(entry) and all(values.get(axis) == value for axis, value in entry.items())


def matrix_issues(
    axes: Mapping[str, Sequence[str]], exclude: Sequence[Mapping[str, str]]
) -> list[MatrixIssue]:
    """Repeated values, excludes naming unknown axes or values, and empty or huge results."""
    issues: list[MatrixIssue] = []
    for axis, values in axes.items():
        seen: set[str] = set()
        for index, value in enumerate(values):
            if value in seen:
                message = f"'{value}' appears twice in matrix axis '{axis}'"
                issues.append(MatrixIssue((axis, index), message, "remove one of them"))
            seen.add(value)
    for index, entry in enumerate(exclude):
        issues.extend(_exclude_issues(index, entry, axes))
    if issues:
        return issues
    total = 1
    for values in axes.values():
        total *= len(values)
    # Excludes rarely remove most of a product; skip building a huge one to count it.
    kept_names = (
        [e.name for e in expand("", axes, exclude)] if total <= 16 * MAX_EXPANSIONS else None
    )
    kept = total if kept_names is None else len(kept_names)
    twice = _named_twice(kept_names or [])
    if twice is not None:
        message = (
            f"two combinations of this matrix would name their jobs alike, {twice.strip()}: "
            "a value holding ', ' and '=' reads as another axis in a job's name"
        )
        issues.append(MatrixIssue((), message, "change one of those values", on_key=True))
    if kept == 0:
        message = "'exclude' removes every combination of this matrix"
        issues.append(MatrixIssue(("exclude",), message, on_key=True))
    elif kept > MAX_EXPANSIONS:
        message = f"this matrix expands to {kept} jobs; at most {MAX_EXPANSIONS} are allowed"
        hint = "use fewer axes or values, or exclude some"
        issues.append(MatrixIssue((), message, hint, on_key=True))
    return issues


def _exclude_issues(
    index: int, entry: Mapping[str, str], axes: Mapping[str, Sequence[str]]
) -> list[MatrixIssue]:
    if not entry:
        return [MatrixIssue(("exclude", index), "this exclude entry names no axis")]
    issues: list[MatrixIssue] = []
    for axis, value in entry.items():
        at = ("exclude", index, axis)
        if axis not in axes:
            hint = did_you_mean(axis, axes) or f"the axes are {one_of(axes)}"
            issues.append(MatrixIssue(at, f"exclude names unknown axis '{axis}'", hint, True))
        elif value not in axes[axis]:
            message = f"exclude names '{value}', which is not a value of axis '{axis}'"
            hint = did_you_mean(value, axes[axis]) or f"the values are {one_of(axes[axis])}"
            issues.append(MatrixIssue(at, message, hint))
    return issues


def _named_twice(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None

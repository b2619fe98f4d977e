"""`${axis}` in a matrix job's paths and labels, so that each expansion has its own.

A matrix job runs once per combination of values, and each expansion sees
its values as variables (`$os`). Its `workdir`, `inputs`, `outputs`,
`reports`, `runs_on` and concurrency group may name an axis as `${os}`: `outputs:
["dist/app-${os}"]` gives `build (os=linux)` the file `dist/app-linux`, and
`runs_on: ["${os}"]` sends it to a runner labelled `linux`. Without them
every expansion would declare the same files, and a file has one producer.

Only `${axis}` is read. Anything else written with `${` is an error, so that
a misspelled axis is not taken as part of a file name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from conveyor.core.values import frozen
from conveyor.spec.suggest import closest

OPEN = "${"


@frozen
class Placeholder:
    """`${name}` at `start` of a text, `end` just past its `}`; `end` is -1 when unclosed."""

    start: int
    end: int
    name: str


@frozen
class PlaceholderIssue:
    """A `${...}` that names no axis; `offset` is where it starts in the text."""

    offset: int
    message: str
    hint: str | None = None


def placeholders(text: str) -> Iterator[Placeholder]:
    """Every `${...}` of `text`, in order. GitHub's `${{ ... }}` is read as one, whole."""
    start = text.find(OPEN)
    while start >= 0:
        github = text.startswith("{", start + 2) and text.find("}}", start + 2) >= 0
        close = text.find("}}" if github else "}", start + 2)
        if close < 0:
            yield Placeholder(start, -1, text[start + 2 :])
            return
        end = close + (2 if github else 1)
        yield Placeholder(start, end, text[start + 2 : end - 1])
        start = text.find(OPEN, end)


def issues(
    text: str, job: str, axes: Sequence[str], *, owner: str | None = None
) -> list[PlaceholderIssue]:
    """What is wrong with the `${...}` of `text`, a path of job `job` whose matrix has `axes`
    (`owner`: what holds `text` when no job does, such as the file's concurrency group)."""
    found = []
    for placeholder in placeholders(text):
        problem = _problem(placeholder, owner or f"job '{job}'", axes)
        if problem is not None:
            found.append(problem)
    return found


def fill(text: str, values: Mapping[str, str], *, quote: Callable[[str], str] | None = None) -> str:
    """`text` with each `${axis}` replaced by the expansion's value (`issues` found none),
    passed through `quote` when given (`glob.escape`, for a value to stand for itself)."""
    if OPEN not in text:
        return text
    parts, at = [], 0
    for placeholder in placeholders(text):
        value = values[placeholder.name]
        parts += [text[at : placeholder.start], quote(value) if quote else value]
        at = placeholder.end
    parts.append(text[at:])
    return "".join(parts)


def _problem(placeholder: Placeholder, owner: str, axes: Sequence[str]) -> PlaceholderIssue | None:
    name, at = placeholder.name, placeholder.start
    if placeholder.end < 0:
        return PlaceholderIssue(
            at, f"'${{{name}' is not closed", "name a matrix axis as ${axis}, closed by '}'"
        )
    if name in axes:
        return None
    written = f"${{{name}}}"
    if name.startswith("{"):  # GitHub Actions' `${{ matrix.os }}`
        axis = name.strip("{} ").removeprefix("matrix.")
        hint = f"write '${{{axis}}}'" if axis in axes else _axes_hint(axes)
        return PlaceholderIssue(at, f"'{written}' is GitHub Actions' syntax", hint)
    if not axes:
        return PlaceholderIssue(
            at,
            f"'{written}' names a matrix axis, and {owner} has no matrix",
            _NO_MATRIX,
        )
    return PlaceholderIssue(
        at,
        f"'{written}' names no axis of the matrix of {owner}",
        f"did you mean '${{{close}}}'?" if (close := closest(name, axes)) else _axes_hint(axes),
    )


_NO_MATRIX = "only a matrix job can name ${axis}; write the value itself"


def _axes_hint(axes: Sequence[str]) -> str:
    if not axes:
        return _NO_MATRIX
    return f"its axes: {', '.join(axes)}; name one like ${{{axes[0]}}}"

"""Rule messages: text that shows values of the decision input, written `{release.version}`.

`{{` and `}}` stand for the braces themselves. A placeholder must name a
field that holds text, a number or a list of text; that is checked when the
rule is loaded, so rendering never fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor.policy.expressions import SYNONYMS
from conveyor.policy.schema import Shape, input_shape
from conveyor.spec.cel import Problem
from conveyor.spec.suggest import did_you_mean, one_of

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_BRACES = "write {{ or }} for a brace itself"


def check_message(template: str) -> list[Problem]:
    """Problems in a message's placeholders as (offset, message, hint)."""
    problems: list[Problem] = []
    for match in _TOKEN.finditer(template):
        brace = match.group(0)
        if brace in ("{{", "}}"):
            continue
        if brace in ("{", "}"):
            other = "}" if brace == "{" else "{"
            problems.append((match.start(), f"a '{brace}' without its '{other}'", _BRACES))
            continue
        path = match.group(1).strip()
        problem = _placeholder_problem(path)
        if problem is not None:
            problems.append((match.start(1), *problem))
    return problems


def render_message(template: str, values: Mapping[str, object]) -> str:
    """The message with each placeholder replaced by its value in `values` (the plain input)."""

    def replace(match: re.Match[str]) -> str:
        """The value a placeholder names, or the brace a doubled brace stands for."""
        if match.group(1) is None:
            return match.group(0)[0]
        value: object = values
        for part in match.group(1).strip().split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return _text(value)

    return _TOKEN.sub(replace, template)


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return str(value)


def _placeholder_problem(path: str) -> tuple[str, str | None] | None:
    """(message, hint) when `path` does not name a value a message can show."""
    if not path:
        return "an empty placeholder", "name a value, like {release.version}, or " + _BRACES
    shape = input_shape()
    parts = path.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth])
        if shape.kind != "object":
            return f"{where} is a list; a message cannot name a field of its items", None
        child = shape.field(part)
        if child is None:
            synonyms = SYNONYMS if depth == 0 else None
            hint = did_you_mean(part, shape.names, synonyms) or f"use {one_of(shape.names)}"
            owner = f"{where} has" if where else "the decision input has"
            return f"{owner} no field '{part}'", hint
        shape = child
    return _shown(path, shape)


def _shown(path: str, shape: Shape) -> tuple[str, str | None] | None:
    if shape.kind == "object":
        return f"{path} is an object", f"name one of its fields: {one_of(shape.names)}"
    if shape.kind == "list" and shape.item is not None and shape.item.kind == "object":
        hint = "a message shows text, numbers and lists of text"
        return f"{path} is a list of objects", hint
    return None

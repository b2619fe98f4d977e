"""The shape of the decision input, derived from its classes: for checks, JSON Schema and docs.

A `Shape` is the type of one value: an object with named fields, a list of
items, text, a whole number, true/false, or one of a few choices. Rules are
checked against it when they are loaded, inputs are read with it, and the
JSON Schema and the Markdown table in docs/policy.md are printed from it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Iterator
from typing import Annotated, Literal, Union, get_args, get_origin, get_type_hints

from conveyor.core.values import frozen, replace
from conveyor.policy.decision_input import INPUT_VERSION, DecisionInput, Fact

Kind = Literal["object", "list", "text", "integer", "boolean", "choice"]


@frozen
class Shape:
    """The type of one value of the input, and what it means."""

    kind: Kind
    doc: str = ""
    fields: tuple[tuple[str, Shape], ...] = ()
    item: Shape | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    fact: Fact | None = None
    build: Callable[..., object] | None = None

    def field(self, name: str) -> Shape | None:
        """The shape of field `name` of an object, or None when it has none by that name."""
        return next((shape for key, shape in self.fields if key == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of an object's fields, in order."""
        return tuple(key for key, _ in self.fields)


BOOLEAN = Shape("boolean")
TEXT = Shape("text")
INTEGER = Shape("integer")


@functools.cache
def input_shape() -> Shape:
    """The shape of the whole decision input."""
    return shape_of(DecisionInput)


def shape_of(hint: object, fact: Fact | None = None) -> Shape:
    """The Shape of a type written in `conveyor.policy.decision_input`."""
    origin = get_origin(hint)
    if origin is Annotated:
        base, *extras = get_args(hint)
        found = next((extra for extra in extras if isinstance(extra, Fact)), fact)
        return shape_of(base, found)
    doc = fact.doc if fact else ""
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(hint) if arg is not type(None)]
        return replace(shape_of(present[0], fact), nullable=True)
    if origin is Literal:
        return Shape("choice", doc, choices=tuple(map(str, get_args(hint))), fact=fact)
    if origin is tuple:
        return Shape("list", doc, item=shape_of(get_args(hint)[0]), fact=fact)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = get_type_hints(hint, include_extras=True)
        fields = tuple((f.name, shape_of(hints[f.name])) for f in dataclasses.fields(hint))
        return Shape("object", doc or (hint.__doc__ or ""), fields=fields, fact=fact, build=hint)
    kinds: dict[object, Kind] = {str: "text", int: "integer", bool: "boolean"}
    return Shape(kinds[hint], doc, fact=fact)


def describe(shape: Shape) -> str:
    """The type of a value in words: `text`, `a whole number, 0 or more`, `a list of objects`."""
    fact = shape.fact
    if shape.kind == "list":
        item = shape.item
        assert item is not None
        return "a list of objects" if item.kind == "object" else "a list of text"
    words = {"object": "an object", "text": "text", "boolean": "true or false"}
    text = words.get(shape.kind, "")
    if shape.kind == "choice":
        text = "one of " + ", ".join(f"'{choice}'" for choice in shape.choices)
    elif shape.kind == "integer":
        low, high = (fact.minimum, fact.maximum) if fact else (None, None)
        text = "a whole number"
        text += f" from {low} to {high}" if high is not None else ", 0 or more" if low == 0 else ""
    elif fact is not None and fact.format is not None:
        text = "an RFC 3339 instant" if fact.format == "date-time" else "a date, YYYY-MM-DD"
    return text + (", or null" if shape.nullable else "")


def leaves(shape: Shape, prefix: str = "") -> Iterator[tuple[str, Shape]]:
    """Every field under `shape` with its dotted path; list items show as `[]`."""
    for name, child in shape.fields:
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        if child.kind == "object":
            yield from leaves(child, path)
        elif child.item is not None and child.item.kind == "object":
            yield from leaves(child.item, f"{path}[]")


def markdown_table() -> str:
    """The decision input as the Markdown table docs/policy.md shows."""
    rows = ["| field | type | meaning |", "| --- | --- | --- |"]
    for path, shape in leaves(input_shape()):
        rows.append(f"| `{path}` | {describe(shape)} | {shape.doc} |")
    return "\n".join(rows)


def json_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) of the decision input as JSON."""
    schema = _json(input_shape())
    properties = schema["properties"]
    assert isinstance(properties, dict)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Conveyor policy decision input, version {INPUT_VERSION}",
        **schema,
        "properties": {"version": {"const": INPUT_VERSION}, **properties},
    }


def _json(shape: Shape) -> dict[str, object]:
    out: dict[str, object] = {"description": shape.doc} if shape.doc else {}
    if shape.kind == "object":
        out["type"] = "object"
        out["properties"] = {name: _json(child) for name, child in shape.fields}
        out["additionalProperties"] = False
    elif shape.kind == "list":
        assert shape.item is not None
        out.update(type="array", items=_json(shape.item))
    elif shape.kind == "choice":
        out["enum"] = list(shape.choices)
    else:
        out["type"] = {"text": "string", "integer": "integer", "boolean": "boolean"}[shape.kind]
    fact = shape.fact
    if fact is not None:
        limits = {"format": fact.format, "minimum": fact.minimum, "maximum": fact.maximum}
        out.update({key: value for key, value in limits.items() if value is not None})
    if shape.nullable:
        out["type"] = [out["type"], "null"]
    return out

"""Rule expressions: CEL checked against the decision input's shape, then evaluated.

Checking follows names through the input: `release.tests.faild` is an unknown
field of `release.tests`, `approvals.exists(a, a.bye == 'x')` binds `a` to an
approval, and an expression that is plainly not true/false is caught before a
rule ever runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.policy.decision_input import DecisionInput
from conveyor.policy.schema import BOOLEAN, INTEGER, TEXT, Shape, input_shape, leaves
from conveyor.spec.cel import (
    BINDING_MACROS,
    Problem,
    arguments,
    compile_cel,
    environment,
    known_functions,
    leaf,
    start,
    string_literal,
    syntax_problem,
)
from conveyor.spec.suggest import did_you_mean, one_of

if TYPE_CHECKING:
    from celpy.celtypes import Value
    from celpy.evaluation import Context
    from lark import Token, Tree

Scope = Mapping[str, Shape | None]

# Words people reach for, mapped to the input's names.
SYNONYMS = {
    "env": "environment",
    "now": "time",
    "clock": "time",
    "user": "requester",
    "actor": "requester",
    "deployments": "previous_deployments",
    "history": "previous_deployments",
}
_PREDICATES = frozenset({"startsWith", "endsWith", "contains", "matches", "exists", "all"})
_LITERALS = {"STRING_LIT": TEXT, "MLSTRING_LIT": TEXT, "INT_LIT": INTEGER, "BOOL_LIT": BOOLEAN}
# Nodes that give true or false whatever their operands are.
_BOOLEAN_NODES = frozenset(
    {"relation_lt", "relation_le", "relation_gt", "relation_ge", "relation_eq", "relation_ne"}
    | {"relation_in", "unary_not"}
)
_LOGICAL = frozenset({"conditionalor", "conditionaland"})


class EvaluationError(Exception):
    """An expression could not be evaluated to true or false."""


def check_expression(source: str) -> list[Problem]:
    """Problems in `source` as (offset, message, hint); empty when it can be evaluated."""
    from celpy.celparser import CELParseError

    if not source.strip():
        return [(0, "the expression is empty", "write CEL over the decision input")]
    try:
        tree = compile_cel(source)
    except CELParseError as exc:
        return [syntax_problem(source, exc, "expression")]
    checker = _Checker(source)
    result = checker.visit(tree, {})
    problems = sorted(checker.problems, key=lambda problem: problem[0])
    if not problems and result is not None and result.kind != "boolean":
        message = f"the expression gives {_kind(result)}, not true or false"
        problems.append((0, message, _comparison_hint(" ".join(source.split()), result)))
    return problems


def _kind(shape: Shape) -> str:
    words = {
        "integer": "a number",
        "list": "a list",
        "object": "an object",
        "boolean": "true/false",
    }
    return words.get(shape.kind, "text")


def _comparison_hint(text: str, shape: Shape) -> str:
    if shape.kind == "integer":
        return f"compare it, like {text} > 0"
    if shape.kind == "list":
        return f"test it, like size({text}) > 0 or {text}.exists(x, ...)"
    if shape.kind == "object":
        return "read one of its fields"
    return f"compare it, like {text} == '...'"


def evaluate_expression(source: str, activation: Context) -> bool:
    """The value of a checked expression; EvaluationError when it has none, or not a bool."""
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    program = environment().program(compile_cel(source))
    try:
        result = program.evaluate(activation)
    except CELEvalError as exc:
        raise EvaluationError(_reason(exc)) from None
    if not isinstance(result, celtypes.BoolType):
        raise EvaluationError(f"it gives {result!r}, not true or false")
    return bool(result)


def activation(facts: DecisionInput) -> Context:
    """The input as CEL values: one variable per top-level field."""
    return {f.name: to_cel(getattr(facts, f.name)) for f in dataclasses.fields(facts)}


def to_cel(value: object) -> Value:
    """A value of the input (a frozen class, tuple, text, number or None) as a CEL value."""
    from celpy import celtypes

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return celtypes.MapType(
            {
                celtypes.StringType(f.name): to_cel(getattr(value, f.name))
                for f in dataclasses.fields(value)
            }
        )
    if isinstance(value, tuple):
        return celtypes.ListType([to_cel(item) for item in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if value is None:
        return None
    raise TypeError(f"no CEL value for {type(value).__name__}")


def _reason(exc: Exception) -> str:
    """CEL's error in plain words, as far as it can be read."""
    args = exc.args
    detail = str(args[0]).splitlines()[0] if args else type(exc).__name__
    kind = args[1] if len(args) > 1 else None
    if kind is KeyError and "no such member" in detail:
        return detail.replace("in mapping", "in the input")
    if kind is IndexError:
        return "a list index is out of range (the list may be empty)"
    if kind is ZeroDivisionError:
        return "division by zero"
    if kind is TypeError and "no matching overload" in detail:
        return "an operator or function was applied to values of the wrong types"
    return detail[:200]


class _Checker:
    """Walks a parse tree, following names through the input's shape."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def visit(self, node: Tree[Token], scope: Scope) -> Shape | None:
        """The shape of the value `node` gives, when it can be known."""
        kind = node.data
        if kind in ("ident", "dot_ident"):
            return self._name(node.children[0], scope)
        if kind == "member_dot":
            return self._member(node, scope)
        if kind == "member_index":
            return self._index(node, scope)
        if kind == "member_dot_arg":
            return self._method(node, scope)
        if kind in ("ident_arg", "dot_ident_arg"):
            return self._function(node, scope)
        if kind == "literal":
            token = node.children[0]
            return _LITERALS.get(token.type) if isinstance(token, str) else None
        shapes = [self.visit(child, scope) for child in _trees(node)]
        if kind in _BOOLEAN_NODES or (kind in _LOGICAL and len(shapes) > 1):
            return BOOLEAN
        return shapes[0] if len(node.children) == 1 and shapes else None

    def _name(self, token: Tree[Token] | Token, scope: Scope) -> Shape | None:
        name = str(token)
        if name in scope:
            return scope[name]
        shape = input_shape().field(name)
        if shape is not None:
            return shape
        if name not in known_functions():
            offset = token.start_pos if isinstance(token, str) else None
            self.problems.append((offset or 0, f"unknown variable '{name}'", _name_hint(name)))
        return None

    def _member(self, node: Tree[Token], scope: Scope) -> Shape | None:
        owner, token = node.children
        assert not isinstance(owner, str)
        shape = self.visit(owner, scope)
        return self._field(shape, owner, str(token), getattr(token, "start_pos", 0) or 0)

    def _field(self, shape: Shape | None, owner: Tree[Token], name: str, at: int) -> Shape | None:
        if shape is None:
            return None
        found = shape.field(name)
        if found is not None:
            return found
        what = self._text(owner)
        if shape.kind == "object":
            hint = did_you_mean(name, shape.names) or f"it has {one_of(shape.names)}"
            self.problems.append((at, f"{what} has no field '{name}'", hint))
        elif shape.kind == "list":
            hint = f"pick one, like {what}[0].{name}, or test each with {what}.exists(x, ...)"
            self.problems.append((at, f"{what} is a list; it has no field '{name}'", hint))
        else:
            self.problems.append((at, f"{what} is {_kind(shape)}; it has no fields", None))
        return None

    def _index(self, node: Tree[Token], scope: Scope) -> Shape | None:
        owner, index = _trees(node)
        shape = self.visit(owner, scope)
        self.visit(index, scope)
        if shape is not None and shape.kind == "list":
            return shape.item
        key = string_literal(index)
        if shape is not None and shape.kind == "object" and key is not None:
            return self._field(shape, owner, key, start(index))
        return None

    def _method(self, node: Tree[Token], scope: Scope) -> Shape | None:
        owner, name = node.children[0], str(node.children[1])
        assert not isinstance(owner, str)
        shape = self.visit(owner, scope)
        args = arguments(node)
        inner = dict(scope)
        if name in BINDING_MACROS and len(args) >= 2:
            bound = leaf(args[0])
            item = shape.item if shape is not None else None
            if bound is not None and bound.type == "IDENT":
                inner[str(bound)] = item
            args = args[1:]
        elif name not in known_functions():
            hint = did_you_mean(name, sorted(known_functions()))
            self.problems.append((_offset(node.children[1]), f"unknown function '{name}'", hint))
        for arg in args:
            self.visit(arg, inner)
        return _call_result(name, shape)

    def _function(self, node: Tree[Token], scope: Scope) -> Shape | None:
        token = node.children[0]
        name = str(token)
        if name not in known_functions():
            hint = did_you_mean(name, sorted(known_functions()))
            self.problems.append((_offset(token), f"unknown function '{name}'", hint))
        for arg in arguments(node):
            self.visit(arg, scope)
        return BOOLEAN if name == "has" else INTEGER if name == "size" else None

    def _text(self, node: Tree[Token]) -> str:
        if node.meta.empty:
            return "it"
        return " ".join(self.source[node.meta.start_pos : node.meta.end_pos].split())


def _trees(node: Tree[Token]) -> list[Tree[Token]]:
    return [child for child in node.children if not isinstance(child, str)]


def _offset(token: Tree[Token] | Token) -> int:
    return int(getattr(token, "start_pos", 0) or 0)


def _call_result(name: str, owner: Shape | None) -> Shape | None:
    if name in _PREDICATES or name == "exists_one":
        return BOOLEAN
    if name == "size":
        return INTEGER
    return owner if name == "filter" else None


def _name_hint(name: str) -> str:
    """A did-you-mean for an unknown top-level name, or a field of that name further in."""
    top = input_shape().names
    suggestion = did_you_mean(name, top, SYNONYMS)
    if suggestion is not None:
        return suggestion
    nested = [
        path
        for path, _ in leaves(input_shape())
        if path.rsplit(".", 1)[-1] == name and "[]" not in path
    ]
    if nested:
        return f"did you mean '{nested[0]}'?"
    return f"a rule reads {one_of(top)}"

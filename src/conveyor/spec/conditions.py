"""Job conditions (`if:`): CEL expressions over the facts of a Run.

A condition sees `branch`, `commit`, `event`, the map `env` and the function
`changed(glob)`. `celpy` (and `lark` under it) is imported inside the
functions that need it (see `conveyor.spec.cel`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from conveyor.core.errors import Location, SpecError, SpecIssue
from conveyor.core.values import frozen
from conveyor.spec.cel import (
    BINDING_MACROS,
    Problem,
    arguments,
    compile_cel,
    environment,
    is_literal,
    known_functions,
    leaf,
    start,
    string_literal,
    syntax_problem,
)
from conveyor.spec.paths import rooted_glob
from conveyor.spec.suggest import did_you_mean

if TYPE_CHECKING:
    from celpy.celtypes import Value
    from celpy.evaluation import CELFunction, Context, Result
    from lark import Token, Tree

VARIABLES = ("branch", "commit", "event", "env")
FUNCTION = "changed"
_VOCABULARY = "branch, commit, event, env.NAME and changed('glob')"


@frozen
class ConditionFacts:
    """What a condition can see about a Run."""

    branch: str
    commit: str
    event: str
    env: Mapping[str, str]
    secrets: frozenset[str] = frozenset()  # declared secrets: not in `env`, whatever is set


def check_condition(source: str) -> list[Problem]:
    """Problems in `source` as (offset in source, message, hint); empty when it is valid."""
    from celpy.celparser import CELParseError

    if not source.strip():
        return [(0, "the condition is empty", f"write an expression over {_VOCABULARY}")]
    try:
        tree = compile_cel(source)
    except CELParseError as exc:
        return [syntax_problem(source, exc, "condition")]
    return sorted(_name_problems(tree), key=lambda problem: problem[0])


def type_problems(source: str) -> list[Problem]:
    """Problems evaluating `source` meets whatever a Run's facts are: values of the wrong type.

    `check_condition` finds what its syntax and names say; this evaluates it
    with sample facts and keeps only what does not depend on them: a problem
    met with every sample (each `env` key it reads set to '0', then to '';
    `changed()` false, then true) that is an operator or a function given
    the wrong types, or a result that is not true or false. A value's own
    problem (`int('')`, an index out of range) is left to the Run.
    """
    from celpy.celparser import CELParseError

    try:
        tree = compile_cel(source)
    except CELParseError:
        return []  # check_condition says why
    keys = _env_keys(tree)
    for changed in (_never_changed, _always_changed):
        found = [_trial(source, tree, changed, dict.fromkeys(keys, v)) for v in ("0", "")]
        if all(found):
            return [found[0]] if found[0] is not None else []
    return []


def _trial(
    source: str, tree: Tree[Token], changed: Callable[[str], bool], env: Mapping[str, str]
) -> Problem | None:
    """The type problem evaluating `source` over sample facts meets, if any."""
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    facts = ConditionFacts("main", "0" * 40, "push", env)
    try:
        result = (
            environment().program(tree, functions=_functions(changed)).evaluate(_activation(facts))
        )
    except CELEvalError as exc:
        wrong = _wrong_types(exc)
        if wrong is None:
            return None  # a value's problem: the real facts decide
        return (0, f"{_named(source)} cannot be evaluated: {wrong[0]}", wrong[1])
    if not isinstance(result, celtypes.BoolType):
        message = f"{_named(source)} gives {_kind(result)}, not true or false"
        return (0, message, "compare it, like branch == 'main'")
    return None


def _never_changed(_glob: str) -> bool:
    return False


def _always_changed(_glob: str) -> bool:
    return True


def evaluate_condition(
    source: str,
    facts: ConditionFacts,
    changed: Callable[[str], bool],
    *,
    location: Location | None = None,
) -> bool:
    """Whether the job runs; SpecError when `source` cannot be evaluated to true or false."""
    from celpy import celtypes
    from celpy.celparser import CELParseError
    from celpy.evaluation import CELEvalError

    where = location or Location("<condition>", 1, 1)
    try:
        tree = compile_cel(source)
    except CELParseError:
        raise SpecError([SpecIssue(where, f"{_named(source)} is not valid CEL")]) from None
    program = environment().program(tree, functions=_functions(changed))
    try:
        result = program.evaluate(_activation(facts))
    except CELEvalError as exc:
        raise SpecError([_evaluation_issue(source, tree, facts, exc, where)]) from None
    if not isinstance(result, celtypes.BoolType):
        message = f"{_named(source)} gives {_render(result)}, not true or false"
        raise SpecError([SpecIssue(where, message, "compare it, like branch == 'main'")])
    return bool(result)


def explain_condition(
    source: str, facts: ConditionFacts, changed: Callable[[str], bool] | None = None
) -> list[tuple[str, str]]:
    """The terms `source` reads and their values, like `("branch", "'main'")`, for dry runs."""
    from celpy.celparser import CELParseError

    try:
        tree = compile_cel(source)
    except CELParseError:
        return []
    values: dict[str, str] = {}
    for term in _terms(tree):
        kind, name = term
        if kind == "variable" and name in ("branch", "commit", "event"):
            values[name] = _quote(getattr(facts, name))
        elif kind == "env":
            value = facts.env.get(name)
            values[f"env.{name}"] = "not set" if value is None else _quote(value)
        elif kind == "changed" and changed is not None:
            values[f"changed({_quote(name)})"] = "true" if changed(name) else "false"
    return list(values.items())


def _functions(changed: Callable[[str], bool]) -> dict[str, CELFunction]:
    """The functions a condition may call beside CEL's own: `changed()`, and `matches()`
    without the regular expression library's log of a pattern that does not compile."""
    return {FUNCTION: _changed_function(changed), "matches": _matches}


def _matches(text: Value, pattern: Value) -> Result:
    """`text.matches(pattern)` as CEL's own, with RE2; a bad pattern is an error said once."""
    import re2
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    options = re2.Options()
    options.log_errors = False  # else RE2 writes its own lines to stderr
    try:
        found = re2.search(str(pattern), str(text), options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args else "invalid"
        return CELEvalError(_BAD_PATTERN, re2.error, (reason,))
    return celtypes.BoolType(found is not None)


def _changed_function(changed: Callable[[str], bool]) -> CELFunction:
    from celpy import celtypes

    def call(glob: Value) -> Value:
        """`changed(glob)` as CEL calls it."""
        if not isinstance(glob, str):  # celpy gives a plain str for 'a' + s
            raise TypeError("changed() takes a glob as text")
        return celtypes.BoolType(changed(str(glob)))

    return call


def _activation(facts: ConditionFacts) -> Context:
    from celpy import celtypes

    env = {celtypes.StringType(k): celtypes.StringType(v) for k, v in facts.env.items()}
    return {
        "branch": celtypes.StringType(facts.branch),
        "commit": celtypes.StringType(facts.commit),
        "event": celtypes.StringType(facts.event),
        "env": celtypes.MapType(env),
    }


def _name_problems(tree: Tree[Token]) -> Iterator[Problem]:
    """Unknown variables and functions, with a did-you-mean."""
    bound = _bound_names(tree)
    for node in tree.iter_subtrees():
        if node.data in ("ident", "dot_ident"):
            token = node.children[0]
            if not isinstance(token, str) or token in VARIABLES or token in bound:
                continue
            yield _unknown_variable(token)
        elif node.data in ("ident_arg", "dot_ident_arg"):
            yield from _function_problems(node)


def _unknown_variable(token: Token) -> Problem:
    if token == FUNCTION:
        return (token.start_pos or 0, "'changed' is a function", "call it, like changed('src/**')")
    hint = did_you_mean(str(token), VARIABLES) or f"a condition can use {_VOCABULARY}"
    return (token.start_pos or 0, f"unknown variable '{token}'", hint)


def _function_problems(node: Tree[Token]) -> Iterator[Problem]:
    token = node.children[0]
    assert isinstance(token, str)
    args = arguments(node)
    if token == FUNCTION:
        if len(args) != 1:
            message = f"changed() takes one glob, found {len(args)} arguments"
            yield (token.start_pos or 0, message, "write changed('src/**')")
            return
        glob = string_literal(args[0]) if is_literal(args[0]) else None
        if is_literal(args[0]) and glob is None:
            message = "changed() takes a glob as text"
            yield (start(args[0]), message, "write changed('src/**')")
        elif glob is not None and (glob.startswith("/") or rooted_glob("", glob) is None):
            message = f"changed('{glob}') leads outside the workspace, where no change is seen"
            hint = "globs are relative to the directory that holds conveyor.yaml"
            yield (start(args[0]), message, hint)
        return
    if token in known_functions():
        return
    suggestion = did_you_mean(str(token), [FUNCTION, *sorted(known_functions())])
    yield (token.start_pos or 0, f"unknown function '{token}'", suggestion)


def _bound_names(tree: Tree[Token]) -> set[str]:
    """Variables that macros like `list.exists(x, x > 1)` bind."""
    bound: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and node.children[1] in BINDING_MACROS:
            args = arguments(node)
            name = leaf(args[0]) if args else None
            if name is not None and name.type == "IDENT":
                bound.add(str(name))
    return bound


def _terms(tree: Tree[Token]) -> Iterator[tuple[str, str]]:
    """What the expression reads, in source order: variables, env keys, changed() globs."""
    found: list[tuple[int, tuple[str, str]]] = []
    for node in tree.iter_subtrees():
        first = node.children[0] if node.children else None
        if node.data == "ident" and isinstance(first, str):
            found.append((first.start_pos or 0, ("variable", str(first))))
        elif node.data in ("member_dot", "member_index") and _is_env(node.children[0]):
            key = node.children[1]
            name = str(key) if isinstance(key, str) else string_literal(key)
            if name is not None:
                found.append((start(node), ("env", name)))
        elif node.data == "ident_arg" and first == FUNCTION:
            args = arguments(node)
            glob = string_literal(args[0]) if len(args) == 1 else None
            if glob is not None:
                found.append((start(node), ("changed", glob)))
    for _, term in sorted(found, key=lambda item: item[0]):
        yield term


def _is_env(node: Tree[Token] | Token) -> bool:
    name = leaf(node)
    return name is not None and name.type == "IDENT" and name == "env"


def _env_keys(tree: Tree[Token]) -> list[str]:
    return [name for kind, name in _terms(tree) if kind == "env"]


def _evaluation_issue(
    source: str, tree: Tree[Token], facts: ConditionFacts, exc: Exception, where: Location
) -> SpecIssue:
    missing = [key for key in dict.fromkeys(_env_keys(tree)) if key not in facts.env]
    if missing and len(exc.args) > 1 and exc.args[1] is KeyError:
        key = missing[0]
        if key in facts.secrets:
            message = f"{_named(source)} reads env.{key}, a secret: conditions cannot read secrets"
            hint = "decide on something that is not secret, like has(env.DEPLOY) or branch"
            return SpecIssue(where, message, hint)
        message = f"{_named(source)} reads env.{key}, which is not set"
        return SpecIssue(where, message, f"guard it: has(env.{key}) && env.{key} == '...'")
    wrong = _wrong_types(exc)
    if wrong is not None:
        return SpecIssue(where, f"{_named(source)} cannot be evaluated: {wrong[0]}", wrong[1])
    detail = str(exc.args[0]).splitlines()[0] if exc.args else type(exc).__name__
    detail = _VALUE_PROBLEMS.get(detail, detail)
    if _CEL_VALUE.search(detail):  # celpy shows values as it holds them: no value is said
        detail = "a value of the wrong kind is used"
    return SpecIssue(where, f"{_named(source)} cannot be evaluated: {detail[:200]}")


# What celpy says of an operator given the wrong types, and the words for them.
_NO_OVERLOAD = re.compile(r"found no matching overload for Token\('RULE', '(\w+)'\) applied to")
_OPERATORS = {
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "unary_not": "!",
    "unary_neg": "-",
}
_TYPE_WORDS = {
    "IntType": "a number",
    "UintType": "a number",
    "DoubleType": "a number",
    "StringType": "text",
    "BoolType": "true or false",
    "BytesType": "bytes",
    "ListType": "a list",
    "MapType": "a map",
    "NullType": "null",
    "TimestampType": "a timestamp",
    "DurationType": "a duration",
}
# celpy's words for a field asked of a value that has none, and for a value it holds.
_FIELD_OF = re.compile(r"^(\w+Type)\(.*does not support field selection$")
_CEL_VALUE = re.compile(r"\w+Type\(")
_BAD_PATTERN = "a regular expression does not compile"
_VALUE_PROBLEMS = {
    "return error for overflow": "a value could not be converted (or is out of range)",
    "invalid_argument": "an argument or an index is not valid",
}


def _wrong_types(exc: Exception) -> tuple[str, str] | None:
    """(what, hint) when celpy's error says an operator or function got the wrong types,
    a field was asked of text, or a regular expression does not compile."""
    text = str(exc.args[0]) if exc.args else ""
    selected = _FIELD_OF.search(text)
    if selected is not None:  # `env.X.user`: env values are text
        kind = _TYPE_WORDS.get(selected[1], "a value")
        return (
            f"{kind} has no fields",
            "env values are text: compare them, like env.DEPLOY == 'prod'",
        )
    if text == _BAD_PATTERN:
        reason = exc.args[2][0] if len(exc.args) > 2 and exc.args[2] else "invalid"
        hint = "write an RE2 pattern, like branch.matches('^release/[0-9]+$')"
        return f"a regular expression does not compile ({reason})", hint
    found = _NO_OVERLOAD.match(text)
    if found is not None:
        operator = _OPERATORS.get(found[1], found[1])
        kinds = [_TYPE_WORDS.get(name, name) for name in re.findall(r"celtypes\.(\w+)'", text)]
        given = " and ".join(kinds) if kinds else "these values"
        if found[1].startswith("relation"):
            hint = "compare like with like, like size(branch) > 3 or int(env.COUNT) > 3"
        else:
            hint = "convert one side, like string(size(branch)) or int(env.COUNT)"
        return f"'{operator}' cannot be applied to {given}", hint
    if text == "no such overload":
        hint = "check what it is given, like branch.startsWith('release/')"
        return "a function is given a value of the wrong type", hint
    return None


def _kind(value: object) -> str:
    return _TYPE_WORDS.get(type(value).__name__, f"the value {value}")


def _named(source: str) -> str:
    text = " ".join(source.split())
    return f"the condition `{text if len(text) <= 80 else text[:77] + '...'}`"


def _render(value: object) -> str:
    if isinstance(value, str):
        return f"the text {_quote(value)}"
    return f"the value {value}"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

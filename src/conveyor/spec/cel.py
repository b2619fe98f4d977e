"""CEL mechanics shared by job conditions and policy rules: compiling, syntax errors, the tree.

`celpy` (and `lark` under it) is imported inside the functions that need it:
it costs about 100 ms and most pipelines have no expressions at all.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import celpy
    from lark import Token, Tree

# CEL macros whose first argument names a variable bound inside the call.
BINDING_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
GLOBAL_MACROS = frozenset({"has", "dyn"})

Problem = tuple[int, str, str | None]
"""One problem in an expression: (offset in the source, message, hint)."""


@functools.cache
def environment() -> celpy.Environment:
    """The one CEL environment every expression is compiled in."""
    import celpy

    return celpy.Environment()


@functools.lru_cache(maxsize=512)
def compile_cel(source: str) -> Tree[Token]:
    """The parse tree of `source`; CELParseError when it is not valid CEL."""
    return environment().compile(source)


def syntax_problem(source: str, exc: Exception, noun: str) -> Problem:
    """Turn lark's parse error (kept as the exception's context) into plain words."""
    cause = exc.__context__
    token = getattr(cause, "token", None)
    char = getattr(cause, "char", None)
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    offset = _offset(source, line, column)
    if token is not None and token.type == "$END":
        expected: object = getattr(cause, "expected", None)
        missing = "a ')'" if expected == {"RPAR"} else "a value after the last operator"
        return (len(source.rstrip()), f"the {noun} ends too early; {missing} is missing", None)
    found = str(token) if token is not None else str(char or "")
    if found in ("'", '"'):
        return (offset, f"a quoted text in the {noun} is never closed", None)
    return (offset, f"unexpected '{found}' in the {noun}", _syntax_hint(found))


def _syntax_hint(found: str) -> str | None:
    hints = {
        "=": "compare with '=='",
        "&": "write 'and' as '&&'",
        "|": "write 'or' as '||'",
        "and": "write 'and' as '&&'",
        "or": "write 'or' as '||'",
        "not": "write 'not' as '!'",
    }
    return hints.get(found)


def _offset(source: str, line: int | None, column: int | None) -> int:
    if not line or not column:
        return 0
    lines = source.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


@functools.cache
def known_functions() -> frozenset[str]:
    """Names of CEL's standard functions and global macros."""
    from celpy.evaluation import base_functions

    names = {name for name in base_functions if name.isidentifier()}
    return frozenset(names | GLOBAL_MACROS)


def arguments(node: Tree[Token]) -> list[Tree[Token]]:
    """The arguments of a call node, in order."""
    for child in node.children:
        if not isinstance(child, str) and child.data == "exprlist":
            return [arg for arg in child.children if not isinstance(arg, str)]
    return []


def leaf(node: Tree[Token] | Token) -> Token | None:
    """The one token a chain of single-child nodes ends in, like the `x` of `(x)`."""
    while not isinstance(node, str):
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return node


def start(node: Tree[Token]) -> int:
    """Offset of the node's first character in the source."""
    return int(node.meta.start_pos) if not node.meta.empty else 0


def string_literal(node: Tree[Token] | Token) -> str | None:
    """The text of a string literal node, or None when the node is something else."""
    found = leaf(node)
    if found is None or found.type not in ("STRING_LIT", "MLSTRING_LIT"):
        return None
    # CEL's escapes are CEL's: let CEL decode the literal.
    program = environment().program(compile_cel(str(found)))
    return str(program.evaluate({}))


def is_literal(node: Tree[Token]) -> bool:
    """Whether the node is a literal value (not a name)."""
    found = leaf(node)
    return found is not None and found.type != "IDENT"

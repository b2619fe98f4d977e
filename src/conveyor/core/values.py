"""`@frozen`: a frozen, slotted dataclass that costs a third as much to create.

`@dataclass(frozen=True, slots=True)` compiles six methods for every class
(`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`),
each by a call to `exec()`, when the class is defined. A `conveyor run`
defines about forty such classes before its first job can start; on Python
3.11 compiling their methods took a third of that wait (see
docs/benchmarks.md). A `@frozen` class is the same dataclass, made by
`dataclasses` itself (`fields`, `replace`, `asdict` and `is_dataclass` work
on it, and mypy reads it as a frozen dataclass), with one difference in how:
only `__init__` is compiled for the class. Equality, hashing, `repr`, pickling
and the guard against assignment are functions shared by every such class,
which read the class's fields from a table made once per class.

What it accepts is what Conveyor uses: fields with or without defaults or
`default_factory`, `field(repr=, compare=, hash=, init=, kw_only=)`,
`kw_only=True` for the whole class, `ClassVar` attributes and
`__post_init__`. A class that defines one of the shared methods itself keeps
its own. A `@frozen` class may inherit from another, and from no other
dataclass; `InitVar` is not supported.
"""

from __future__ import annotations

import dataclasses
import operator
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")


class _Factory:
    """Stands in for a default made by `default_factory` until `__init__` makes it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


@overload
def frozen(cls: type[_T], /) -> type[_T]: ...
@overload
def frozen(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(
    cls: type[_T] | None = None, /, *, kw_only: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Make `cls` a frozen, slotted dataclass: `@frozen` or `@frozen(kw_only=True)`."""

    def wrap(cls: type[_T]) -> type[_T]:
        return _make(cls, kw_only=kw_only)

    return wrap if cls is None else wrap(cls)


def _make(cls: type[_T], *, kw_only: bool) -> type[_T]:
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base) and base.__setattr__ is not _setattr:
            raise TypeError(
                f"{cls.__qualname__}: a @frozen class inherits only from @frozen dataclasses, "
                f"not from {base.__qualname__}"
            )
    own = set(vars(cls))
    if vars(cls).get("__hash__", 0) is None and "__eq__" in own:
        own.discard("__hash__")  # Python's implicit `__hash__ = None` beside an own `__eq__`
    for name in ("__setattr__", "__delattr__"):
        if name in own:
            raise TypeError(f"{cls.__qualname__} is frozen: it cannot define {name}")
    made: Any = dataclasses.dataclass(
        init=False, repr=False, eq=False, slots=True, kw_only=kw_only
    )(cls)
    fields = dataclasses.fields(made)
    made.__init__ = _init(made, fields)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    made.__value_compare__ = staticmethod(_getter(compared))
    made.__value_hash__ = staticmethod(_getter(hashed))
    made.__value_repr__ = tuple(f.name for f in fields if f.repr)
    made.__value_names__ = tuple(f.name for f in fields)
    shared = {
        "__eq__": _eq,
        "__hash__": _hash,
        "__repr__": _repr,
        "__getstate__": _getstate,
        "__setstate__": _setstate,
    }
    for name, method in shared.items():
        if name not in own:
            setattr(made, name, method)
    made.__setattr__ = _setattr
    made.__delattr__ = _delattr
    result: type[_T] = made
    return result


def _getter(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    if len(names) > 1:
        return operator.attrgetter(*names)  # a tuple of the values, in C
    return lambda item: tuple(getattr(item, name) for name in names)


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """The class's `__init__`, compiled in one `exec()`; it sets fields as a frozen one does."""
    space: dict[str, Any] = {"__set": object.__setattr__, "__factory": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    defaulted = ""
    for index, f in enumerate(fields):
        default = f"__default{index}"
        factory = f"__make{index}"
        if f.default is not dataclasses.MISSING:
            space[default] = f.default
            param = f"{f.name}={default}"
        elif f.default_factory is not dataclasses.MISSING:
            space[factory] = f.default_factory
            param = f"{f.name}=__factory"
        else:
            param = f.name
        if not f.init:
            if f.default is not dataclasses.MISSING:
                body.append(f"__set(self, {f.name!r}, {default})")
            elif f.default_factory is not dataclasses.MISSING:
                body.append(f"__set(self, {f.name!r}, {factory}())")
            continue
        if f.default_factory is not dataclasses.MISSING:
            body.append(f"if {f.name} is __factory: {f.name} = {factory}()")
        body.append(f"__set(self, {f.name!r}, {f.name})")
        if f.kw_only:
            keyword.append(param)
        elif param == f.name and defaulted:
            raise TypeError(
                f"{cls.__qualname__}: field {f.name!r} without a default "
                f"follows {defaulted!r}, which has one"
            )
        else:
            positional.append(param)
            defaulted = defaulted or (f.name if param != f.name else "")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}) -> None:\n" + "".join(
        f"    {line}\n" for line in body or ["pass"]
    )
    exec(source, space)  # noqa: S102 - the source is made above from field names only
    init: Callable[..., None] = space["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def _eq(self: Any, other: Any) -> Any:  # a bool, or NotImplemented for another class
    if other.__class__ is self.__class__:
        key = self.__value_compare__
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__value_hash__(self))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__value_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _setattr(self: object, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in self.__value_names__)


def _setstate(self: Any, state: tuple[object, ...]) -> None:
    for name, item in zip(self.__value_names__, state, strict=True):
        object.__setattr__(self, name, item)

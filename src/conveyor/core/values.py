"""`@frozen` and `@mutable`: dataclasses that cost little to create and nothing to import.

With `@dataclass(frozen=True, slots=True)` every class compiles six methods,
each by its own `exec()`, and importing `dataclasses` imports `inspect` (with
`ast`, `dis` and `tokenize`). A `conveyor run` defines about fifty such
classes before its first job can start; on Python 3.11 that was a third of
the wait (docs/benchmarks.md). The classes made here are dataclasses all the
same: `dataclasses.fields`, `asdict`, `replace` and `is_dataclass` work on
them, and mypy checks them as dataclasses (`dataclass_transform`). What
differs is how they are made:

- Only `__init__` is compiled for a class. Equality, hashing, `repr`,
  pickling and, for `@frozen`, the guard against assignment are functions
  every class shares, reading the class's table of fields.
- The fields are read here, from the class's annotations and defaults.
  `dataclasses` is imported the first time something asks a class for
  `__dataclass_fields__` (`dataclasses.fields()` or pydantic, say), and
  then describes the same fields.

`@frozen` is `@dataclass(frozen=True, slots=True)`; `@mutable` is
`@dataclass`, or `@dataclass(slots=True)` with `slots=True`. Both take
`kw_only=True`. Fields may have defaults, `field(default_factory=...)`, and
`field(init=, repr=, compare=, hash=, kw_only=)`; `ClassVar` annotations are
not fields; `__post_init__` runs after `__init__`. A class may inherit from
another made here, and from no other dataclass. A class keeps the methods it
defines itself. `InitVar` and `KW_ONLY` are refused rather than guessed at.
"""

from __future__ import annotations

import operator
import re
import reprlib
from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    TypeVar,
    dataclass_transform,
    get_origin,
    overload,
)

_T = TypeVar("_T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Factory:
    """Stands in for a default made by `default_factory` until `__init__` makes it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


class Field:
    """One field of a class made here: what `field()` says, then its name and type."""

    __slots__ = ("compare", "default", "factory", "hash", "init", "kw_only", "name", "repr", "type")

    def __init__(
        self,
        *,
        default: Any,
        factory: Any,
        init: bool,
        repr: bool,  # the names `dataclasses.field` uses
        hash: bool | None,
        compare: bool,
        kw_only: Any,
    ) -> None:
        if default is not MISSING and factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.default, self.factory, self.init, self.repr = default, factory, init, repr
        self.hash, self.compare, self.kw_only = hash, compare, kw_only
        self.name = ""
        self.type: object = None

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, factory={self.factory!r})"


@overload
def field(
    *,
    default: _T,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: bool = ...,
) -> _T: ...
@overload
def field(
    *,
    default_factory: Callable[[], _T],
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: bool = ...,
) -> _T: ...
@overload
def field(
    *,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: bool = ...,
) -> Any: ...
def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    kw_only: Any = MISSING,
) -> Any:
    """A field with options, as `dataclasses.field` takes them."""
    return Field(
        default=default,
        factory=default_factory,
        init=init,
        repr=repr,
        hash=hash,
        compare=compare,
        kw_only=kw_only,
    )


@overload
def frozen(cls: type[_T], /) -> type[_T]: ...
@overload
def frozen(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(
    cls: type[_T] | None = None, /, *, kw_only: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """`cls` as a frozen, slotted dataclass: `@frozen` or `@frozen(kw_only=True)`."""

    def wrap(cls: type[_T]) -> type[_T]:
        return _make(cls, frozen=True, slots=True, kw_only=kw_only)

    return wrap if cls is None else wrap(cls)


@overload
def mutable(cls: type[_T], /) -> type[_T]: ...
@overload
def mutable(*, slots: bool = False, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(field_specifiers=(field,))
def mutable(
    cls: type[_T] | None = None, /, *, slots: bool = False, kw_only: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """`cls` as a dataclass whose fields may be assigned: `@mutable`, `@mutable(slots=True)`."""

    def wrap(cls: type[_T]) -> type[_T]:
        return _make(cls, frozen=False, slots=slots, kw_only=kw_only)

    return wrap if cls is None else wrap(cls)


if TYPE_CHECKING:
    from dataclasses import replace as replace  # noqa: PLC0414 - mypy checks the changes
else:

    def replace(obj, /, **changes):
        """A copy of `obj` with `changes`, as `dataclasses.replace` makes one."""
        for f in obj.__class__.__value_fields__:
            if not f.init:
                if f.name in changes:
                    raise ValueError(
                        f"field {f.name} is declared with init=False, it cannot be replaced"
                    )
            elif f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return obj.__class__(**changes)


# `ClassVar[...]`, however it is spelled in an annotation kept as text.
_CLASS_VAR = re.compile(r"\s*(?:typing\.|t\.)?ClassVar\b")
_REFUSED = re.compile(r"\s*(?:dataclasses\.)?(InitVar|KW_ONLY)\b")


def _make(cls: type[_T], *, frozen: bool, slots: bool, kw_only: bool) -> type[_T]:
    if slots and "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__} already specifies __slots__")
    for base in cls.__mro__[1:]:
        if base.__dict__.get("__value_frozen__", frozen) != frozen:
            kinds = ("frozen", "non-frozen") if frozen else ("non-frozen", "frozen")
            raise TypeError(f"{cls.__qualname__}: cannot inherit {kinds[0]} from {kinds[1]}")
    inherited = _inherited(cls)
    own = _own_fields(cls, kw_only)
    fields = {**inherited, **{f.name: f for f in own}}
    table = tuple(fields.values())
    defined = set(vars(cls))
    if vars(cls).get("__hash__", 0) is None and "__eq__" in defined:
        defined.discard("__hash__")  # Python's implicit `__hash__ = None` beside an own `__eq__`
    if frozen and defined & {"__setattr__", "__delattr__"}:
        raise TypeError(
            f"{cls.__qualname__} is frozen: it cannot define __setattr__ or __delattr__"
        )
    _check_order(cls, table)
    init = _LazyInit(table)
    methods: dict[str, Any] = {
        "__init__": init,
        "__eq__": _eq,
        "__hash__": _hash if frozen else None,
        "__repr__": _repr,
        "__match_args__": tuple(f.name for f in table if f.init and not f.kw_only),
    }
    if slots:
        methods |= {"__getstate__": _getstate, "__setstate__": _setstate}
    space = {name: item for name, item in methods.items() if name not in defined}
    if cls.__doc__ is None:
        space["__doc__"] = _signature(cls, table)
    space |= {
        "__value_fields__": table,
        "__value_frozen__": frozen,
        "__value_compare__": staticmethod(_getter(f.name for f in table if f.compare)),
        "__value_hash__": staticmethod(
            _getter(f.name for f in table if (f.compare if f.hash is None else f.hash))
        ),
        "__value_repr__": tuple(f.name for f in table if f.repr),
        "__value_names__": tuple(fields),
        "__dataclass_fields__": _DataclassView("__dataclass_fields__"),
        "__dataclass_params__": _DataclassView("__dataclass_params__"),
    }
    if frozen:
        space |= {"__setattr__": _setattr, "__delattr__": _delattr}
    if not slots:
        for name, item in space.items():
            setattr(cls, name, item)
        for f in own:  # a class attribute would shadow nothing, but reads as a default
            if f.name in vars(cls) and isinstance(vars(cls)[f.name], Field):
                delattr(cls, f.name)
        _defer(init, cls)
        return cls
    # Slots are made with the class: make it again, as `dataclasses` does.
    body = {k: v for k, v in vars(cls).items() if k not in fields}
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    taken = {name for base in cls.__mro__[1:] for name in getattr(base, "__slots__", ())}
    body["__slots__"] = tuple(f.name for f in own if f.name not in taken)
    body["__qualname__"] = cls.__qualname__
    metaclass: Any = type(cls)
    made: type[_T] = metaclass(cls.__name__, cls.__bases__, body | space)
    _defer(init, made)
    return made


def _inherited(cls: type) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        table = base.__dict__.get("__value_fields__")
        if table is not None:
            fields |= {f.name: f for f in table}
        elif "__dataclass_fields__" in base.__dict__:
            raise TypeError(
                f"{cls.__qualname__}: a class made by @frozen or @mutable inherits only "
                f"from another, not from the dataclass {base.__qualname__}"
            )
    return fields


def _own_fields(cls: type, kw_only: bool) -> list[Field]:
    fields = []
    # Not inspect.get_annotations: importing inspect is what this module avoids.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if _is_class_var(annotation):
            continue
        if isinstance(annotation, str) and (refused := _REFUSED.match(annotation)):
            raise TypeError(f"{cls.__qualname__}.{name}: {refused[1]} is not supported here")
        if type(annotation).__module__ == "dataclasses":  # InitVar[...] or KW_ONLY, evaluated
            raise TypeError(f"{cls.__qualname__}.{name}: {annotation!r} is not supported here")
        given = cls.__dict__.get(name, MISSING)
        if type(given).__module__ == "dataclasses":  # dataclasses.field(), not ours
            raise TypeError(f"{cls.__qualname__}.{name}: use conveyor.core.values.field")
        f = given if isinstance(given, Field) else field(default=given)
        f.name, f.type = name, annotation
        if f.kw_only is MISSING:
            f.kw_only = kw_only
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(f.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        fields.append(f)
    return fields


def _is_class_var(annotation: object) -> bool:
    if isinstance(annotation, str):
        return _CLASS_VAR.match(annotation) is not None
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def _getter(names: Any) -> Callable[[object], tuple[object, ...]]:
    names = tuple(names)
    if len(names) > 1:
        return operator.attrgetter(*names)  # a tuple of the values, in C
    return lambda item: tuple(getattr(item, name) for name in names)


def _check_order(cls: type, fields: tuple[Field, ...]) -> None:
    """Refuse, as the class is made, what `__init__` could not take."""
    defaulted = ""
    for f in fields:
        if not f.init or f.kw_only:
            continue
        if f.default is MISSING and f.factory is MISSING:
            if defaulted:
                raise TypeError(
                    f"{cls.__qualname__}: field {f.name!r} without a default "
                    f"follows {defaulted!r}, which has one"
                )
        else:
            defaulted = defaulted or f.name


# Classes whose `__init__` is not compiled yet; `compile_pending()` compiles them.
_pending: list[_LazyInit] = []


class _LazyInit:
    """A class's `__init__`, compiled the first time it is looked up.

    Most classes a command defines are used late or never: `conveyor run`
    starts its first jobs before it compiles the `__init__` of classes it has
    not yet made an instance of. Any lookup (making an instance,
    `inspect.signature`) compiles it and puts the function in its place.
    """

    __slots__ = ("fields", "owner")

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.owner: type | None = None

    def __get__(self, instance: object, owner: type) -> Any:
        made = self.owner or owner
        if made.__dict__.get("__init__") is self:
            type.__setattr__(made, "__init__", _init(made, self.fields))
        function = made.__dict__["__init__"]
        return function if instance is None else function.__get__(instance, owner)


def _defer(init: _LazyInit, owner: type) -> None:
    if owner.__dict__.get("__init__") is init:  # not the class's own
        init.owner = owner
        _pending.append(init)


def compile_pending() -> None:
    """Compile the `__init__` of every class made so far: work for a moment nothing waits."""
    while True:
        try:
            lazy = _pending.pop()  # atomic: two callers never take one class
        except IndexError:
            return
        if lazy.owner is not None:
            lazy.__get__(None, lazy.owner)


def _init(cls: type, fields: tuple[Field, ...]) -> Callable[..., None]:
    """The class's `__init__`, compiled in one `exec()`; it sets fields as a frozen one does.

    Its globals are its own (the defaults and factories), not the module's:
    compiling it inside a maker function taking them, as `dataclasses` does,
    costs a fifth more. Its annotations are the fields' (as text), for
    `inspect.signature`; `typing.get_type_hints` resolves builtin names only.
    """
    names = {f.name for f in fields}
    me = "__value_self__" if "self" in names else "self"
    given: dict[str, Any] = {"__set": object.__setattr__, "__factory": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for index, f in enumerate(fields):
        default, factory = f"__default{index}", f"__make{index}"
        if f.default is not MISSING:
            given[default] = f.default
            param = f"{f.name}={default}"
        elif f.factory is not MISSING:
            given[factory] = f.factory
            param = f"{f.name}=__factory"
        else:
            param = f.name
        if not f.init:
            if f.default is not MISSING:
                body.append(f"__set({me}, {f.name!r}, {default})")
            elif f.factory is not MISSING:
                body.append(f"__set({me}, {f.name!r}, {factory}())")
            continue
        if f.factory is not MISSING:
            body.append(f"if {f.name} is __factory: {f.name} = {factory}()")
        body.append(f"__set({me}, {f.name!r}, {f.name})")
        (keyword if f.kw_only else positional).append(param)
    if hasattr(cls, "__post_init__"):
        body.append(f"{me}.__post_init__()")
    params = ", ".join([me, *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    exec(source, given)  # noqa: S102 - the source is made above from field names only
    init: Callable[..., None] = given["__init__"]
    init.__module__ = cls.__module__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {f.name: f.type for f in fields if f.init} | {"return": None}
    return init


def _signature(cls: type, fields: tuple[Field, ...]) -> str:
    """`Name(a: 'int', b: 'str' = 'x')`, the docstring `dataclasses` gives a class without one."""
    params: list[str] = []
    for f in fields:
        if not f.init:
            continue
        if f.kw_only and "*" not in params:
            params.append("*")
        text = f"{f.name}: {f.type!r}"
        if f.default is not MISSING:
            text += f" = {f.default!r}"
        elif f.factory is not MISSING:
            text += " = <factory>"
        params.append(text)
    return f"{cls.__name__}({', '.join(params)})"


# `__eq__` and `__repr__` are compiled from text, as those of `dataclasses` are, so
# that tools which recognise a dataclass's own methods by that (pytest's assertion
# diffs, rich) show these classes field by field too.
_SHARED = """
def __create_fn__():
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            key = self.__value_compare__
            return key(self) == key(other)
        return NotImplemented
    def __repr__(self):
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__value_repr__)
        return f"{self.__class__.__qualname__}({shown})"
    return __eq__, __repr__
"""
_made: dict[str, Any] = {}
exec(compile(_SHARED, "<string>", "exec"), _made)  # noqa: S102 - the constant above
_eq, _plain_repr = _made["__create_fn__"]()
_repr = reprlib.recursive_repr()(_plain_repr)


class _DataclassView:
    """`__dataclass_fields__` or `__dataclass_params__`, made by `dataclasses` when first read.

    They describe a class made here to `dataclasses` itself and to what reads
    dataclasses (pydantic, say): the same fields, with the same options.
    """

    def __init__(self, attribute: str) -> None:
        self._attribute = attribute

    def __get__(self, instance: object, owner: type) -> Any:
        import dataclasses  # only what asks for it pays for importing it

        # A plain subclass has its base's fields: the view is made for, and kept on, the base.
        made = next(c for c in owner.__mro__ if "__value_fields__" in c.__dict__)
        fields: tuple[Field, ...] = made.__value_fields__  # type: ignore[attr-defined]
        space: dict[str, Any] = {
            "__annotations__": {f.name: f.type for f in fields},
            "__module__": made.__module__,
            "__qualname__": made.__qualname__,
        }
        for f in fields:
            options: dict[str, Any] = {"init": f.init, "repr": f.repr, "hash": f.hash}
            options |= {"compare": f.compare, "kw_only": f.kw_only}
            if f.default is not MISSING:
                options["default"] = f.default
            if f.factory is not MISSING:
                options["default_factory"] = f.factory
            space[f.name] = dataclasses.field(**options)
        frozen: bool = made.__value_frozen__  # type: ignore[attr-defined]
        shadow: Any = dataclasses.dataclass(frozen=frozen)(type(made.__name__, (), space))
        for name in ("__dataclass_fields__", "__dataclass_params__"):
            type.__setattr__(made, name, getattr(shadow, name))  # read once per class
        return getattr(shadow, self._attribute)


def _hash(self: Any) -> int:
    return hash(self.__value_hash__(self))


def _setattr(self: Any, name: str, value: object) -> None:
    if _guards(self, name):
        raise _frozen_error(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if _guards(self, name):
        raise _frozen_error(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _guards(self: Any, name: str) -> bool:
    """As in dataclasses: a plain subclass may set attributes of its own, never a field."""
    return "__value_fields__" in type(self).__dict__ or name in self.__value_names__


def _frozen_error(message: str) -> Exception:
    """`dataclasses.FrozenInstanceError`, which callers may expect, imported when raised."""
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(message)


def _getstate(self: Any) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in self.__value_names__)


def _setstate(self: Any, state: tuple[object, ...]) -> None:
    for name, item in zip(self.__value_names__, state, strict=True):
        object.__setattr__(self, name, item)

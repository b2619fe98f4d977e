"""`@frozen` behaves as `@dataclass(frozen=True, slots=True)` does, for what Conveyor uses."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import FrozenInstanceError, dataclass, field
from typing import ClassVar

import pytest

from conveyor.core.values import frozen


@frozen
class Point:
    """A value with a default, a factory, a field left out of comparison and of repr."""

    x: int
    y: str
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RefPoint:
    """The same fields as `Point`, made by dataclasses itself."""

    x: int
    y: str
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    note: str = field(default="", compare=False, repr=False)


@frozen(kw_only=True)
class Named:
    name: str
    size: int = 0


@frozen
class Base:
    id: int
    kind: ClassVar[str] = "base"


@frozen(kw_only=True)
class Child(Base):
    label: str = ""


@frozen
class Checked:
    amount: int
    cached: int = field(default=0, init=False)
    seen: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("amount must not be negative")


@frozen
class Hashless:
    key: str
    cache: str = field(default="", hash=False)


def _signature(cls: type) -> list[tuple[str, object, str]]:
    """The parameters of `cls.__init__`: name, kind, and the repr of the default."""
    params = inspect.signature(cls).parameters.values()
    return [(p.name, p.kind, repr(p.default)) for p in params]


def test_it_is_a_dataclass_to_the_dataclasses_module() -> None:
    point = Point(1, "a", ("t",), {"k": 2})
    assert dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(point)] == ["x", "y", "tags", "extra", "note"]
    assert dataclasses.asdict(point) == dataclasses.asdict(RefPoint(1, "a", ("t",), {"k": 2}))
    assert dataclasses.replace(point, y="b") == Point(1, "b", ("t",), {"k": 2})
    assert dataclasses.astuple(point) == (1, "a", ("t",), {"k": 2}, "")


def test_its_init_takes_the_arguments_a_dataclass_takes() -> None:
    assert _signature(Point) == _signature(RefPoint)
    assert Point(y="b", x=1) == Point(1, "b")
    with pytest.raises(TypeError):
        Point(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, "a", (), {}, "n", "one too many")  # type: ignore[call-arg]


def test_a_factory_makes_a_new_default_for_each_instance() -> None:
    first, second = Point(1, "a"), Point(1, "a")
    assert first.extra == {} and first.extra is not second.extra


def test_repr_matches_the_dataclass_one() -> None:
    point, ref = Point(1, "a", ("t",), note="hidden"), RefPoint(1, "a", ("t",), note="hidden")
    assert repr(point).removeprefix("Point") == repr(ref).removeprefix("RefPoint")
    assert "hidden" not in repr(point)


def test_a_recursive_repr_does_not_loop() -> None:
    point = Point(1, "a", extra={})
    holder = Checked(1)
    holder.seen.append(holder.amount)
    assert repr(holder) == "Checked(amount=1, cached=0, seen=[1])"
    nested: list[object] = []
    looped = Point(2, "b", (nested,))  # type: ignore[arg-type]
    nested.append(looped)
    assert repr(looped) == "Point(x=2, y='b', tags=([...],), extra={})"
    assert repr(point) == "Point(x=1, y='a', tags=(), extra={})"


def test_equality_and_hash_follow_the_compared_fields() -> None:
    assert Point(1, "a", note="one") == Point(1, "a", note="two")
    with pytest.raises(TypeError, match="unhashable type: 'dict'"):
        hash(Point(1, "a"))  # as with a dataclass: its dict field cannot be hashed
    assert hash(Hashless("k")) == hash(Hashless("k"))
    assert Point(1, "a") != Point(2, "a")
    other: object = RefPoint(1, "a")
    assert Point(1, "a") != other  # another class is never equal
    assert Point(1, "a").__eq__(RefPoint(1, "a")) is NotImplemented
    assert {Named(name="n"), Named(name="n")} == {Named(name="n")}
    # A field with hash=False is compared, and left out of the hash only.
    assert Hashless("k", "x") != Hashless("k", "y")
    assert hash(Hashless("k", "x")) == hash(Hashless("k", "y"))


def test_a_single_compared_field_compares_and_hashes_as_a_tuple() -> None:
    assert Named(name="a") != Named(name="b")
    assert hash(Base(3)) == hash((3,))


def test_it_is_frozen() -> None:
    point = Point(1, "a")
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="cannot delete field 'x'"):
        del point.x
    with pytest.raises(FrozenInstanceError):
        point.other = 1  # type: ignore[attr-defined]
    assert not hasattr(point, "__dict__")  # slotted


def test_keyword_only_fields() -> None:
    assert Named(name="n").size == 0
    with pytest.raises(TypeError):
        Named("n")  # type: ignore[call-arg]


def test_a_subclass_takes_its_base_fields_first() -> None:
    child = Child(7, label="x")
    assert [f.name for f in dataclasses.fields(child)] == ["id", "label"]
    assert isinstance(child, Base) and child.kind == "base"
    assert child != Base(7)
    with pytest.raises(FrozenInstanceError):
        child.id = 8  # type: ignore[misc]


def test_fields_left_out_of_init_get_their_defaults_and_post_init_runs() -> None:
    checked = Checked(5)
    assert (checked.cached, checked.seen) == (0, [])
    assert "cached" not in inspect.signature(Checked).parameters
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


def test_it_pickles_and_copies() -> None:
    point = Point(1, "a", ("t",), {"k": 2}, note="n")
    for again in (pickle.loads(pickle.dumps(point)), copy.copy(point), copy.deepcopy(point)):
        assert again == point and again.note == "n" and again is not point


def test_it_works_with_match() -> None:
    match Point(1, "a"):
        case Point(1, y):
            assert y == "a"
        case _:
            pytest.fail("no match")


def test_methods_a_class_defines_are_kept() -> None:
    @frozen
    class Own:  # noqa: PLW1641 - the hash it gets is the point
        a: int

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

    assert repr(Own(1)) == "own" and Own(1) == Own(2)
    assert hash(Own(1)) == hash((1,))  # its own __eq__ without __hash__ still hashes


def test_what_it_refuses() -> None:
    with pytest.raises(TypeError, match="cannot define __setattr__"):

        @frozen
        class Mutable:
            a: int

            def __setattr__(self, name: str, value: object) -> None: ...

    @dataclass(frozen=True)
    class Plain:
        a: int

    with pytest.raises(
        TypeError, match=r"inherits only from @frozen dataclasses, not from .*Plain"
    ):

        @frozen
        class FromPlain(Plain):
            b: int = 0

    with pytest.raises(TypeError, match="field 'b' without a default follows 'a'"):

        @frozen
        class Misordered:
            a: int = 0
            b: int  # type: ignore[misc]

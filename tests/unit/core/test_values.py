"""`@frozen` behaves as `@dataclass(frozen=True, slots=True)` does, for what Conveyor uses."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
import threading
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import ClassVar, get_type_hints

import pytest

from conveyor.core.values import field, frozen, mutable, replace


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
    extra: dict[str, int] = dataclasses.field(default_factory=dict)
    note: str = dataclasses.field(default="", compare=False, repr=False)


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
        TypeError, match=r"inherits only from another, not from the dataclass .*Plain"
    ):

        @frozen
        class FromPlain(Plain):
            b: int = 0

    with pytest.raises(TypeError, match="field 'b' without a default follows 'a'"):

        @frozen
        class Misordered:
            a: int = 0
            b: int  # type: ignore[misc]


def _described(cls: type) -> list[tuple[object, ...]]:
    """What `dataclasses` says of each field of `cls`."""
    return [
        (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare, f.hash, f.kw_only)
        for f in dataclasses.fields(cls)
    ]


def test_dataclasses_describes_the_same_fields_as_for_its_own_class() -> None:
    assert _described(Point) == _described(RefPoint)
    assert _described(Named)[0][-1] is True  # kw_only
    assert Point.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert not Counter.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(Counter) and dataclasses.is_dataclass(Child)


def test_making_and_using_a_class_does_not_import_dataclasses() -> None:
    script = (
        "import sys\n"
        "from conveyor.core.values import frozen, replace\n"
        "@frozen\n"
        "class A:\n"
        "    x: int\n"
        "    y: str = 'y'\n"
        "a = replace(A(1), y='z')\n"
        "assert a == A(1, 'z') and hash(a) == hash(A(1, 'z')) and repr(a) == \"A(x=1, y='z')\"\n"
        "print(sorted(m for m in ('dataclasses', 'inspect') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_replace_agrees_with_dataclasses_replace() -> None:
    point = Point(1, "a", ("t",), note="n")
    assert replace(point, x=2) == dataclasses.replace(point, x=2) == Point(2, "a", ("t",))
    assert replace(point, x=2).note == "n"
    with pytest.raises(ValueError, match="init=False"):
        replace(Checked(1), cached=2)
    with pytest.raises(TypeError):
        replace(point, nope=1)  # type: ignore[call-arg]


@mutable
class Counter:
    name: str
    hits: list[int] = field(default_factory=list)


@mutable(slots=True)
class SlotCounter:
    count: int = 0


def test_a_mutable_class_takes_assignments_and_is_not_hashable() -> None:
    counter = Counter("c")
    counter.name = "d"
    counter.hits.append(1)
    assert counter == Counter("d", [1]) and repr(counter) == "Counter(name='d', hits=[1])"
    with pytest.raises(TypeError, match="unhashable"):
        hash(counter)
    counter.extra = 1  # type: ignore[attr-defined]  # no slots: it has a __dict__
    slotted = SlotCounter()
    slotted.count += 1
    assert slotted.count == 1 and not hasattr(slotted, "__dict__")
    assert pickle.loads(pickle.dumps(slotted)) == slotted


def test_bad_classes_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="mutable default <class 'list'> for field items"):

        @frozen
        class WithList:
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match=r"WithStdField.x: use conveyor.core.values.field"):

        @frozen
        class WithStdField:
            x: int = dataclasses.field(default=1)

    with pytest.raises(TypeError, match="InitVar is not supported"):

        @frozen
        class WithInitVar:
            x: dataclasses.InitVar[int]

    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=int)  # type: ignore[call-overload]


def test_what_tools_read_of_a_dataclass_is_there() -> None:
    @frozen
    class Bare:
        a: int
        b: str = "x"

    @dataclass(frozen=True, slots=True)
    class RefBare:
        a: int
        b: str = "x"

    assert Bare.__doc__ == (RefBare.__doc__ or "").replace("RefBare", "Bare")
    assert str(inspect.signature(Point)) == str(inspect.signature(RefPoint))  # with annotations
    assert get_type_hints(Point.__init__) == get_type_hints(RefPoint.__init__)  # builtins
    assert Point.__eq__.__code__.co_filename == "<string>"  # as pytest and rich look for


def test_pytest_shows_which_fields_differ(tmp_path: Path) -> None:
    (tmp_path / "test_diff.py").write_text(
        "from conveyor.core.values import frozen\n"
        "@frozen\n"
        "class V:\n"
        "    a: int\n"
        "    b: int\n"
        "def test_it():\n"
        "    assert V(1, 2) == V(1, 3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_diff.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Drill down into differing attribute b:" in done.stdout, done.stdout


def test_an_own_init_and_a_field_named_self_are_kept() -> None:
    @frozen
    class Parsed:
        number: int

        def __init__(self, text: str) -> None:
            object.__setattr__(self, "number", int(text))

    @frozen
    class Odd:
        self: int
        other: int = 0

    assert Parsed("5").number == 5
    assert Odd(1).self == 1 and Odd(self=2, other=3).other == 3


def test_a_frozen_dataclass_may_extend_one() -> None:
    @dataclass(frozen=True)
    class Extended(Point):
        z: int = 0

    extended = Extended(1, "a", z=2)
    assert (extended.x, extended.z) == (1, 2)
    with pytest.raises(FrozenInstanceError):
        extended.z = 3  # type: ignore[misc]


def test_init_is_compiled_when_first_looked_up_or_when_asked() -> None:
    from conveyor.core import values

    @frozen
    class Late:
        a: int

    @frozen
    class Later:
        b: int = 1

    assert not inspect.isfunction(vars(Late)["__init__"])  # not compiled yet
    assert Late(1).a == 1
    assert inspect.isfunction(vars(Late)["__init__"])
    assert "(b: 'int' = 1)" in str(inspect.signature(Later))  # compiles it too
    assert inspect.isfunction(vars(Later)["__init__"])

    @frozen
    class Pending:
        c: int

    values.compile_pending()
    assert inspect.isfunction(vars(Pending)["__init__"])
    assert Pending(3).c == 3


def test_what_dataclasses_reads_says_what_the_class_does() -> None:
    params = Point.__dataclass_params__  # type: ignore[attr-defined]
    assert (params.init, params.repr, params.eq, params.frozen) == (True, True, True, True)


def test_a_plain_subclass_reads_its_base_fields_and_may_be_extended_later() -> None:
    class Plain(Base):
        pass

    assert [f.name for f in dataclasses.fields(Plain)] == ["id"]  # read on the subclass first

    @frozen
    class Again(Plain):
        more: int = 0

    assert Again(1, 2).more == 2
    plain = Plain(3)
    with pytest.raises(FrozenInstanceError):
        plain.id = 4  # type: ignore[misc]


def test_a_plain_subclass_may_set_attributes_of_its_own() -> None:
    class WithDict(Point):  # no __slots__: it has a __dict__
        pass

    point = WithDict(1, "a")
    point.extra_note = "kept"  # type: ignore[attr-defined]
    assert point.extra_note == "kept"  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        point.x = 2  # type: ignore[misc]


def test_mixing_frozen_and_mutable_and_own_slots_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot inherit frozen from non-frozen"):

        @frozen
        class FrozenOfMutable(Counter):  # type: ignore[misc]
            pass

    with pytest.raises(TypeError, match="cannot inherit non-frozen from frozen"):

        @mutable
        class MutableOfFrozen(Point):  # type: ignore[misc]
            pass

    with pytest.raises(TypeError, match="already specifies __slots__"):

        @frozen
        class OwnSlots:
            __slots__ = ("cache",)
            a: int


def test_evaluated_initvar_and_kw_only_annotations_are_refused() -> None:
    space: dict[str, object] = {"frozen": frozen, "dataclasses": dataclasses}
    for annotation in ("dataclasses.InitVar[int]", "dataclasses.KW_ONLY"):
        source = f"@frozen\nclass A:\n    a: {annotation}\n"
        with pytest.raises(TypeError, match="is not supported here"):
            exec(source, space)  # annotations evaluated: no `from __future__ import annotations`


def test_compile_pending_from_two_threads_at_once() -> None:
    from conveyor.core import values

    made: list[type] = []
    for n in range(200):
        made.append(frozen(type(f"V{n}", (), {"__annotations__": {"a": "int"}})))
    errors: list[BaseException] = []

    def compile_all() -> None:
        try:
            values.compile_pending()
        except BaseException as exc:  # noqa: BLE001 - any error fails the test
            errors.append(exc)

    threads = [threading.Thread(target=compile_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(inspect.isfunction(vars(cls)["__init__"]) for cls in made)

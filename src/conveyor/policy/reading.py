"""Plain values (parsed JSON or YAML) to a DecisionInput and back, checked against its shape.

Missing parts take their neutral defaults. Of `time`, only `iso` (and the
`zone` it is described in) is read; the other fields follow from them and,
when given, must agree.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import zoneinfo
from collections.abc import Mapping

from conveyor.core.values import frozen
from conveyor.policy.decision_input import INPUT_VERSION, DecisionInput, TimeFacts, time_facts
from conveyor.policy.schema import Shape, describe, input_shape
from conveyor.spec.source import NodePath
from conveyor.spec.source import describe as found
from conveyor.spec.suggest import did_you_mean, one_of

_DERIVED = ("weekday", "hour", "minute", "date")


@frozen
class InputProblem:
    """One value of a plain input that does not fit, at its path."""

    path: NodePath
    message: str
    hint: str | None = None
    on_key: bool = False


class InputError(ValueError):
    """A plain input does not fit the decision input; carries every problem found."""

    def __init__(self, problems: list[InputProblem]) -> None:
        super().__init__("; ".join(f"{dotted(p.path)}: {p.message}" for p in problems))
        self.problems = problems


def read_input(data: Mapping[str, object]) -> DecisionInput:
    """The DecisionInput `data` describes; InputError naming every value that does not fit."""
    reader = _Reader()
    plain = dict(data)
    version = plain.pop("version", INPUT_VERSION)
    if version != INPUT_VERSION or isinstance(version, bool):
        reader.add(("version",), f"unsupported input version {found(version)}", "write 1")
    facts = reader.read(input_shape(), plain, ())
    if reader.problems:
        raise InputError(reader.problems)
    assert isinstance(facts, DecisionInput)
    return facts


def to_plain(facts: DecisionInput) -> dict[str, object]:
    """The input as JSON-ready values, with its format `version` first."""
    plain = _plain(facts)
    assert isinstance(plain, dict)
    return {"version": INPUT_VERSION, **plain}


def dotted(path: NodePath) -> str:
    """`release.artifacts[0].path` for `("release", "artifacts", 0, "path")`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the input"


def zone_problem(zone: str) -> tuple[str, str] | None:
    """(message, hint) when `zone` is not an IANA time zone, else None."""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(zone, _zones()) or "use an IANA name like Europe/Berlin or UTC"
        return f"'{zone}' is not a time zone", hint
    return None


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_instant(value: object) -> datetime.datetime | None:
    """A timezone-aware instant from RFC 3339 text (or a YAML timestamp), else None."""
    if isinstance(value, datetime.datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return instant if instant.tzinfo is not None else None


def _quoted(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


class _Reader:
    """Reads plain values into the input's classes, collecting every problem."""

    def __init__(self) -> None:
        self.problems: list[InputProblem] = []

    def add(
        self, path: NodePath, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        """Record a problem at `path` (on its key, with `key`)."""
        self.problems.append(InputProblem(path, message, hint, key))

    def read(self, shape: Shape, value: object, path: NodePath) -> object:
        """The value for `shape`, or None (after recording a problem) when it does not fit."""
        if value is None and shape.nullable:
            return None
        if shape.kind == "object":
            return self._object(shape, value, path)
        if shape.kind == "list":
            return self._list(shape, value, path)
        if shape.kind == "choice" and value not in shape.choices:
            hint = did_you_mean(value, shape.choices) if isinstance(value, str) else None
            self._mismatch(shape, value, path, hint)
            return None
        if shape.kind == "integer":
            return self._integer(shape, value, path)
        if shape.fact is not None and shape.fact.format == "date-time":
            instant = parse_instant(value)
            if instant is None:
                self._mismatch(shape, value, path, "like 2026-11-27T13:00:00+01:00 or ...Z")
                return None
            return instant.isoformat(timespec="seconds")
        if shape.kind == "text" and not isinstance(value, str):
            hint = "put it in quotes to make it text" if isinstance(value, int | float) else None
            self._mismatch(shape, value, path, hint)
            return None
        return value

    def _mismatch(self, shape: Shape, value: object, path: NodePath, hint: str | None) -> None:
        self.add(path, f"{dotted(path)} must be {describe(shape)}, found {found(value)}", hint)

    def _integer(self, shape: Shape, value: object, path: NodePath) -> int | None:
        fact = shape.fact
        low = fact.minimum if fact else None
        high = fact.maximum if fact else None
        if not isinstance(value, int) or isinstance(value, bool):
            self._mismatch(shape, value, path, None)
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self._mismatch(shape, value, path, None)
            return None
        return value

    def _list(self, shape: Shape, value: object, path: NodePath) -> tuple[object, ...] | None:
        assert shape.item is not None
        if not isinstance(value, list):
            self._mismatch(shape, value, path, None)
            return None
        return tuple(self.read(shape.item, item, (*path, i)) for i, item in enumerate(value))

    def _fields(self, shape: Shape, value: object, path: NodePath) -> dict[str, object] | None:
        """The fields written in an object, each checked; unknown names are problems."""
        if not isinstance(value, dict):
            self._mismatch(shape, value, path, None)
            return None
        for key in value:
            if shape.field(key) is None:
                where = dotted(path) if path else "the input"
                hint = did_you_mean(key, shape.names) or f"it has {one_of(shape.names)}"
                self.add((*path, key), f"{where} has no field '{key}'", hint, key=True)
        return {key: item for key, item in value.items() if shape.field(key) is not None}

    def _object(self, shape: Shape, value: object, path: NodePath) -> object:
        written = self._fields(shape, value, path)
        if written is None:
            return None
        if shape.build is TimeFacts:
            return self._time(written, path)
        values = {}
        for key, item in written.items():
            child = shape.field(key)
            assert child is not None
            read = self.read(child, item, (*path, key))
            if read is not None or child.nullable:
                values[key] = read
        assert shape.build is not None
        return shape.build(**values)

    def _time(self, written: dict[str, object], path: NodePath) -> TimeFacts | None:
        zone = written.get("zone", "UTC")
        if not isinstance(zone, str):
            self.add((*path, "zone"), f"time.zone must be text, found {found(zone)}")
            return None
        problem = zone_problem(zone)
        if problem is not None:
            self.add((*path, "zone"), *problem)
            return None
        if "iso" not in written:
            hint = "write the instant, like iso: '2026-11-27T13:00:00+01:00'; the rest follows"
            self.add(path, "time needs 'iso'", hint)
            return None
        instant = parse_instant(written["iso"])
        if instant is None:
            value = found(written["iso"])
            hint = "like 2026-11-27T13:00:00+01:00, with an offset or Z"
            self.add((*path, "iso"), f"time.iso must be an RFC 3339 instant, found {value}", hint)
            return None
        facts = time_facts(instant, zone)
        for key in _DERIVED:
            given, actual = written.get(key, getattr(facts, key)), getattr(facts, key)
            if given != actual:
                shown, wanted = (
                    f"'{v}'" if isinstance(v, str) else str(v) for v in (given, actual)
                )
                message = f"time.{key} is {shown}, but time.iso gives {wanted} in {zone}"
                hint = "leave out weekday, hour, minute and date: they follow from iso and zone"
                self.add((*path, key), message, hint)
        return facts

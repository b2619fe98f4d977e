"""The persisted status of a Deployment: all a controller remembers between passes.

The status is a frozen value written after every pass (as JSON) and read
back before the next. It records:

- `step`: where the strategy is (an index into `STEPS`);
- `new` and `previous`: the instances of the release being deployed and of
  the release that served before, each with its port, state and the time it
  entered that state;
- `intents`: what humans asked for (abort), interpreted by the next pass;
- `conditions`: why the Deployment is where it is, each with a reason and
  the time it became true.

The phase is never stored: it is computed from the step and the conditions,
so it cannot disagree with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast, get_args

from conveyor.core.values import frozen, replace

Phase = Literal["pending", "progressing", "succeeded", "failed", "rolled_back"]
InstanceState = Literal[
    "starting", "unhealthy", "healthy", "exited", "serving", "stopping", "stopped"
]

START, AWAIT_HEALTH, STOP_PREVIOUS, COMPLETE = range(4)
STEPS = ("start-new", "await-health", "stop-previous", "complete")
FORMAT = 1

# Condition types.
PROGRESSING = "Progressing"
FAILED = "Failed"
ABORTED = "Aborted"
ABORT_IGNORED = "AbortIgnored"

_GONE: frozenset[str] = frozenset({"stopped", "exited"})


class StatusFormatError(ValueError):
    """A stored status that cannot be read back: another format, a missing or wrong field."""


@frozen
class InstanceStatus:
    """One instance as the Deployment knows it.

    `since` is when it entered `state`; `requested_at` (new instances only)
    is when its start was first asked for, which starts its health deadline.
    """

    id: str
    version: str
    state: InstanceState
    since: float
    port: int | None = None
    requested_at: float | None = None
    detail: str = ""

    @property
    def gone(self) -> bool:
        """Whether it no longer runs (stopped, or exited by itself)."""
        return self.state in _GONE


@frozen
class Condition:
    """Why the Deployment is where it is: a type, a reason, a message, since when."""

    type: str
    reason: str
    message: str
    since: float


@frozen
class Intents:
    """What humans asked for; the next pass decides what it means."""

    abort_requested_at: float | None = None
    abort_requested_by: str | None = None


@frozen
class DeploymentStatus:
    """The whole remembered state of one Deployment; see the module's docstring."""

    deployment: int
    version: str
    step: int = START
    new: tuple[InstanceStatus, ...] = ()
    previous: tuple[InstanceStatus, ...] = ()
    intents: Intents = Intents()
    conditions: tuple[Condition, ...] = ()

    @property
    def phase(self) -> Phase:
        """pending, progressing, succeeded, failed (health) or rolled_back (aborted)."""
        if self.condition(ABORTED) is not None:
            return "rolled_back"
        if self.condition(FAILED) is not None:
            return "failed"
        if self.step >= COMPLETE:
            return "succeeded"
        if self.step == START:
            return "pending"
        return "progressing"

    @property
    def rolling_back(self) -> bool:
        """Whether the new instances are being (or have been) stopped after a failure or abort."""
        return self.phase in ("failed", "rolled_back")

    @property
    def settled(self) -> bool:
        """Whether no pass has anything left to do."""
        if self.phase == "succeeded":
            return True
        return self.rolling_back and all(instance.gone for instance in self.new)

    @property
    def step_name(self) -> str:
        """The name of the current step."""
        return STEPS[min(self.step, COMPLETE)]

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type, if it holds."""
        for condition in self.conditions:
            if condition.type == type_:
                return condition
        return None

    def with_condition(self, condition: Condition) -> DeploymentStatus:
        """This status with `condition` set; one of the same type and reason keeps its time."""
        current = self.condition(condition.type)
        if current is not None and current.reason == condition.reason:
            condition = replace(condition, since=current.since)
        others = tuple(c for c in self.conditions if c.type != condition.type)
        return replace(self, conditions=(*others, condition))


def request_abort(status: DeploymentStatus, *, by: str, now: float) -> DeploymentStatus:
    """Record a human's request to abort; the first request wins."""
    if status.intents.abort_requested_at is not None:
        return status
    return replace(status, intents=Intents(abort_requested_at=now, abort_requested_by=by))


def to_json(status: DeploymentStatus) -> dict[str, object]:
    """The status as JSON-ready values (the phase is left out: it is computed)."""
    return {
        "format": FORMAT,
        "deployment": status.deployment,
        "version": status.version,
        "step": status.step,
        "new": [_instance_json(instance) for instance in status.new],
        "previous": [_instance_json(instance) for instance in status.previous],
        "intents": {
            "abort_requested_at": status.intents.abort_requested_at,
            "abort_requested_by": status.intents.abort_requested_by,
        },
        "conditions": [
            {"type": c.type, "reason": c.reason, "message": c.message, "since": c.since}
            for c in status.conditions
        ],
    }


def from_json(data: Mapping[str, object]) -> DeploymentStatus:
    """Read back what `to_json` wrote; anything else is a `StatusFormatError`."""
    if data.get("format") != FORMAT:
        raise StatusFormatError(f"deployment status format {data.get('format')!r} is not {FORMAT}")
    try:
        return _status(data)
    except KeyError as err:
        raise StatusFormatError(f"deployment status has no field {err}") from None


def _status(data: Mapping[str, object]) -> DeploymentStatus:
    intents = _mapping(data["intents"])
    return DeploymentStatus(
        deployment=_int(data["deployment"]),
        version=str(data["version"]),
        step=_int(data["step"]),
        new=tuple(_instance(_mapping(item)) for item in _list(data["new"])),
        previous=tuple(_instance(_mapping(item)) for item in _list(data["previous"])),
        intents=Intents(
            abort_requested_at=_float_or_none(intents.get("abort_requested_at")),
            abort_requested_by=_str_or_none(intents.get("abort_requested_by")),
        ),
        conditions=tuple(_condition(_mapping(item)) for item in _list(data["conditions"])),
    )


def _instance_json(instance: InstanceStatus) -> dict[str, object]:
    return {
        "id": instance.id,
        "version": instance.version,
        "state": instance.state,
        "since": instance.since,
        "port": instance.port,
        "requested_at": instance.requested_at,
        "detail": instance.detail,
    }


def _instance(data: Mapping[str, object]) -> InstanceStatus:
    state = str(data["state"])
    if state not in get_args(InstanceState):
        raise StatusFormatError(f"unknown instance state {state!r}")
    port = data.get("port")
    return InstanceStatus(
        id=str(data["id"]),
        version=str(data["version"]),
        state=cast(InstanceState, state),
        since=_float(data["since"]),
        port=None if port is None else _int(port),
        requested_at=_float_or_none(data.get("requested_at")),
        detail=str(data.get("detail", "")),
    )


def _condition(data: Mapping[str, object]) -> Condition:
    return Condition(
        type=str(data["type"]),
        reason=str(data["reason"]),
        message=str(data["message"]),
        since=_float(data["since"]),
    )


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise StatusFormatError(f"expected an object, found {type(value).__name__}")
    return cast(Mapping[str, object], value)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise StatusFormatError(f"expected a list, found {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StatusFormatError(f"expected an integer, found {value!r}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatusFormatError(f"expected a number, found {value!r}")
    return float(value)


def _float_or_none(value: object) -> float | None:
    return None if value is None else _float(value)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)

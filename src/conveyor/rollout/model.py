"""The values a rollout decision reads and produces: spec, observation, actions, events.

Actions are requests for side effects, each with an idempotency key
(`deployment/<id>/<verb>/<instance>`) so that performing one twice, after a
crash or a repeated pass, has the effect of performing it once. Events are
what changed, recorded by whoever persists the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from conveyor.core.values import field, frozen
from conveyor.rollout.status import DeploymentStatus

HealthState = Literal["healthy", "unhealthy", "exited"]
EventValue = str | int | float | bool | None | tuple[str, ...]


@frozen
class RollingSpec:
    """What one rolling Deployment must achieve: `instances` of `version`, healthy in time.

    `within_s` is how long each new instance has, from the moment its start
    was first asked for, to answer its health check.
    """

    deployment: int
    service: str
    environment: str
    version: str
    instances: int
    within_s: float

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError(
                f"a rolling deployment needs at least one instance, not {self.instances}"
            )
        if self.within_s <= 0:
            raise ValueError(f"the health deadline must be positive, not {self.within_s:g}s")

    def instance_id(self, ordinal: int) -> str:
        """The id of the new instance number `ordinal` (from 1); the same on every pass."""
        return f"{self.service}.{self.environment}.{self.deployment}.{ordinal}"

    def key(self, verb: str, instance: str) -> str:
        """The idempotency key of an action on `instance`."""
        return f"deployment/{self.deployment}/{verb}/{instance}"


@frozen
class ObservedInstance:
    """One instance as the target last saw it; `health` is None when not checked this time."""

    id: str
    version: str
    port: int | None
    health: HealthState | None = None
    detail: str = ""


@frozen
class Observed:
    """What runs in the environment now, with the health of the instances checked.

    An instance that is not listed is not running. The driver also lists, as
    `exited`, an instance it tried to start that could not start or died at once.
    """

    instances: tuple[ObservedInstance, ...] = ()

    def get(self, instance: str) -> ObservedInstance | None:
        """The observation of `instance`, or None when it is not running."""
        for seen in self.instances:
            if seen.id == instance:
                return seen
        return None


@frozen
class StartInstance:
    """Start the new instance `instance` of `version` (a no-op when it already runs)."""

    key: str
    instance: str
    version: str


@frozen
class StopInstance:
    """Stop `instance` (a no-op when it no longer runs)."""

    key: str
    instance: str


@frozen
class CheckHealth:
    """Check the health of `instance` and report it in the next observation."""

    key: str
    instance: str


Action = StartInstance | StopInstance | CheckHealth


@frozen
class RolloutEvent:
    """One state change of a Deployment, as recorded in the event log."""

    kind: str
    data: Mapping[str, EventValue] = field(default_factory=dict)


@frozen
class Decision:
    """The outcome of one pass: the status to persist, the actions to perform, the events."""

    status: DeploymentStatus
    actions: tuple[Action, ...] = ()
    events: tuple[RolloutEvent, ...] = ()

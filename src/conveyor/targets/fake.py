"""A Target in memory: instances are records, health is scripted; for tests of what drives it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from conveyor.core.clock import Clock, FrozenClock
from conveyor.release.model import Release
from conveyor.targets.base import (
    HealthResult,
    Instance,
    InstanceDir,
    InstanceId,
    InstanceSpec,
    Placement,
    TargetError,
)

# The instance checked, and how many times it has been checked (from 1).
HealthScript = Callable[[Instance, int], HealthResult]


def always_healthy(_instance: Instance, _check: int) -> HealthResult:
    """The default script: every check passes."""
    return HealthResult("healthy")


class FakeTarget:
    """Plays `health(instance, check)` for each check; records every start, stop and prepare.

    Versions in `unstartable` cannot be started (`start` raises `TargetError`).
    `crash` makes an instance exit, as if its process died.
    """

    def __init__(
        self,
        health: HealthScript = always_healthy,
        *,
        unstartable: Collection[str] = (),
        clock: Clock | None = None,
        first_port: int = 20_000,
    ) -> None:
        self._health = health
        self._unstartable = frozenset(unstartable)
        self._clock = clock or FrozenClock()
        self._next_port = first_port
        self._checks: dict[InstanceId, int] = {}
        self.running: dict[InstanceId, Instance] = {}
        self.prepared: list[tuple[str, InstanceId]] = []
        self.started: list[InstanceId] = []
        self.stopped: list[InstanceId] = []

    def prepare(self, release: Release, instance_id: InstanceId) -> InstanceDir:
        self.prepared.append((release.version, instance_id))
        return InstanceDir(instance_id, Path("fake") / instance_id)

    def start(self, spec: InstanceSpec) -> Instance:
        if spec.id in self.running:
            return self.running[spec.id]
        if spec.version in self._unstartable:
            raise TargetError(f"cannot start instance {spec.id}: {spec.version} is unstartable")
        instance = Instance(
            spec.id, spec.placement, spec.version, self._port(), self._clock.now(), spec.health
        )
        self.running[spec.id] = instance
        self.started.append(spec.id)
        return instance

    def health(self, instance: Instance) -> HealthResult:
        if instance.id not in self.running:
            return HealthResult("exited", "it is no longer running")
        check = self._checks.get(instance.id, 0) + 1
        self._checks[instance.id] = check
        return self._health(instance, check)

    def stop(self, instance: Instance) -> None:
        if self.running.pop(instance.id, None) is not None:
            self.stopped.append(instance.id)

    def list_instances(self, placement: Placement) -> list[Instance]:
        found = [i for i in self.running.values() if i.placement == placement]
        return sorted(found, key=lambda instance: instance.id)

    def run(self, instance_id: str, placement: Placement, version: str) -> Instance:
        """Put an instance in place as if an earlier Deployment had started it."""
        instance = Instance(
            InstanceId(instance_id), placement, version, self._port(), self._clock.now()
        )
        self.running[instance.id] = instance
        return instance

    def crash(self, instance_id: str) -> None:
        """Make an instance exit by itself."""
        self.running.pop(InstanceId(instance_id), None)

    def _port(self) -> int:
        port = self._next_port
        self._next_port += 1
        return port

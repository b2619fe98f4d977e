"""The Target port: the strict point where a Release meets running processes.

A Target runs the instances of a service in an environment. It knows how to
materialize a Release's artifacts, start an instance from them, check its
health, stop it, and find the instances that run now, including those
started by another `conveyor` process that has since exited. It knows
nothing of strategies, steps or deployments: the rollout decides, the
Target does.

The operations are idempotent where a controller may repeat them after a
crash: preparing an instance that is already prepared returns the same
directory, and stopping an instance that no longer runs does nothing.
Failures to do what was asked (an artifact that cannot be read, a command
that cannot be launched) raise `TargetError`; an instance that starts and
then dies is not an error but an outcome, seen in `health` and
`list_instances`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NewType, Protocol

from conveyor.core.errors import ConveyorError
from conveyor.core.values import frozen
from conveyor.release.model import Release

InstanceId = NewType("InstanceId", str)
HealthState = Literal["healthy", "unhealthy", "exited"]


class TargetError(ConveyorError):
    """A target could not do what was asked (an infrastructure fault)."""


@frozen
class Placement:
    """Where instances belong: one service in one environment."""

    service: str
    environment: str

    def __str__(self) -> str:
        return f"{self.service}/{self.environment}"


@frozen
class HealthCheck:
    """How an instance answers for its health: an HTTP path, and how long to wait."""

    path: str = "/healthz"
    timeout_s: float = 2.0


@frozen
class InstanceDir:
    """A Release materialized for one instance.

    `cwd` holds the plain artifacts at their paths in the Release; packages
    installed from wheels are in the `python_path` directories.
    """

    instance_id: InstanceId
    cwd: Path
    python_path: tuple[Path, ...] = ()


@frozen
class InstanceSpec:
    """Everything needed to start one instance: where, what, how, and how to check it."""

    directory: InstanceDir
    placement: Placement
    version: str
    command: str
    health: HealthCheck = HealthCheck()

    @property
    def id(self) -> InstanceId:
        """The id of the instance this starts."""
        return self.directory.instance_id


@frozen
class Instance:
    """A started instance: what it runs, where it answers, since when (epoch seconds)."""

    id: InstanceId
    placement: Placement
    version: str
    port: int
    started_at: float
    health: HealthCheck = HealthCheck()
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        """`host:port`, where it serves."""
        return f"{self.host}:{self.port}"


@frozen
class HealthResult:
    """The answer to one health check; `detail` says why it is not healthy."""

    state: HealthState
    detail: str = ""

    @property
    def healthy(self) -> bool:
        """Whether the instance answered 2xx."""
        return self.state == "healthy"


class Target(Protocol):
    """Runs the instances of services; see the module's docstring."""

    def prepare(self, release: Release, instance_id: InstanceId) -> InstanceDir:
        """Materialize the Release's artifacts in a directory of the instance's own.

        Every artifact is checked against its digest. Preparing an instance
        that is already prepared returns its directory unchanged.
        """
        ...

    def start(self, spec: InstanceSpec) -> Instance:
        """Launch the instance detached, on a free port given to it as `PORT`.

        The instance outlives the process that started it. Returns once it
        runs (not once it is healthy); an instance that dies at once is still
        returned and is then seen as exited.
        """
        ...

    def health(self, instance: Instance) -> HealthResult:
        """Check the instance now: `exited` when it no longer runs, else its HTTP answer."""
        ...

    def stop(self, instance: Instance) -> None:
        """Stop the instance and everything it started; a no-op when it no longer runs."""
        ...

    def list_instances(self, placement: Placement) -> list[Instance]:
        """The instances of `placement` that run now, whoever started them, by id."""
        ...

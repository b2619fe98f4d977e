"""The validated `delivery:` section: how a service's Releases move through Environments.

Produced by the loader from `conveyor.yaml`; frozen values, read by the
release and rollout services. Nothing downstream re-validates them.
"""

from __future__ import annotations

from datetime import datetime

from conveyor.core.errors import Location
from conveyor.core.values import frozen
from conveyor.spec.windows import Window

ROLES = ("viewer", "developer", "approver", "release-manager", "admin")
STRATEGIES = ("rolling",)


@frozen
class Health:
    """How an instance is known to be healthy: an HTTP path answering 2xx."""

    http: str = "/healthz"
    timeout_s: float = 2.0
    within_s: float = 30.0


@frozen
class Approvals:
    """How many people must approve, and which roles may."""

    count: int
    roles: tuple[str, ...]


@frozen
class Freeze:
    """A period in which nothing is promoted, and why."""

    start: datetime
    end: datetime
    reason: str

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


@frozen
class Requirements:
    """The Gates of a Promotion into one Environment."""

    after: str | None = None
    soak_s: float | None = None
    approvals: Approvals | None = None
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    policies: tuple[str, ...] = ()
    signed: bool = True


@frozen
class Environment:
    """One ordered stage a Release is promoted into."""

    name: str
    location: Location
    auto: bool = False
    instances: int = 1
    strategy: str = "rolling"
    change_record: bool = False
    requires: Requirements = Requirements()


@frozen
class Delivery:
    """What makes a Release of the service, how it runs, and where it goes."""

    service: str
    artifacts: tuple[str, ...]
    run: str
    environments: tuple[Environment, ...]
    location: Location
    health: Health = Health()

    def environment(self, name: str) -> Environment:
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(environment.name for environment in self.environments)

"""The validated Pipeline: frozen values the engine works on.

These are produced by `conveyor.spec.loader.load_pipeline` and never built
from user text anywhere else. Nothing downstream re-validates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conveyor.core.errors import Location
from conveyor.core.values import field, frozen

if TYPE_CHECKING:
    from conveyor.spec.delivery import Delivery

SPEC_VERSION = 1


@frozen
class RetryPolicy:
    """`max` extra attempts after the first; the wait doubles from `backoff_s`."""

    max: int = 0
    backoff_s: float = 1.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2 is the first retry)."""
        return self.backoff_s * (2.0 ** max(0, attempt - 2))


@frozen
class Concurrency:
    """At most one holder of `group` runs at a time, across all runs.

    With `cancel_in_progress`, a newer run's holder cancels the older one's
    instead of waiting for it.
    """

    group: str
    cancel_in_progress: bool = False


@frozen
class Job:
    """One node of the DAG, after matrix expansion.

    Paths in `inputs`, `outputs` and `reports_junit` are glob patterns
    relative to `workdir`, which is relative to the workspace root (posix,
    "." for the root). `inputs is None` means none were declared: the cache
    key then covers the workspace's files.
    """

    name: str
    run: str
    location: Location
    base_name: str = ""
    needs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "."
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] = ()
    reports_junit: tuple[str, ...] = ()
    timeout_s: float | None = None
    retry: RetryPolicy = RetryPolicy()
    allow_failure: bool = False
    cache: bool = True
    condition: str | None = None
    condition_location: Location | None = None
    matrix: Mapping[str, str] = field(default_factory=dict)
    runs_on: tuple[str, ...] = ()
    concurrency: Concurrency | None = None


@frozen
class Pipeline:
    """The `jobs:` of a conveyor.yaml with everything resolved, in file order."""

    path: str
    digest: str
    jobs: tuple[Job, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    version: int = SPEC_VERSION
    delivery: Delivery | None = None
    concurrency: Concurrency | None = None

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self.jobs)

"""Fixtures for the local target: a content store, releases of a tiny HTTP service, cleanup.

Every process an instance starts is killed when the test ends, passed or
failed, including instances started by other processes into the same root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.release.model import Release, ReleaseArtifact
from conveyor.targets.base import InstanceId, InstanceSpec
from conveyor.targets.local import LocalTarget

from .harness import (
    COMMAND,
    HEALTH,
    PLACEMENT,
    SERVICE,
    MakeRelease,
    kill_everything_under,
    release_of,
)


@pytest.fixture
def cas(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "cas")


@pytest.fixture
def make_release(cas: ContentStore) -> MakeRelease:
    """A Release of the service whose one artifact is `service.py`, with the given behaviour."""

    def build(
        version: str,
        *,
        health: int = 200,
        exit_after_s: float | None = None,
        child: bool = False,
    ) -> Release:
        source = SERVICE.format(
            version=version, health=health, exit_after_s=exit_after_s, child=child
        )
        blob = cas.put_bytes(source.encode())
        return release_of(version, (ReleaseArtifact("service.py", blob.digest, blob.size),))

    return build


@pytest.fixture
def target_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "target"
    yield root
    kill_everything_under(root)


@pytest.fixture
def target(target_root: Path, cas: ContentStore) -> LocalTarget:
    return LocalTarget(target_root, cas, kill_grace_s=2.0, bind_wait_s=5.0)


@pytest.fixture
def launch(target: LocalTarget) -> Callable[[Release, str], InstanceSpec]:
    """Prepare an instance of a release and return the spec that starts it."""

    def spec(release: Release, instance_id: str) -> InstanceSpec:
        directory = target.prepare(release, InstanceId(instance_id))
        return InstanceSpec(directory, PLACEMENT, release.version, COMMAND, HEALTH)

    return spec

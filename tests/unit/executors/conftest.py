"""Each executor test that asks for `both_ways` runs twice: jobs spawned by `Popen`, and by
`posix_spawn`, which the local executor uses when a job's directory is its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.executors import local


@dataclass
class Ways:
    """How this run of a test starts jobs, and the programs posix_spawn spawned."""

    way: str
    spawned: list[str]


@pytest.fixture(params=["popen", "posix_spawn"])
def both_ways(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Ways]:
    """Run the test with this process in `tmp_path` (where the tests' jobs run: posix_spawn)
    or elsewhere (Popen); `_spawn_here` must be used exactly when this process is there."""
    spawned: list[str] = []
    spawn_here = local._spawn_here

    def counted(argv: list[str], env: dict[str, str], path: str) -> local._Spawned:
        spawned.append(path)
        return spawn_here(argv, env, path)

    monkeypatch.setattr(local, "_spawn_here", counted)
    monkeypatch.chdir(tmp_path if request.param == "posix_spawn" else tmp_path.parent)
    yield Ways(request.param, spawned)
    if request.param == "popen":
        assert not spawned, "a job not in this process's directory was spawned by posix_spawn"

"""Fixtures for the end-to-end tests: a fresh workspace per test, cleaned up afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Workspace, WorkspaceFactory


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[WorkspaceFactory]:
    """Make a workspace holding `spec` as conveyor.yaml and `files`; cleaned up afterwards."""
    made: list[Workspace] = []

    def make(spec: str | None = None, *, files: dict[str, str] | None = None) -> Workspace:
        n = len(made)
        root = tmp_path / ("ws" if n == 0 else f"ws{n}")
        side = tmp_path / ("side" if n == 0 else f"side{n}")
        root.mkdir()
        side.mkdir()
        ws = Workspace(root, side)
        if spec is not None:
            ws.spec(spec)
        for rel, text in (files or {}).items():
            ws.write(rel, text)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.cleanup()

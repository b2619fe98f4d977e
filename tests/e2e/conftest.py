"""Fixtures for the end-to-end tests: a fresh workspace per test, cleaned up afterwards."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .support import Workspace, WorkspaceFactory


@pytest.fixture(scope="session")
def migrated_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory made by `conveyor db upgrade`, copied into workspaces to save time.

    Migrating costs about half a second per new workspace; tests about fresh
    state (`fresh=True`) still pay it.
    """
    root = tmp_path_factory.mktemp("template")
    side = tmp_path_factory.mktemp("template-side")
    (root / "conveyor.yaml").write_text("version: 1\njobs:\n  a:\n    run: 'true'\n")
    code, out, err = Workspace(root, side).cli("db", "upgrade")
    assert code == 0, err
    assert "upgraded from empty" in out
    return root / ".conveyor"


@pytest.fixture
def workspace(tmp_path: Path, migrated_state: Path) -> Iterator[WorkspaceFactory]:
    """Make a workspace holding `spec` as conveyor.yaml and `files`; cleaned up afterwards.

    Its state directory starts out migrated, unless `fresh` asks for none at all.
    """
    made: list[Workspace] = []

    def make(
        spec: str | None = None, *, files: dict[str, str] | None = None, fresh: bool = False
    ) -> Workspace:
        n = len(made)
        root = tmp_path / ("ws" if n == 0 else f"ws{n}")
        side = tmp_path / ("side" if n == 0 else f"side{n}")
        root.mkdir()
        side.mkdir()
        if not fresh:
            shutil.copytree(
                migrated_state, root / ".conveyor", ignore=shutil.ignore_patterns("*.lock")
            )
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


POSTGRES = os.environ.get("CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def database_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a schema of their own, dropped afterwards."""
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

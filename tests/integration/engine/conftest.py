"""Fixtures for the engine: a real workspace, store and cache under tmp_path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.engine.service import open_store
from conveyor.engine.workspace import discover

from .harness import Harness


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git sees neither the caller's configuration nor a repository above tmp_path."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)


SPEC = "version: 1\njobs:\n  placeholder: {run: 'true'}\n"


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file at the head revision, made once: migrating costs far more than a copy."""
    root = tmp_path_factory.mktemp("template")
    (root / "conveyor.yaml").write_text(SPEC)
    workspace = discover(root / "conveyor.yaml", environ={})
    open_store(workspace).close()
    return workspace.state_dir / "conveyor.db"


@pytest.fixture
def harness(tmp_path: Path, migrated_store: Path) -> Iterator[Harness]:
    """A workspace outside git with a migrated store; its services are closed afterwards."""
    root = tmp_path / "ws"
    root.mkdir()
    spec = root / "conveyor.yaml"
    spec.write_text(SPEC)
    workspace = discover(spec, environ={})
    workspace.ensure_state_dir()
    shutil.copyfile(migrated_store, workspace.state_dir / "conveyor.db")
    made = Harness(root, workspace)
    yield made
    made.close()

"""The workspace's key for hashing secret values into fingerprints."""

from __future__ import annotations

import stat
from pathlib import Path

from conveyor.engine.keys import load_secret_key


def test_the_key_is_made_once_and_then_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = load_secret_key(state)
    assert len(first) == 32
    assert load_secret_key(state) == first
    assert [p.name for p in state.iterdir()] == ["secret.key"]


def test_the_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    load_secret_key(tmp_path)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_each_workspace_has_its_own_key(tmp_path: Path) -> None:
    assert load_secret_key(tmp_path / "a") != load_secret_key(tmp_path / "b")

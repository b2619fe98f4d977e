"""Loading conveyor.yaml, reusing the validated result while the file is unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conveyor import __version__
from conveyor.core import digest
from conveyor.spec import serialize
from conveyor.spec.pipeline import Pipeline
from conveyor.spec.reading import read_spec


def load(path: str, state_dir: Path) -> Pipeline:
    """The Pipeline in `path` (shown in errors as given), from the parse cache when unchanged."""
    data = read_spec(path)
    key = digest.of_bytes(f"{__version__}\0{serialize.FORMAT}\0{path}\0".encode() + data)
    cached = state_dir / "specs" / (key.removeprefix(digest.PREFIX) + ".json")
    try:
        return serialize.from_dict(json.loads(cached.read_bytes()))
    except (OSError, ValueError):
        pass
    from conveyor.spec.loader import parse_pipeline  # pydantic and YAML only on a miss

    pipeline = parse_pipeline(data, path)
    _write(cached, json.dumps(serialize.to_dict(pipeline)).encode())
    return pipeline


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        _trim(path.parent, keep=32)
    except OSError:
        pass  # only a cache: the next run parses again


def _trim(directory: Path, *, keep: int) -> None:
    """Keep the parse cache small: only the newest `keep` results."""
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)

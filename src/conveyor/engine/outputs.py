"""Finding the files a job's `outputs` and `reports` patterns name."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Expanded:
    """Files a job's patterns name, patterns that name none, and files that lead outside."""

    files: list[str]
    missing: list[str]
    outside: list[str]


def expand(root: Path, workdir: str, patterns: Iterable[str]) -> Expanded:
    """Root-relative posix paths of the files matched, and what did not match safely.

    Patterns are relative to the job's workdir; a matched directory stands
    for every file below it. A file whose real path (through symlinks) leaves
    the workspace is never collected: it is listed in `outside`.
    """
    patterns = tuple(patterns)
    if not patterns:
        return Expanded([], [], [])  # the common case: no filesystem work at all
    real_root = os.path.realpath(root)
    base = (root / workdir).resolve()
    found: dict[str, None] = {}
    missing: list[str] = []
    outside: list[str] = []
    for pattern in patterns:
        # Path.glob has no include_hidden before 3.12; dotfiles are outputs too.
        hits = sorted(glob.glob(pattern, root_dir=base, recursive=True, include_hidden=True))  # noqa: PTH207
        files = [f for hit in hits for f in _files_below(base / hit)]
        if not files:
            missing.append(pattern)
        for file in files:
            relative = file.relative_to(root.resolve()).as_posix()
            real = os.path.realpath(file)
            if real.startswith(real_root + os.sep):
                found[relative] = None
            else:
                outside.append(relative)
    return Expanded(list(found), missing, outside)


def _files_below(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(path):
        out.extend(Path(dirpath) / name for name in sorted(names))
    return out

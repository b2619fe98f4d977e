"""Finding the files a job's `outputs` and `reports` patterns name."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path


def expand(root: Path, workdir: str, patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Root-relative posix paths of the files matched, and the patterns that matched none.

    Patterns are relative to the job's workdir; a matched directory stands
    for every file below it.
    """
    base = (root / workdir).resolve()
    found: dict[str, None] = {}
    missing: list[str] = []
    for pattern in patterns:
        # Path.glob has no include_hidden before 3.12; dotfiles are outputs too.
        hits = sorted(glob.glob(pattern, root_dir=base, recursive=True, include_hidden=True))  # noqa: PTH207
        files = [f for hit in hits for f in _files_below(base / hit)]
        if not files:
            missing.append(pattern)
        for file in files:
            found[file.relative_to(root.resolve()).as_posix()] = None
    return list(found), missing


def _files_below(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(path):
        out.extend(Path(dirpath) / name for name in sorted(names))
    return out

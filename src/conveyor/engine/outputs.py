"""Finding the files a job's `outputs` and `reports` patterns name, and storing outputs.

A job's outputs are checked and stored the same way whether it ran here or on
a runner (`output_problem`, then `store_outputs`); what fails the job is said the same way.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from conveyor.artifacts.cas import ContentStore, UnreadableFile
from conveyor.core.masking import Masker
from conveyor.core.records import OutputRecord
from conveyor.core.values import frozen
from conveyor.spec.paths import STATE_DIR_NAME


@frozen
class Expanded:
    """Files a job's patterns name, patterns that name none, and files that lead outside."""

    files: list[str]
    missing: list[str]
    outside: list[str]


def expand(
    root: Path, workdir: str, patterns: Iterable[str], *, state_dir: Path | None = None
) -> Expanded:
    """Root-relative posix paths of the files matched, and what did not match safely.

    Patterns are relative to the job's workdir; a matched directory stands
    for every file below it. A file whose real path (through symlinks) leaves
    the workspace is never collected: it is listed in `outside`. Nor is a
    file of Conveyor's own state (`.conveyor/`, and `state_dir` when the
    workspace holds it under another name): its keys, its database and its
    locks are no job's outputs, whatever a pattern such as `**` names.
    """
    patterns = tuple(patterns)
    if not patterns:
        return Expanded([], [], [])  # the common case: no filesystem work at all
    real_root = os.path.realpath(root)
    states = {real_root + os.sep + STATE_DIR_NAME}
    if state_dir is not None:
        states.add(os.path.realpath(state_dir))
    base = (root / workdir).resolve()
    found: dict[str, None] = {}
    missing: list[str] = []
    outside: list[str] = []
    for pattern in patterns:
        # Path.glob has no include_hidden before 3.12; dotfiles are outputs too.
        hits = sorted(glob.glob(pattern, root_dir=base, recursive=True, include_hidden=True))  # noqa: PTH207
        files = [f for hit in hits for f in _files_below(_plain(base / hit))]
        real_files = [(file, os.path.realpath(file)) for file in files]
        real_files = [(f, real) for f, real in real_files if not _below(real, states)]
        if not real_files:
            missing.append(pattern)
        for file, real in real_files:
            relative = file.relative_to(root.resolve()).as_posix()
            if real.startswith(real_root + os.sep):
                found[relative] = None
            else:
                outside.append(relative)
    return Expanded(list(found), missing, outside)


def _plain(path: Path) -> Path:
    """`path` without `..` steps (a glob may climb out of its workdir: `../dist/*`), so that
    every job names a file alike; as it is when a symlink makes the steps lead elsewhere."""
    if ".." not in path.parts:
        return path
    plain = Path(os.path.normpath(path))
    return plain if os.path.realpath(plain) == os.path.realpath(path) else path


def _below(path: str, directories: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d + os.sep) for d in directories)


def output_problem(found: Expanded, masker: Masker) -> str | None:
    """Why the outputs `found` fail their job before any is stored, or None."""
    if found.missing:
        return "outputs " + ", ".join(f"'{p}'" for p in found.missing) + " matched no files"
    if found.outside:
        return f"output {found.outside[0]} leads outside the workspace through a symlink"
    if masker and any(masker.mask(path) != path for path in found.files):
        return "an output's file name contains a secret value"
    return None


def store_outputs(
    root: Path, files: Iterable[str], cas: ContentStore
) -> tuple[tuple[OutputRecord, ...], str | None]:
    """Store each output file; a file the job left unreadable fails the job (the reason).

    Only the store itself failing is a fault (`ArtifactError`, raised).
    """
    records = []
    for path in files:
        try:
            blob = cas.put_file(root / path)
        except UnreadableFile as exc:  # the job's own doing: it fails, the Run goes on
            return (), f"output {path} cannot be read: {exc.reason}"
        records.append(OutputRecord(path, blob.digest, blob.size))
    return tuple(records), None


def _files_below(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(path):
        out.extend(Path(dirpath) / name for name in sorted(names))
    return out

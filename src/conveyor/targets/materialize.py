"""A Release's artifacts laid out for an instance: plain files copied, wheels unpacked.

A wheel is installed by unpacking it, which is what an installer does for a
pure-Python wheel: its packages and `.dist-info` go into `site/`, with the
contents of its `.data/purelib` and `.data/platlib` beside them; console
scripts, headers and data files are not installed (an instance is started by
its `run` command, not by a script). Unpacking needs no network, no index and
no installer, and takes milliseconds where `pip install --target` takes
about a second. Dependencies are not resolved: a Release brings what it needs.

Every other artifact is copied into `files/` at its path in the Release (so
the `run` command sees the layout of the workspace that built it), checked
against its digest on the way. The directory is built under a temporary name
and renamed into place, so it is either complete or absent.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from conveyor.core.errors import ArtifactError
from conveyor.release.model import Release, ReleaseArtifact
from conveyor.targets.base import TargetError

FILES = "files"
SITE = "site"
_INSTALLED_DATA = ("purelib", "platlib")


class BlobSource(Protocol):
    """Where artifact content comes from: the content-addressed store."""

    def restore(self, digest: str, dest: Path, *, mode: int | None = None) -> None:
        """Copy the blob `digest` to `dest`, checking it against its digest."""
        ...


def materialize(release: Release, blobs: BlobSource, dest: Path) -> Path:
    """Lay out `release` at `dest` (unless already there) and return `dest`."""
    if dest.is_dir():
        return dest
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        for artifact in release.artifacts:
            _place(artifact, blobs, partial)
        (partial / FILES).mkdir(parents=True, exist_ok=True)
        (partial / SITE).mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(dest)
        except OSError:
            if not dest.is_dir():  # another preparer did not win the race: a real failure
                raise
    except (ArtifactError, OSError, zipfile.BadZipFile) as err:
        raise TargetError(f"cannot prepare {release.service} {release.version}: {err}") from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def _place(artifact: ReleaseArtifact, blobs: BlobSource, root: Path) -> None:
    relative = _relative(artifact.path)
    if relative.suffix == ".whl":
        wheel = root / "wheels" / relative.name
        wheel.parent.mkdir(parents=True, exist_ok=True)
        blobs.restore(artifact.digest, wheel)
        unpack_wheel(wheel, root / SITE)
        wheel.unlink()
        return
    dest = root / FILES / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    blobs.restore(artifact.digest, dest)


def unpack_wheel(wheel: Path, site: Path) -> None:
    """Install the wheel at `wheel` into `site` by unpacking it (see the module's docstring)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            relative = _wheel_destination(member.filename)
            if relative is None:
                continue
            dest = site.joinpath(*relative.parts)
            if member.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)


def _wheel_destination(name: str) -> PurePosixPath | None:
    """Where a wheel member goes under `site/`; None for what is not installed."""
    relative = _relative(name)
    parts = relative.parts
    if not parts[0].endswith(".data"):
        return relative
    if len(parts) > 2 and parts[1] in _INSTALLED_DATA:
        return PurePosixPath(*parts[2:])
    return None


def _relative(path: str) -> PurePosixPath:
    """`path` as a relative path that stays below where it is placed."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or not relative.parts or ".." in relative.parts:
        raise TargetError(f"artifact path {path!r} leaves the instance's directory")
    return relative

"""Source bundles: a checkout's files as a `.tar.gz`, made by the CLI and checked by the server.

A bundle holds what a job without declared inputs sees: in git, the tracked
files with their uncommitted changes; elsewhere, every file but the state
directory. The server trusts none of it: `check_bundle` refuses absolute
paths, `..`, links leading outside the bundle, hard links and device files
before anything is stored or unpacked, naming the member and the fix.
"""

from __future__ import annotations

import gzip
import posixpath
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from conveyor.core.errors import UsageError
from conveyor.core.values import frozen
from conveyor.engine.sources import Sources

BUNDLE_TYPE = "application/gzip"


@frozen
class BundleListing:
    """A checked bundle: its regular files and links, by path."""

    files: tuple[str, ...]
    links: tuple[str, ...]


def bundle_paths(root: Path, state_dir: Path, spec: str) -> list[str]:
    """The root-relative files a bundle of `root` holds, the pipeline file `spec` included."""
    listing = set(Sources(root, state_dir).implicit_files())
    listing.add(spec)
    return sorted(p for p in listing if (root / p).is_file() or (root / p).is_symlink())


def write_bundle(root: Path, paths: Iterable[str], out: BinaryIO) -> None:
    """Write `paths` below `root` to `out` as a gzip tar; times and owners left out."""
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = tar.gettarinfo(str(root / path), arcname=path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isreg():
                with (root / path).open("rb") as data:
                    tar.addfile(info, data)
            elif info.issym():
                tar.addfile(info)


def check_bundle(blob: BinaryIO, *, where: str = "bundle") -> BundleListing:
    """Every member of a bundle, checked; UsageError naming the first member refused."""
    files: list[str] = []
    links: list[str] = []
    try:
        with tarfile.open(fileobj=blob, mode="r:gz") as tar:
            for member in tar:
                _check_member(member, where)
                if member.isreg():
                    files.append(member.name)
                elif member.issym():
                    links.append(member.name)
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UsageError(
            f"{where}: not a readable .tar.gz ({exc}); send the checkout as `conveyor run "
            "--remote` packs it"
        ) from None
    finally:
        blob.seek(0)
    return BundleListing(tuple(files), tuple(links))


def _check_member(member: tarfile.TarInfo, where: str) -> None:
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or "\\" in name or ".." in path.parts or not name.strip("/."):
        raise UsageError(
            f"{where}: member '{name[:200]}' is not a path inside the checkout; bundle members "
            "must be relative paths without '..'"
        )
    if member.isdir() or member.isreg():
        return
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise UsageError(
                f"{where}: symlink '{name[:200]}' leads outside the checkout "
                f"(to '{member.linkname[:200]}'); bundle only links that stay inside it"
            )
        return
    kind = "hard link" if member.islnk() else "device or special file"
    raise UsageError(
        f"{where}: member '{name[:200]}' is a {kind}; bundles hold only files, directories "
        "and symlinks inside the checkout"
    )


def read_member(blob: BinaryIO, name: str) -> bytes | None:
    """The content of the regular file `name` in a checked bundle; None when absent."""
    try:
        with tarfile.open(fileobj=blob, mode="r:gz") as tar:
            for member in tar:
                if member.name in (name, f"./{name}") and member.isreg():
                    data = tar.extractfile(member)
                    return data.read() if data is not None else None
        return None
    finally:
        blob.seek(0)


def extract_bundle(blob: BinaryIO, dest: Path) -> None:
    """Unpack a checked bundle into `dest` (tarfile's `data` filter guards it once more)."""
    try:
        with tarfile.open(fileobj=blob, mode="r:gz") as tar:
            tar.extractall(dest, filter="data")
    finally:
        blob.seek(0)

"""The content-addressed store: immutable blobs named by the sha256 of their bytes.

Layout under the root, created lazily:

    sha256/<first 2 hex>/<other 62 hex>   one read-only blob per digest
    tmp/                                  files being written, never read as blobs

A blob appears under its name only once it is complete: it is written to
`tmp/` and hashed on the way, then hard-linked into place, which fails rather
than overwrite. So readers see a whole blob or none, concurrent writers of the
same content agree without a lock, and a process killed mid-write leaves only
a temp file, which `remove_stale_temp` deletes later.

Blobs are not fsynced. A killed process cannot tear a file the kernel already
holds, and after a power loss the paths that hand content out verify it, so a
torn blob is found, deleted and rebuilt instead of used.

Blob paths are plain strings and digests are checked through a memo: a re-run
restores every output of every job, and pathlib objects and repeated digest
checks were most of the cost of that hot path.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from conveyor.core.digest import CHUNK, PREFIX, is_digest, of_bytes, of_file, of_stream, short
from conveyor.core.errors import ArtifactError
from conveyor.core.values import frozen

BLOB_MODE = 0o444
TEMP_MAX_AGE_S = 3600.0
TEMP_SUFFIX = ".conveyor-tmp"


@frozen
class Blob:
    """A stored blob: its digest and its size in bytes."""

    digest: str
    size: int


@frozen
class BlobInfo:
    """A blob as listed for pruning; `last_used` is when it was last put (epoch seconds)."""

    digest: str
    size: int
    last_used: float


# The names follow the error families (`NotFound`, `Conflict`): no Error suffix.
class UnreadableFile(ArtifactError):
    """A file to store cannot be read: a fault of whoever made it, not of the store."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.reason = reason


class MissingBlob(ArtifactError):
    """A digest that should be in the store is not."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"artifact {short(digest)} is not in the content store")


class CorruptBlob(ArtifactError):
    """A blob's content no longer matches its digest; the blob has been deleted."""

    def __init__(self, digest: str, found: str) -> None:
        self.digest = digest
        self.found = found
        super().__init__(
            f"artifact {short(digest)} is corrupt: its content hashes to {short(found)};"
            " the blob was deleted"
        )


class ContentStore:
    """Immutable, deduplicated blobs under `root`, addressed by `sha256:<hex>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "sha256"
        self._blob_dir = os.fspath(self._blobs)
        self._tmp = root / "tmp"

    def put_file(self, path: Path) -> Blob:
        """Store the file at `path`, read once while hashing, and return its blob.

        `UnreadableFile` when the file cannot be opened; `ArtifactError` when
        the store cannot take it.
        """
        try:
            src = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as err:
            raise UnreadableFile(path, _reason(err)) from err
        try:
            with src:
                return self._put_stream(src)
        except OSError as err:
            raise ArtifactError(f"cannot store {path}: {_reason(err)}") from err

    def put_stream(self, src: BinaryIO) -> Blob:
        """Store what `src` yields (read to its end, then closed) and return its blob.

        Content already in memory (a `BytesIO`) goes as `put_bytes` does: when
        it is stored already, nothing is written. `ArtifactError` when it cannot
        be read or the store cannot take it.
        """
        if isinstance(src, io.BytesIO):
            with src:
                return self.put_bytes(src.getvalue())
        try:
            with src:
                return self._put_stream(src)
        except OSError as err:
            raise ArtifactError(f"cannot store a stream: {_reason(err)}") from err

    def put_bytes(self, data: bytes) -> Blob:
        """Store `data` and return its blob."""
        blob = Blob(of_bytes(data), len(data))
        # The digest is known before writing, so content already stored costs one stat.
        try:
            if self._refresh(blob):
                return blob
            return self._put_stream(io.BytesIO(data))
        except OSError as err:
            raise ArtifactError(f"cannot store {short(blob.digest)}: {_reason(err)}") from err

    def has(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return os.path.isfile(self._path(digest))  # noqa: PTH113

    def size(self, digest: str) -> int:
        """The size in bytes of a stored blob; `MissingBlob` when absent."""
        try:
            return os.stat(self._path(digest)).st_size  # noqa: PTH116
        except FileNotFoundError:
            raise MissingBlob(digest) from None

    def open(self, digest: str) -> BinaryIO:
        """A binary read stream over a stored blob; the caller verifies if it must."""
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError:
            raise MissingBlob(digest) from None

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """The content of a stored blob, checked against its digest unless told not to."""
        try:
            with open(self._path(digest), "rb") as src:
                data = src.read()
        except FileNotFoundError:
            raise MissingBlob(digest) from None
        except OSError as err:
            raise ArtifactError(f"cannot read {short(digest)}: {_reason(err)}") from err
        if verify:
            self._check(digest, of_bytes(data))
        return data

    def complete(self, prefix: str) -> list[str]:
        """The stored digests that begin with `prefix` (`sha256:` and at least 2 hex digits)."""
        hexpart = prefix.removeprefix(PREFIX).lower()
        if len(hexpart) < 2 or not all(c in "0123456789abcdef" for c in hexpart):
            return []
        found = list_dir(Path(self._blob_dir) / hexpart[:2])
        return sorted(
            f"{PREFIX}{hexpart[:2]}{entry.name}"
            for entry in found
            if entry.name.startswith(hexpart[2:])
            and is_valid_digest(PREFIX + hexpart[:2] + entry.name)
        )

    def verify(self, digest: str) -> None:
        """Check a stored blob against its digest, reading it in chunks.

        `MissingBlob` when absent; `CorruptBlob` (the blob deleted) when its
        content no longer hashes to its digest.
        """
        try:
            with open(self._path(digest), "rb") as src:
                found = of_stream(src)
        except FileNotFoundError:
            raise MissingBlob(digest) from None
        except OSError as err:
            raise ArtifactError(f"cannot read {short(digest)}: {_reason(err)}") from err
        self._check(digest, found)

    def _check(self, digest: str, found: str) -> None:
        """Delete a blob whose content hashes to `found`, not `digest` (`CorruptBlob`)."""
        if found != digest:
            self.delete(digest)
            raise CorruptBlob(digest, found)

    def restore(self, digest: str, dest: Path, *, mode: int | None = None) -> None:
        """Copy a blob to `dest`, verifying it on the way; an identical `dest` is left alone.

        `mode` sets the permission bits (0o777 at most) of `dest`; without it a
        new file gets the usual mode for new files.
        """
        with self.open(digest) as src:
            try:
                current = _stat_if_holding(dest, digest, os.fstat(src.fileno()).st_size)
                if current is None:
                    self._copy_verified(digest, src, dest, mode)
                elif mode is not None and current.st_mode & 0o777 != mode & 0o777:
                    dest.chmod(mode & 0o777)
            except OSError as err:
                reason = _reason(err)
                raise ArtifactError(f"cannot restore {short(digest)} to {dest}: {reason}") from err

    def touch(self, digest: str) -> bool:
        """Mark a blob as just used; whether it is stored."""
        try:
            os.utime(self._path(digest))
        except FileNotFoundError:
            return False
        return True

    def delete(self, digest: str, *, unless_used_after: float | None = None) -> bool:
        """Delete a blob, but not one used after `unless_used_after`; whether it went."""
        path = Path(self._path(digest))
        try:
            if unless_used_after is not None and path.stat().st_mtime > unless_used_after:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order."""
        for shard in list_dir(self._blobs):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for item in list_dir(Path(shard.path)):
                digest = PREFIX + shard.name + item.name
                if not is_digest(digest):
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the directory was listed
                if stat.S_ISREG(info.st_mode):
                    yield BlobInfo(digest, info.st_size, info.st_mtime)

    def total_size(self) -> int:
        """The bytes held by all blobs."""
        return sum(info.size for info in self.iter_blobs())

    def remove_stale_temp(
        self, *, max_age_s: float = TEMP_MAX_AGE_S, now: float | None = None
    ) -> int:
        """Delete temp files left by killed writers; return how many went."""
        return remove_stale_temp(self._tmp, max_age_s=max_age_s, now=now)

    def _path(self, digest: str) -> str:
        # Digests come from manifests and users: refuse anything that could
        # name a path outside the store.
        if not is_valid_digest(digest):
            raise ArtifactError(f"{digest!r} is not a sha256 digest")
        hexpart = digest[len(PREFIX) :]
        return f"{self._blob_dir}/{hexpart[:2]}/{hexpart[2:]}"

    def _refresh(self, blob: Blob) -> bool:
        """Mark a stored blob as just used; False when it is absent or damaged."""
        path = self._path(blob.digest)
        try:
            if os.stat(path).st_size != blob.size:  # noqa: PTH116
                return False
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def _put_stream(self, src: BinaryIO) -> Blob:
        tmp, fd = new_temp_file(self._tmp, "blob")
        try:
            hasher = hashlib.sha256()
            size = 0
            with open(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                os.fchmod(out.fileno(), BLOB_MODE)
            blob = Blob(PREFIX + hasher.hexdigest(), size)
            self._place(tmp, blob)
        finally:
            tmp.unlink(missing_ok=True)
        return blob

    def _place(self, tmp: Path, blob: Blob) -> None:
        final = self._path(blob.digest)
        try:
            try:
                os.link(tmp, final)
            except FileNotFoundError:
                Path(final).parent.mkdir(parents=True, exist_ok=True)
                os.link(tmp, final)
        except FileExistsError:
            # Same digest, same bytes: keep the blob already there. A size
            # mismatch proves it damaged, and then the fresh copy repairs it.
            if not self._refresh(blob):
                tmp.replace(final)

    def _copy_verified(self, digest: str, src: BinaryIO, dest: Path, mode: int | None) -> None:
        # The temp sits beside `dest` so the final rename stays on one filesystem;
        # the name is cut short so the suffixes cannot push it past the limit.
        tmp, fd = new_temp_file(dest.parent, "." + dest.name[:120], file_mode=0o666)
        try:
            found = _copy_hashing(src, fd, mode)
            if found == digest:
                tmp.replace(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if found != digest:
            tmp.unlink()
            self.delete(digest)
            raise CorruptBlob(digest, found)


@functools.lru_cache(maxsize=8192)
def is_valid_digest(value: str) -> bool:
    """`conveyor.core.digest.is_digest`, memoised for the digests checked on every restore."""
    return is_digest(value)


def new_temp_file(directory: Path, prefix: str, *, file_mode: int = 0o600) -> tuple[Path, int]:
    """Create a fresh, uniquely named temp file in `directory` (made if needed): path and fd."""
    path = directory / f"{prefix}.{os.getpid()}.{os.urandom(6).hex()}{TEMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return path, os.open(path, flags, file_mode)
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        return path, os.open(path, flags, file_mode)


def remove_stale_temp(directory: Path, *, max_age_s: float, now: float | None = None) -> int:
    """Delete files in `directory` not written for `max_age_s` seconds; return how many."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    for item in list_dir(directory):
        try:
            info = item.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                Path(item.path).unlink()
                removed += 1
        except FileNotFoundError:
            continue  # its writer finished, or another prune got there first
    return removed


def list_dir(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of `directory`; none when it does not exist (yet)."""
    try:
        with os.scandir(directory) as items:
            return list(items)
    except FileNotFoundError:
        return []


def _stat_if_holding(dest: Path, digest: str, size: int) -> os.stat_result | None:
    """The stat of `dest` when it is a regular file with exactly this content."""
    try:
        info = os.lstat(dest)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        return None
    return info if of_file(dest) == digest else None


def _copy_hashing(src: BinaryIO, fd: int, mode: int | None) -> str:
    hasher = hashlib.sha256()
    with open(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            hasher.update(chunk)
            out.write(chunk)
        if mode is not None:
            os.fchmod(out.fileno(), mode & 0o777)
    return PREFIX + hasher.hexdigest()


def _reason(err: OSError) -> str:
    return err.strerror or str(err)

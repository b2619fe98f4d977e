"""The job cache: a cache key mapped to a job's outputs, log and test results.

Each entry is a small JSON manifest at `entries/<2 hex>/<hex>.json` under the
cache root; the content it names lives in a `ContentStore`. Manifests are
written to `tmp/` and renamed into place, so a reader sees a whole manifest or
none, and two runs storing the same key leave one whole winner. An entry's
mtime is its last use, which is what `prune` sorts on.

Anything wrong with an entry (bad JSON, a missing or damaged blob) is a
`Corrupt` value, never a crash: the entry is removed and the job runs again.
That is also why manifests, like blobs, are not fsynced: one torn by a power
loss reads as `Corrupt`, a miss, and costs one re-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from conveyor.artifacts.cas import (
    TEMP_MAX_AGE_S,
    ContentStore,
    CorruptBlob,
    MissingBlob,
    is_valid_digest,
    list_dir,
    new_temp_file,
    remove_stale_temp,
)
from conveyor.core.digest import PREFIX, is_digest, short
from conveyor.core.errors import ArtifactError
from conveyor.core.record_json import tests_to_json
from conveyor.core.records import TestCounts
from conveyor.core.values import field, frozen

if TYPE_CHECKING:
    from conveyor.artifacts.prune import EntryUsage, PruneReport

MANIFEST_VERSION = 1
DEFAULT_GRACE_S = 600.0

_T = TypeVar("_T")


@frozen
class CachedOutput:
    """One output file of a job: posix path relative to the workspace, content, mode bits."""

    path: str
    digest: str
    size: int
    mode: int


@frozen(kw_only=True)
class CacheEntry:
    """What a later run needs to restore a job instead of running it."""

    key: str
    job: str
    outputs: tuple[CachedOutput, ...]
    log_digest: str | None
    exit_code: int
    tests: TestCounts | None
    fingerprint: Mapping[str, str] = field(hash=False)
    created_at: float
    duration_s: float


@frozen
class Corrupt:
    """A cache entry that could not be used and has been removed; a miss with a reason."""

    key: str
    reason: str


class JobCache:
    """Cache entries under `root`, one JSON manifest per key, content in `cas`."""

    def __init__(self, root: Path, cas: ContentStore) -> None:
        self.root = root
        self.cas = cas
        self._entries = root / "entries"
        self._entry_dir = os.fspath(self._entries)
        self._tmp = root / "tmp"

    def store(self, entry: CacheEntry) -> None:
        """Record `entry`, replacing any entry with its key; its blobs must be in the store."""
        try:
            _validate(entry)
        except _FormatError as err:
            raise ArtifactError(f"cannot cache job '{entry.job}': {err}") from None
        # Touching marks the blobs as just used, so a concurrent prune's grace
        # period covers them until this entry is there to reference them.
        missing = [d for d in _digests(entry) if not self.cas.touch(d)]
        if missing:
            names = ", ".join(short(d) for d in missing)
            raise ArtifactError(f"cannot cache job '{entry.job}': not in the store: {names}")
        try:
            self._write(self._path(entry.key), _encode(entry))
        except OSError as err:
            raise ArtifactError(f"cannot cache job '{entry.job}': {_reason(err)}") from err

    def lookup(self, key: str) -> CacheEntry | Corrupt | None:
        """The entry for `key`, `None` on a miss, or `Corrupt` (removed) when it is unusable."""
        path = self._path(key)
        try:
            with open(path, "rb") as manifest:
                raw = manifest.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            return self._discard(key, f"unreadable: {_reason(err)}")
        try:
            entry = _decode(key, raw)
        except _FormatError as err:
            return self._discard(key, str(err))
        problem = self._blob_problem(entry)
        if problem is not None:
            return self._discard(key, problem)
        # A prune may have removed the file meanwhile; what was read is still whole.
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        return entry

    def restore(self, entry: CacheEntry, workspace: Path) -> None:
        """Write the entry's outputs into `workspace`, verified; a bad blob removes the entry."""
        root = os.path.realpath(workspace)
        for out in entry.outputs:
            try:
                dest = workspace / _checked_path(out.path)
            except _FormatError as err:
                raise ArtifactError(f"cannot restore job '{entry.job}': {err}") from None
            # A directory replaced by a symlink must not carry a restore out of the workspace.
            parent = os.path.realpath(dest.parent)
            if parent != root and not parent.startswith(root + os.sep):
                raise ArtifactError(
                    f"cannot restore {out.path}: its directory leads outside the workspace "
                    f"(to {parent})"
                )
            try:
                self.cas.restore(out.digest, dest, mode=out.mode)
            except (CorruptBlob, MissingBlob):
                self.remove(entry.key)
                raise

    def remove(self, key: str) -> bool:
        """Remove the entry for `key` (its blobs stay until a prune); whether it was there."""
        try:
            Path(self._path(key)).unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise ArtifactError(f"cannot remove cache entry {short(key)}: {_reason(err)}") from err
        return True

    def clear(self) -> int:
        """Remove every entry (blobs stay until a prune); return how many were removed."""
        return sum(self.remove(key) for key, _ in self._entry_files())

    def prune(
        self,
        max_bytes: int,
        *,
        pinned: Collection[str] = (),
        grace_s: float = DEFAULT_GRACE_S,
        now: float | None = None,
    ) -> PruneReport:
        """Shrink blobs plus entries to `max_bytes`: LRU entries first, then unkept blobs.

        Blobs in `pinned` and blobs put less than `grace_s` ago survive even
        when that leaves the total above the limit; the report says so.
        """
        now = time.time() if now is None else now
        bad = sorted(d for d in pinned if not is_digest(d))
        if bad:
            raise ArtifactError(f"cannot pin {bad[0]!r}: not a sha256 digest")
        try:
            return self._prune(max_bytes, frozenset(pinned), grace_s, now)
        except OSError as err:
            raise ArtifactError(f"cannot prune the cache: {_reason(err)}") from err

    def _prune(
        self, max_bytes: int, pinned: frozenset[str], grace_s: float, now: float
    ) -> PruneReport:
        from conveyor.artifacts.prune import PruneReport, plan_prune  # only when pruning

        temp_files = self.cas.remove_stale_temp(now=now)
        temp_files += remove_stale_temp(self._tmp, max_age_s=TEMP_MAX_AGE_S, now=now)
        usages, dropped, dropped_bytes = self._scan()
        blobs = {info.digest: info for info in self.cas.iter_blobs()}
        plan = plan_prune(
            usages, blobs, max_bytes=max_bytes, pinned=pinned, grace_s=grace_s, now=now
        )
        for key in plan.entries:
            self.remove(key)
        deleted = spared_bytes = 0
        for digest in plan.blobs:
            # A concurrent run may have put this content again since the listing.
            if self.cas.delete(digest, unless_used_after=now - grace_s):
                deleted += 1
            else:
                spared_bytes += blobs[digest].size
        return PruneReport(
            entries_removed=len(plan.entries) + dropped,
            blobs_removed=deleted,
            temp_files_removed=temp_files,
            bytes_before=plan.bytes_before + dropped_bytes,
            bytes_after=plan.bytes_after + spared_bytes,
            max_bytes=max_bytes,
        )

    def _scan(self) -> tuple[list[EntryUsage], int, int]:
        """Usage of every readable entry; unusable manifests are removed and counted."""
        from conveyor.artifacts.prune import EntryUsage

        usages: list[EntryUsage] = []
        dropped = dropped_bytes = 0
        for key, item in self._entry_files():
            try:
                info = item.stat(follow_symlinks=False)
                entry = _decode(key, Path(item.path).read_bytes())
            except FileNotFoundError:
                continue  # removed by a concurrent lookup or prune
            except _FormatError:
                dropped += self.remove(key)
                dropped_bytes += info.st_size
                continue
            usages.append(EntryUsage(key, info.st_size, info.st_mtime, frozenset(_digests(entry))))
        return usages, dropped, dropped_bytes

    def _entry_files(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        for shard in list_dir(self._entries):
            for item in list_dir(Path(shard.path)):
                key = PREFIX + item.name.removesuffix(".json")
                if item.name.endswith(".json") and item.name[:2] == shard.name and is_digest(key):
                    yield key, item

    def _path(self, key: str) -> str:
        # A string, not a Path: this is on the path of every cache hit.
        if not is_valid_digest(key):
            raise ArtifactError(f"{key!r} is not a cache key (a sha256 digest)")
        hexpart = key[len(PREFIX) :]
        return f"{self._entry_dir}/{hexpart[:2]}/{hexpart}.json"

    def _write(self, path: str, data: bytes) -> None:
        tmp, fd = new_temp_file(self._tmp, "entry")
        try:
            with open(fd, "wb") as out:
                out.write(data)
            try:
                tmp.replace(path)
            except FileNotFoundError:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _discard(self, key: str, reason: str) -> Corrupt:
        self.remove(key)
        return Corrupt(key, reason)

    def _blob_problem(self, entry: CacheEntry) -> str | None:
        """Why the blobs of `entry` cannot be restored, if they cannot."""
        for out in entry.outputs:
            try:
                size = self.cas.size(out.digest)
            except MissingBlob:
                return f"blob {short(out.digest)} of {out.path} is missing"
            if size != out.size:
                return f"blob {short(out.digest)} of {out.path} has {size} bytes, not {out.size}"
        if entry.log_digest is not None:
            # A hit refers to the log, never copies it (as a restore does an output's): so
            # it is checked whole here, up to a size that keeps a hit cheap (a larger log
            # is checked when it is read).
            digest = entry.log_digest
            try:
                if self.cas.size(digest) <= _VERIFIED_LOG_BYTES:
                    self.cas.verify(digest)
            except MissingBlob:
                return f"log blob {short(digest)} is missing"
            except CorruptBlob as err:
                return f"log blob {short(digest)} hashes to {short(err.found)}; deleted it"
            except ArtifactError as err:  # unreadable: as good as missing for a hit
                return f"log blob {short(digest)} cannot be read: {err}"
        return None


# Logs up to this size are hashed on each hit (about 10 ms at most here).
_VERIFIED_LOG_BYTES = 4 << 20


class _FormatError(ValueError):
    """A manifest or entry that breaks the format; the message says how."""


def _digests(entry: CacheEntry) -> list[str]:
    found = [out.digest for out in entry.outputs]
    if entry.log_digest is not None:
        found.append(entry.log_digest)
    return found


def _encode(entry: CacheEntry) -> bytes:
    doc = {
        "version": MANIFEST_VERSION,
        "key": entry.key,
        "job": entry.job,
        "outputs": [
            {"path": o.path, "digest": o.digest, "size": o.size, "mode": o.mode}
            for o in entry.outputs
        ],
        "log_digest": entry.log_digest,
        "exit_code": entry.exit_code,
        "tests": tests_to_json(entry.tests),
        "fingerprint": dict(entry.fingerprint),
        "created_at": entry.created_at,
        "duration_s": entry.duration_s,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _decode(key: str, raw: bytes) -> CacheEntry:
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise _FormatError(f"not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise _FormatError("not a JSON object")
    if doc.get("version") != MANIFEST_VERSION:
        raise _FormatError(f"unknown manifest version {doc.get('version')!r}")
    tests = None if doc.get("tests") is None else _field(doc, "tests", dict)
    fingerprint = _field(doc, "fingerprint", dict)
    entry = CacheEntry(
        key=_field(doc, "key", str),
        job=_field(doc, "job", str),
        outputs=tuple(_decode_output(item) for item in _field(doc, "outputs", list)),
        log_digest=None if doc.get("log_digest") is None else _field(doc, "log_digest", str),
        exit_code=_field(doc, "exit_code", int),
        tests=None if tests is None else _decode_tests(tests),
        fingerprint={name: _field(fingerprint, name, str) for name in fingerprint},
        created_at=_number(doc, "created_at"),
        duration_s=_number(doc, "duration_s"),
    )
    if entry.key != key:
        raise _FormatError(f"it holds key {short(entry.key)}, not the one its file is named for")
    _validate(entry)
    return entry


def _decode_tests(tests: dict[str, object]) -> TestCounts:
    failures = tests.get("failures", [])
    if not isinstance(failures, list) or not all(isinstance(f, str) for f in failures):
        raise _FormatError("test failures are not a list of names")
    return TestCounts(
        passed=_field(tests, "passed", int),
        failed=_field(tests, "failed", int),
        skipped=_field(tests, "skipped", int),
        failures=tuple(failures),
    )


def _decode_output(item: object) -> CachedOutput:
    if not isinstance(item, dict):
        raise _FormatError("an output is not a JSON object")
    return CachedOutput(
        path=_field(item, "path", str),
        digest=_field(item, "digest", str),
        size=_field(item, "size", int),
        mode=_field(item, "mode", int),
    )


def _field(doc: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = doc.get(name)
    # bool is an int to isinstance, but `true` is not a count or a mode.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _FormatError(f"'{name}' is not a {kind.__name__}")
    return value


def _number(doc: dict[str, object], name: str) -> float:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FormatError(f"'{name}' is not a number")
    return float(value)


def _validate(entry: CacheEntry) -> None:
    """Check what the types cannot: digests, safe paths, sane counts and modes."""
    if not is_valid_digest(entry.key):
        raise _FormatError(f"the key is not a sha256 digest: {entry.key!r}")
    if entry.log_digest is not None and not is_valid_digest(entry.log_digest):
        raise _FormatError(f"the log digest is not a sha256 digest: {entry.log_digest!r}")
    seen: set[str] = set()
    for out in entry.outputs:
        _checked_path(out.path)
        if out.path in seen:
            raise _FormatError(f"output {out.path} is listed twice")
        seen.add(out.path)
        if not is_valid_digest(out.digest):
            raise _FormatError(f"output {out.path} has no sha256 digest: {out.digest!r}")
        if out.size < 0 or not 0 <= out.mode <= 0o7777:
            raise _FormatError(f"output {out.path} has a bad size or mode")
    counts = entry.tests
    if counts is not None and min(counts.passed, counts.failed, counts.skipped) < 0:
        raise _FormatError("test counts cannot be negative")


def _checked_path(path: str) -> str:
    """`path` when it is a normalised relative posix path that stays inside the workspace."""
    # Empty parts catch absolute paths and doubled or trailing slashes.
    if "\x00" in path or not set(path.split("/")).isdisjoint(("", ".", "..")):
        raise _FormatError(f"output path {path!r} is not a plain path inside the workspace")
    return path


def _reason(err: OSError) -> str:
    return err.strerror or str(err)

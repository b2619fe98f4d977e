"""The job cache on a real filesystem: store, lookup, restore and what goes wrong."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.cache import CachedOutput, CacheEntry, Corrupt, JobCache
from conveyor.artifacts.cas import CorruptBlob, MissingBlob
from conveyor.core import digest
from conveyor.core.errors import ArtifactError
from conveyor.core.records import TestCounts

CacheJob = Callable[..., CacheEntry]
Locate = Callable[[str], Path]


def rewrite_manifest(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_stored_entry_is_found_with_every_field_intact(
    cache: JobCache, cache_job: CacheJob
) -> None:
    entry = cache_job({"dist/app.bin": b"\x00binary", "report.xml": b"<testsuite/>"})
    found = cache.lookup(entry.key)
    assert found == entry
    assert isinstance(found, CacheEntry)
    assert found.tests == TestCounts(passed=3, failed=0, skipped=1)
    assert dict(found.fingerprint) == dict(entry.fingerprint)


def test_an_entry_without_log_or_outputs_round_trips(cache: JobCache) -> None:
    entry = CacheEntry(
        key=digest.of_text("lint"),
        job="lint",
        outputs=(),
        log_digest=None,
        exit_code=0,
        tests=TestCounts(),
        fingerprint={},
        created_at=1.5,
        duration_s=0.0,
    )
    cache.store(entry)
    assert cache.lookup(entry.key) == entry


def test_a_key_never_stored_is_a_miss(cache: JobCache) -> None:
    assert cache.lookup(digest.of_text("never ran")) is None


def test_storing_the_same_key_again_replaces_the_entry(
    cache: JobCache, cache_job: CacheJob
) -> None:
    entry = cache_job({"out.txt": b"one"})
    newer = dataclasses.replace(entry, duration_s=9.0)
    cache.store(newer)
    assert cache.lookup(entry.key) == newer


def test_a_hit_refreshes_the_entry_last_use(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate
) -> None:
    entry = cache_job({"out.txt": b"data"})
    os.utime(entry_file(entry.key), (1000.0, 1000.0))
    cache.lookup(entry.key)
    assert entry_file(entry.key).stat().st_mtime > time.time() - 60


def test_store_refuses_an_entry_whose_blobs_are_not_in_the_store(
    cache: JobCache, cache_job: CacheJob
) -> None:
    entry = cache_job({"out.txt": b"data"})
    ghost = CachedOutput("ghost.txt", digest.of_bytes(b"never put"), 9, 0o644)
    with pytest.raises(ArtifactError, match="not in the store"):
        cache.store(dataclasses.replace(entry, key=digest.of_text("k2"), outputs=(ghost,)))
    with pytest.raises(ArtifactError, match="not in the store"):
        cache.store(dataclasses.replace(entry, log_digest=digest.of_bytes(b"no log")))


@pytest.mark.parametrize(
    "path", ["../escape.txt", "/etc/passwd", "a/../../b", "a//b", "./a", "a/", "", ".", "a\x00b"]
)
def test_store_refuses_output_paths_that_are_not_plain_paths_in_the_workspace(
    cache: JobCache, cache_job: CacheJob, path: str
) -> None:
    entry = cache_job({"out.txt": b"data"})
    bad = dataclasses.replace(entry.outputs[0], path=path)
    with pytest.raises(ArtifactError, match="not a plain path"):
        cache.store(dataclasses.replace(entry, outputs=(bad,)))


def test_store_refuses_the_same_output_path_twice(cache: JobCache, cache_job: CacheJob) -> None:
    entry = cache_job({"out.txt": b"data"})
    with pytest.raises(ArtifactError, match="listed twice"):
        cache.store(dataclasses.replace(entry, outputs=entry.outputs * 2))


@pytest.mark.parametrize("key", ["sha256:../../etc/passwd", "latest", "sha256:" + "g" * 64])
def test_malformed_keys_are_refused(cache: JobCache, key: str) -> None:
    with pytest.raises(ArtifactError, match="not a cache key"):
        cache.lookup(key)
    with pytest.raises(ArtifactError, match="not a cache key"):
        cache.remove(key)


@pytest.mark.parametrize(
    "content", [b"", b"{", b"\xff\xfe not utf-8", b"[]", b'{"version": 99}', b"null"]
)
def test_an_unreadable_manifest_is_corrupt_and_removed(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate, content: bytes
) -> None:
    entry = cache_job({"out.txt": b"data"})
    entry_file(entry.key).write_bytes(content)
    found = cache.lookup(entry.key)
    assert isinstance(found, Corrupt)
    assert found.key == entry.key
    assert found.reason
    assert not entry_file(entry.key).exists()
    assert cache.lookup(entry.key) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("exit_code", True),
        ("exit_code", "0"),
        ("created_at", None),
        ("job", 7),
        ("outputs", {"path": "out.txt"}),
        ("tests", {"passed": 1}),
        ("fingerprint", {"script": 1}),
        ("log_digest", "sha256:short"),
    ],
)
def test_a_manifest_with_a_wrong_field_is_corrupt(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate, field: str, value: object
) -> None:
    entry = cache_job({"out.txt": b"data"})
    rewrite_manifest(entry_file(entry.key), lambda doc: doc.__setitem__(field, value))
    assert isinstance(cache.lookup(entry.key), Corrupt)


def test_a_manifest_filed_under_another_key_is_corrupt(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate
) -> None:
    entry = cache_job({"out.txt": b"data"})
    other = digest.of_text("another key")
    entry_file(other).parent.mkdir(parents=True, exist_ok=True)
    entry_file(other).write_bytes(entry_file(entry.key).read_bytes())
    found = cache.lookup(other)
    assert isinstance(found, Corrupt)
    assert "key" in found.reason


def test_a_manifest_pointing_outside_the_workspace_is_corrupt_and_never_restored(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate, tmp_path: Path
) -> None:
    entry = cache_job({"out.txt": b"data"})

    def escape(doc: dict[str, object]) -> None:
        outputs = doc["outputs"]
        assert isinstance(outputs, list)
        outputs[0]["path"] = "../escaped.txt"

    rewrite_manifest(entry_file(entry.key), escape)
    assert isinstance(cache.lookup(entry.key), Corrupt)
    assert not (tmp_path / "escaped.txt").exists()


def test_an_entry_whose_output_blob_is_missing_is_corrupt_and_removed(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate
) -> None:
    entry = cache_job({"a.txt": b"kept", "b.txt": b"lost"})
    cache.cas.delete(entry.outputs[1].digest)
    found = cache.lookup(entry.key)
    assert isinstance(found, Corrupt)
    assert "b.txt" in found.reason
    assert "missing" in found.reason
    assert not entry_file(entry.key).exists()


def test_an_entry_whose_log_blob_is_missing_is_corrupt(
    cache: JobCache, cache_job: CacheJob
) -> None:
    entry = cache_job({"a.txt": b"kept"})
    assert entry.log_digest is not None
    cache.cas.delete(entry.log_digest)
    found = cache.lookup(entry.key)
    assert isinstance(found, Corrupt)
    assert "log" in found.reason


def test_an_entry_whose_blob_has_the_wrong_size_is_corrupt(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate
) -> None:
    entry = cache_job({"a.txt": b"twelve bytes"})
    path = blob_file(entry.outputs[0].digest)
    path.chmod(0o644)
    path.write_bytes(b"short")
    found = cache.lookup(entry.key)
    assert isinstance(found, Corrupt)
    assert "bytes" in found.reason


def test_restore_writes_every_output_with_its_mode(
    cache: JobCache, cache_job: CacheJob, tmp_path: Path
) -> None:
    entry = cache_job(
        {"bin/tool": b"#!/bin/sh\n", "dist/lib/core.so": b"\x7fELF"}, modes={"bin/tool": 0o755}
    )
    fresh = tmp_path / "fresh-checkout"
    fresh.mkdir()
    found = cache.lookup(entry.key)
    assert isinstance(found, CacheEntry)
    cache.restore(found, fresh)
    assert (fresh / "bin" / "tool").read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE((fresh / "bin" / "tool").stat().st_mode) == 0o755
    assert (fresh / "dist" / "lib" / "core.so").read_bytes() == b"\x7fELF"


def test_restore_of_a_corrupt_blob_removes_the_entry_and_raises(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate, entry_file: Locate, tmp_path: Path
) -> None:
    entry = cache_job({"app.bin": b"release build"})
    path = blob_file(entry.outputs[0].digest)
    path.chmod(0o644)
    path.write_bytes(b"release bui1d")
    target = tmp_path / "elsewhere"
    with pytest.raises(CorruptBlob):
        cache.restore(entry, target)
    assert not entry_file(entry.key).exists()
    assert not (target / "app.bin").exists()


def test_restore_of_a_blob_pruned_meanwhile_removes_the_entry_and_raises(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate, tmp_path: Path
) -> None:
    entry = cache_job({"app.bin": b"release build"})
    cache.cas.delete(entry.outputs[0].digest)
    with pytest.raises(MissingBlob):
        cache.restore(entry, tmp_path / "elsewhere")
    assert not entry_file(entry.key).exists()


def test_remove_and_clear_drop_entries_but_keep_blobs(cache: JobCache, cache_job: CacheJob) -> None:
    first = cache_job({"a.txt": b"a"}, name="a")
    cache_job({"b.txt": b"b"}, name="b")
    cache_job({"c.txt": b"c"}, name="c")
    assert cache.remove(first.key)
    assert not cache.remove(first.key)
    assert cache.clear() == 2
    assert cache.lookup(first.key) is None
    assert cache.cas.has(first.outputs[0].digest)

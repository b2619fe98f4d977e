"""Pruning the job cache and its content store down to a size limit."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.cache import CacheEntry, JobCache
from conveyor.core import digest
from conveyor.core.errors import ArtifactError

CacheJob = Callable[..., CacheEntry]
Locate = Callable[[str], Path]

HOUR = 3600.0


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def age_all_blobs(cache: JobCache, blob_file: Locate, when: float) -> None:
    for info in cache.cas.iter_blobs():
        set_mtime(blob_file(info.digest), when)


def share_of(entry: CacheEntry, cache: JobCache, entry_file: Locate) -> int:
    """Bytes that removing `entry` frees when it shares no blob."""
    logs = cache.cas.size(entry.log_digest) if entry.log_digest else 0
    return entry_file(entry.key).stat().st_size + sum(o.size for o in entry.outputs) + logs


@pytest.fixture
def three_jobs(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate, entry_file: Locate
) -> list[CacheEntry]:
    """Three entries used an hour, 50 minutes and 40 minutes ago; all blobs an hour old."""
    now = time.time()
    entries = [cache_job({f"{name}.bin": name.encode() * 500}, name=name) for name in "abc"]
    age_all_blobs(cache, blob_file, now - HOUR)
    for minutes, entry in zip((60, 50, 40), entries, strict=True):
        set_mtime(entry_file(entry.key), now - minutes * 60)
    return entries


def test_prune_under_the_limit_keeps_entries_and_drops_old_unreferenced_blobs(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate
) -> None:
    entry = cache_job({"out.txt": b"kept"})
    orphan = cache.cas.put_bytes(b"no entry references me")
    age_all_blobs(cache, blob_file, time.time() - HOUR)
    report = cache.prune(10**9)
    assert (report.entries_removed, report.blobs_removed) == (0, 1)
    assert not cache.cas.has(orphan.digest)
    assert cache.lookup(entry.key) == entry
    assert report.bytes_before - report.bytes_after == orphan.size
    assert not report.over_limit


def test_prune_removes_the_least_recently_used_entry_first(
    cache: JobCache, three_jobs: list[CacheEntry], entry_file: Locate
) -> None:
    oldest, middle, newest = three_jobs
    total = cache.cas.total_size() + sum(entry_file(e.key).stat().st_size for e in three_jobs)
    report = cache.prune(total - share_of(oldest, cache, entry_file))
    assert report.entries_removed == 1
    assert report.blobs_removed == 2, "its output and its log"
    assert cache.lookup(oldest.key) is None
    assert not cache.cas.has(oldest.outputs[0].digest)
    assert cache.lookup(middle.key) == middle
    assert cache.lookup(newest.key) == newest
    assert report.bytes_before == total
    assert report.bytes_after <= report.max_bytes


def test_a_cache_hit_keeps_an_entry_through_the_next_prune(
    cache: JobCache, three_jobs: list[CacheEntry], entry_file: Locate
) -> None:
    oldest, middle, newest = three_jobs
    assert cache.lookup(oldest.key) == oldest
    total = cache.cas.total_size() + sum(entry_file(e.key).stat().st_size for e in three_jobs)
    cache.prune(total - share_of(middle, cache, entry_file))
    assert cache.lookup(middle.key) is None
    assert cache.lookup(oldest.key) == oldest
    assert cache.lookup(newest.key) == newest


def test_a_blob_shared_with_a_surviving_entry_stays(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate, entry_file: Locate
) -> None:
    old = cache_job({"shared.bin": b"common" * 100, "old.bin": b"old" * 100}, name="old")
    new = cache_job({"shared.bin": b"common" * 100}, name="new")
    age_all_blobs(cache, blob_file, time.time() - HOUR)
    set_mtime(entry_file(old.key), time.time() - HOUR)
    total = cache.cas.total_size() + sum(entry_file(e.key).stat().st_size for e in (old, new))
    report = cache.prune(total - 1)
    assert report.entries_removed == 1
    assert cache.lookup(new.key) == new
    assert cache.cas.has(old.outputs[0].digest)
    assert not cache.cas.has(old.outputs[1].digest)


def test_pinned_blobs_survive_and_the_report_says_the_limit_was_not_met(
    cache: JobCache, cache_job: CacheJob, blob_file: Locate
) -> None:
    entry = cache_job({"release.tar": b"released" * 100})
    age_all_blobs(cache, blob_file, time.time() - HOUR)
    pinned = entry.outputs[0].digest
    report = cache.prune(0, pinned=[pinned])
    assert report.entries_removed == 1
    assert cache.cas.has(pinned)
    assert entry.log_digest is not None
    assert not cache.cas.has(entry.log_digest)
    assert report.bytes_after == entry.outputs[0].size
    assert report.over_limit


def test_blobs_younger_than_the_grace_period_survive_a_prune(cache: JobCache) -> None:
    just_put = cache.cas.put_bytes(b"a concurrent run is about to reference me")
    assert cache.prune(0).blobs_removed == 0
    assert cache.cas.has(just_put.digest)
    later = time.time() + 601
    assert cache.prune(0, now=later).blobs_removed == 1
    assert not cache.cas.has(just_put.digest)


def test_a_shorter_grace_period_lets_young_blobs_go(cache: JobCache) -> None:
    blob = cache.cas.put_bytes(b"young")
    report = cache.prune(0, grace_s=0.0, now=time.time() + 1)
    assert report.blobs_removed == 1
    assert not cache.cas.has(blob.digest)


def test_prune_removes_old_temp_files_and_keeps_fresh_ones(cache: JobCache) -> None:
    now = time.time()
    old_blob = cache.cas.root / "tmp" / "blob.4242.dead.conveyor-tmp"
    old_entry = cache.root / "tmp" / "entry.4242.dead.conveyor-tmp"
    fresh = cache.cas.root / "tmp" / "blob.4343.live.conveyor-tmp"
    for path in (old_blob, old_entry, fresh):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    set_mtime(old_blob, now - 2 * HOUR)
    set_mtime(old_entry, now - 2 * HOUR)
    report = cache.prune(10**9, now=now)
    assert report.temp_files_removed == 2
    assert (old_blob.exists(), old_entry.exists(), fresh.exists()) == (False, False, True)


def test_prune_removes_corrupt_manifests(
    cache: JobCache, cache_job: CacheJob, entry_file: Locate
) -> None:
    entry = cache_job({"out.txt": b"data"})
    entry_file(entry.key).write_bytes(b"{ truncated")
    report = cache.prune(10**9)
    assert report.entries_removed == 1
    assert not entry_file(entry.key).exists()


def test_prune_of_an_empty_cache_reports_nothing(cache: JobCache) -> None:
    report = cache.prune(0)
    assert (report.entries_removed, report.blobs_removed, report.temp_files_removed) == (0, 0, 0)
    assert (report.bytes_before, report.bytes_after) == (0, 0)


def test_prune_refuses_malformed_pins(cache: JobCache) -> None:
    with pytest.raises(ArtifactError, match="cannot pin"):
        cache.prune(0, pinned=[digest.of_text("fine"), "sha256:../../etc"])

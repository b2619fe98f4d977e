"""Fixtures for the content store and job cache: real directories under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts.cache import CachedOutput, CacheEntry, JobCache
from conveyor.artifacts.cas import ContentStore
from conveyor.core import digest
from conveyor.core.records import TestCounts

CacheJob = Callable[..., CacheEntry]


@pytest.fixture
def cas(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store" / "cas")


@pytest.fixture
def cache(tmp_path: Path, cas: ContentStore) -> JobCache:
    return JobCache(tmp_path / "store" / "cache", cas)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def cache_job(cache: JobCache, workspace: Path) -> CacheJob:
    """Write `files` into the workspace, put them and a log, and store an entry for them."""

    def build(
        files: dict[str, bytes], *, name: str = "build", modes: dict[str, int] | None = None
    ) -> CacheEntry:
        outputs = []
        for rel, data in files.items():
            path = workspace / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            blob = cache.cas.put_file(path)
            outputs.append(CachedOutput(rel, blob.digest, blob.size, (modes or {}).get(rel, 0o644)))
        log = cache.cas.put_bytes(f"log of {name}\n".encode())
        entry = CacheEntry(
            key=digest.of_text(f"key of {name}"),
            job=name,
            outputs=tuple(outputs),
            log_digest=log.digest,
            exit_code=0,
            tests=TestCounts(passed=3, failed=0, skipped=1),
            fingerprint={"script": digest.of_text(name)},
            created_at=1_767_225_600.0,
            duration_s=1.25,
        )
        cache.store(entry)
        return entry

    return build


@pytest.fixture
def blob_file(cas: ContentStore) -> Callable[[str], Path]:
    """Where the store keeps the blob for a digest (the documented layout)."""

    def locate(value: str) -> Path:
        hexpart = value.removeprefix("sha256:")
        return cas.root / "sha256" / hexpart[:2] / hexpart[2:]

    return locate


@pytest.fixture
def entry_file(cache: JobCache) -> Callable[[str], Path]:
    """Where the cache keeps the manifest for a key (the documented layout)."""

    def locate(key: str) -> Path:
        hexpart = key.removeprefix("sha256:")
        return cache.root / "entries" / hexpart[:2] / f"{hexpart}.json"

    return locate

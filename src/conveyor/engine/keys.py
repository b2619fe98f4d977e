"""Computing a job's fingerprint and cache key from the workspace and its upstream."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from conveyor.artifacts.cas import ContentStore
from conveyor.core import digest
from conveyor.core.records import OutputRecord
from conveyor.engine import fingerprint
from conveyor.engine.sources import Sources
from conveyor.spec.paths import rooted_glob
from conveyor.spec.pipeline import Job, Pipeline


def load_secret_key(state_dir: Path) -> bytes:
    """This workspace's key for hashing secret values into fingerprints (made once)."""
    path = state_dir / "secret.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)  # what `secrets.token_bytes` returns
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    try:
        os.link(tmp, path)  # the first writer wins; everyone then reads its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class KeyMaker:
    """Fingerprints for the jobs of one Run; listings are stored for `explain`."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        sources: Sources,
        cas: ContentStore,
        secret_values: Mapping[str, str | None],
        secret_key: bytes,
        warn: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self._pipeline = pipeline
        self._sources = sources
        self._cas = cas
        self._secrets = secret_values
        self._secret_key = secret_key
        self._listings: dict[str, str] = {}
        self._warn = warn
        self._lock = threading.Lock()

    def fingerprint(
        self, job: Job, upstream: Mapping[str, tuple[OutputRecord, ...]]
    ) -> fingerprint.Fingerprint:
        kind, listing = self._files(job)
        return fingerprint.compute(
            fingerprint.FingerprintInputs(
                job=job,
                pipeline_env=self._pipeline.env,
                secrets=self._secrets,
                secret_key=self._secret_key,
                files_listing=listing,
                files_kind=kind,
                upstream=upstream,
            )
        )

    def _files(self, job: Job) -> tuple[str, str]:
        if job.inputs is None:
            return "files", self._store_listing("*implicit*", self._sources.implicit_files)
        patterns = tuple(_rooted(job.workdir, p) for p in job.inputs)
        marker = json.dumps(patterns)
        return "inputs", self._store_listing(marker, lambda: self._declared(job, patterns, marker))

    def _declared(self, job: Job, patterns: tuple[str, ...], marker: str) -> dict[str, str]:
        for pattern in self._sources.unmatched(patterns):
            # A pattern that names nothing keeps the job cached whatever changes.
            self._warn(f"{job.name}: input pattern '{pattern}' matches no file")
        return {"patterns": marker, **self._sources.declared_files(patterns)}

    def _store_listing(self, memo: str, make: Callable[[], dict[str, str]]) -> str:
        with self._lock:
            known = self._listings.get(memo)
            if known is None:
                known = self._cas.put_bytes(digest.canonical_json(make())).digest
                self._listings[memo] = known
            return known

    def load_listing(self, listing_digest: str) -> dict[str, str] | None:
        return load_listing(self._cas, listing_digest)


def load_listing(cas: ContentStore, listing_digest: str) -> dict[str, str] | None:
    """A stored listing of input files (path -> digest), or None when it was pruned."""
    if not cas.has(listing_digest):
        return None
    listing: dict[str, str] = json.loads(cas.read_bytes(listing_digest))
    listing.pop("patterns", None)
    return listing


def _rooted(workdir: str, pattern: str) -> str:
    # The loader refused patterns that leave the workspace.
    return rooted_glob(workdir, pattern) or pattern


def rooted_patterns(job: Job, patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_rooted(job.workdir, p) for p in patterns)

"""The runner's side of the shared cache: a claimed job restored from the server, or saved to it.

Before a claimed job runs, `try_restore` computes its fingerprint and cache
key in the checked-out directory with the local run's own `KeyMaker`, and
asks the server's cache (a `CachePort`). A hit is the attempt's result, as
`cached`, with the entry's outputs, log and test counts: those blobs are on
the server already, where dependents fetch them, so nothing is downloaded.
After a job ran and succeeded, `save` records the entry (blobs first).

The key is the local one, with two differences a runner cannot avoid: the
platform's own variables (`CONVEYOR_*`, such as the commit a run is for) are
left out of it, as a local run leaves them out; and the outputs of the jobs
this one needs, restored into the checkout, count through their digests, not
as files. Secret values enter as HMAC under the server's key
(`CachePort.hmac_key`). A cache that cannot be reached or read costs a warning
in the job's log and a run of the job, never a failed job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from conveyor.artifacts.cache import CachedOutput, CacheEntry
from conveyor.artifacts.cas import ContentStore
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.digest import short
from conveyor.core.errors import ConveyorError
from conveyor.core.records import OutputRecord
from conveyor.core.values import field, frozen, mutable
from conveyor.engine import fingerprint as fp_module
from conveyor.engine.dispatch_rules import AttemptResult, Claim
from conveyor.engine.keys import KeyMaker, rooted_patterns
from conveyor.engine.remote_cache import RemoteCache
from conveyor.engine.sources import Sources
from conveyor.engine.workspace import SPEC_FILE
from conveyor.spec.pipeline import Pipeline

Warn = Callable[[str], None]
# Set by the platform for each run (`CONVEYOR_COMMIT`, ...): never part of a job's key.
PLATFORM_PREFIX = "CONVEYOR_"


class CachePort(Protocol):
    """The server's job cache as a runner sees it.

    The in-process implementation calls `RemoteCache`; the HTTP one calls
    `/api/v1/cache`. Every method may be called from any thread and raises
    `ConveyorError` when the cache cannot be used.
    """

    def hmac_key(self) -> bytes:
        """The key secret values are hashed with, the same on the server and every runner."""
        ...

    def lookup(self, key: str) -> CacheEntry | None:
        """The entry for `key`, every blob it names held by the server; None on a miss."""
        ...

    def record(self, entry: CacheEntry, blobs: ContentStore) -> None:
        """Store `entry`, sending the blobs it names from `blobs` unless the server has them."""
        ...

    def report(self, message: str) -> None:
        """Tell whoever runs the runner something about the cache (a job's log is closed)."""
        ...


@mutable
class InProcessCache:
    """A CachePort calling the server's cache service directly."""

    cache: RemoteCache
    notes: list[str] = field(default_factory=list)

    def hmac_key(self) -> bytes:
        return self.cache.hmac_key()

    def lookup(self, key: str) -> CacheEntry | None:
        return self.cache.lookup(key)

    def record(self, entry: CacheEntry, blobs: ContentStore) -> None:
        server = self.cache.cas
        if blobs.root != server.root:
            for digest in _digests(entry):
                if not server.has(digest):
                    with blobs.open(digest) as blob:
                        server.put_bytes(blob.read())
        self.cache.record(entry.key, entry)

    def report(self, message: str) -> None:
        self.notes.append(message)


@frozen
class Keyed:
    """A claimed job's cache key and the fingerprint it is the digest of."""

    key: str
    fingerprint: Mapping[str, str]


@frozen
class Lookup:
    """What `try_restore` found: the cached result on a hit, the key to save under otherwise."""

    hit: AttemptResult | None
    keyed: Keyed | None


MISS = Lookup(None, None)


def fingerprint_of(claim: Claim, root: Path, cas: ContentStore, hmac_key: bytes) -> Keyed:
    """The job's fingerprint and key, computed in its checked-out directory `root`."""
    job = claim.job
    upstream_paths = tuple(output.path for output in claim.upstream)
    sources = Sources(
        root,
        root / ".conveyor",
        rooted_patterns(job, job.outputs + job.reports_junit) + upstream_paths,
        not_implicit=(SPEC_FILE,),
    )
    secret_values: dict[str, str | None] = dict.fromkeys(claim.unset_secrets)
    secret_values.update(claim.secrets)
    env = {k: v for k, v in claim.env.items() if not k.startswith(PLATFORM_PREFIX)}
    pipeline = Pipeline(path=SPEC_FILE, digest="", jobs=(job,), env=env)
    keys = KeyMaker(
        pipeline=pipeline,
        sources=sources,
        cas=cas,
        secret_values=secret_values,
        secret_key=hmac_key,
    )
    fingerprint = keys.fingerprint(job, _by_need(claim))
    return Keyed(fp_module.cache_key(fingerprint), fingerprint)


def try_restore(port: CachePort, claim: Claim, root: Path, cas: ContentStore, warn: Warn) -> Lookup:
    """The job's result from the server's cache, or the key to `save` it under after it runs."""
    if not claim.job.cache:
        return MISS
    try:
        keyed = fingerprint_of(claim, root, cas, port.hmac_key())
        entry = port.lookup(keyed.key)
    except (ConveyorError, OSError) as err:
        warn(f"--- warning: the shared cache cannot be used ({err}); running the job ---")
        return MISS
    if entry is None:
        return Lookup(None, keyed)
    return Lookup(cached_result(entry), keyed)


def cached_result(entry: CacheEntry) -> AttemptResult:
    """The result of an attempt served by `entry`, as a cached local job reports it."""
    return AttemptResult(
        status="cached",
        exit_code=entry.exit_code,
        duration_s=0.0,
        reason=f"restored from the shared cache ({short(entry.key)})",
        log_digest=entry.log_digest,
        tests=entry.tests,
        outputs=tuple(OutputRecord(o.path, o.digest, o.size) for o in entry.outputs),
    )


def save(
    port: CachePort,
    found: Lookup,
    claim: Claim,
    result: AttemptResult,
    *,
    root: Path,
    cas: ContentStore,
    clock: Clock | None = None,
) -> bool:
    """Record a successful attempt in the server's cache; whether an entry was recorded."""
    keyed = found.keyed
    if keyed is None or found.hit is not None or result.status != "success":
        return False
    try:
        entry = CacheEntry(
            key=keyed.key,
            job=claim.job.name,
            outputs=tuple(_cached_output(root, o) for o in result.outputs),
            log_digest=result.log_digest,
            exit_code=result.exit_code or 0,
            tests=result.tests,
            fingerprint=dict(keyed.fingerprint),
            created_at=(clock or SystemClock()).now(),
            duration_s=result.duration_s,
        )
        port.record(entry, cas)
    except (ConveyorError, OSError) as err:
        port.report(f"{claim.job.name}: could not store its result in the shared cache: {err}")
        return False
    return True


def _cached_output(root: Path, output: OutputRecord) -> CachedOutput:
    mode = (root / output.path).stat().st_mode & 0o777
    return CachedOutput(output.path, output.digest, output.size, mode)


def _by_need(claim: Claim) -> dict[str, tuple[OutputRecord, ...]]:
    """The upstream outputs of the claim, under one name: a claim does not say which job made
    each, and the outputs' paths and digests are what decides the result."""
    if not claim.upstream:
        return {}
    return {"needs": tuple(sorted(claim.upstream, key=lambda o: o.path))}


def _digests(entry: CacheEntry) -> list[str]:
    found = [output.digest for output in entry.outputs]
    return found + ([entry.log_digest] if entry.log_digest else [])

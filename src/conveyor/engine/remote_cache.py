"""The job cache shared through the server: what runners look up and record for remote jobs.

Entries are the local cache's (`artifacts/cache.py`), kept in the server's
state directory over the server's CAS, so an entry names only blobs the
server holds and dependents fetch them from there. A runner computes the key
exactly as a local run would; secret values enter it as HMAC-SHA256 under
`hmac_key()`, a key derived from the server's own random `secret.key`, which
the server hands to runners (they see the secret values anyway) and never to
users, so a stored fingerprint cannot be used to guess a secret.

An entry whose blobs are missing or damaged is a miss: it is removed and the
removal is a `cache.corrupt` Event, so an operator can see it happened.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from conveyor.artifacts.cache import CachedOutput, CacheEntry, Corrupt, JobCache
from conveyor.artifacts.cas import ContentStore, is_valid_digest
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.digest import short
from conveyor.core.errors import ArtifactError, Conflict, UsageError
from conveyor.core.record_json import tests_to_json
from conveyor.core.records import TestCounts
from conveyor.engine.keys import load_secret_key
from conveyor.store import events as event_log
from conveyor.store.db import Database

# Derived rather than used as is: the state key may key other things this server hashes.
_HMAC_LABEL = b"conveyor remote job cache v1"


class RemoteCache:
    """The server's job cache: lookups that record corrupt entries, records that check blobs."""

    def __init__(
        self,
        *,
        cache: JobCache,
        db: Database,
        clock: Clock,
        state_dir: Path,
        actor: str = "server",
    ) -> None:
        self.cache = cache
        self.db = db
        self.clock = clock
        self._state_dir = state_dir
        self._actor = actor

    @classmethod
    def at(cls, state_dir: Path, *, cas: ContentStore, db: Database, clock: Clock) -> RemoteCache:
        """The cache of a server whose state directory is `state_dir` and CAS is `cas`."""
        cache = JobCache(state_dir / "cache", cas)
        return cls(cache=cache, db=db, clock=clock, state_dir=state_dir)

    @property
    def cas(self) -> ContentStore:
        return self.cache.cas

    def hmac_key(self) -> bytes:
        """The key every runner of this server hashes secret values with (made once)."""
        state_key = load_secret_key(self._state_dir)
        return hmac.new(state_key, _HMAC_LABEL, hashlib.sha256).digest()

    def lookup(self, key: str) -> CacheEntry | None:
        """The entry for `key` with every blob it names on the server; None on a miss.

        A corrupt entry is removed, recorded as a `cache.corrupt` Event, and is a miss.
        """
        found = self.cache.lookup(checked_key(key))
        if isinstance(found, Corrupt):
            self._record_corrupt(found)
            return None
        return found

    def record(self, key: str, entry: CacheEntry) -> None:
        """Store `entry` under `key`; Conflict naming a blob the server does not hold."""
        if checked_key(key) != entry.key:
            raise UsageError(f"the entry is for key {short(entry.key)}, not {short(key)}")
        for output in entry.outputs:
            if not self.cas.has(output.digest):
                raise Conflict(_missing(output.digest, f"output {output.path}"))
            size = self.cas.size(output.digest)
            if size != output.size:
                raise UsageError(
                    f"output {output.path} says {output.size} bytes, but blob "
                    f"{short(output.digest)} has {size}; send the size of the uploaded file"
                )
        if entry.log_digest is not None and not self.cas.has(entry.log_digest):
            raise Conflict(_missing(entry.log_digest, "the log"))
        try:
            self.cache.store(entry)
        except ArtifactError as err:
            # A prune removed a blob between the checks and the store.
            raise Conflict(f"{err}; upload it again, then send the entry again") from None

    def _record_corrupt(self, corrupt: Corrupt) -> None:
        event = NewEvent(
            "cache.corrupt",
            f"cache/{corrupt.key}",
            self._actor,
            self.clock.now(),
            {"key": corrupt.key, "reason": corrupt.reason, "removed": True},
        )
        with self.db.write() as tx:
            event_log.append(tx, [event])


def checked_key(key: str) -> str:
    """`key` when it is a cache key (a sha256 digest); UsageError otherwise."""
    if not is_valid_digest(key):
        raise UsageError(f"'{key[:80]}' is not a cache key; write sha256:<64 hex digits>")
    return key


def _missing(digest: str, what: str) -> str:
    return (
        f"the server does not have {digest} ({what}); upload it with "
        "PUT /api/v1/artifacts/{digest} first, then send the entry again"
    )


# --- the entry as the API carries it ----------------------------------------------


def entry_to_json(entry: CacheEntry) -> dict[str, object]:
    """What `GET /api/v1/cache/{key}` answers: no fingerprint, which only explains a miss."""
    tests = entry.tests
    return {
        "key": entry.key,
        "job": entry.job,
        "outputs": [
            {"path": o.path, "digest": o.digest, "size": o.size, "mode": o.mode}
            for o in entry.outputs
        ],
        "log_digest": entry.log_digest,
        "exit_code": entry.exit_code,
        "tests": tests_to_json(tests),
        "created_at": entry.created_at,
        "duration_s": entry.duration_s,
    }


def entry_from_json(doc: Mapping[str, object]) -> CacheEntry:
    """The entry `entry_to_json` wrote (with `fingerprint` when given); ValueError if not one."""
    try:
        tests = cast("dict[str, object] | None", doc.get("tests"))
        outputs = cast("list[dict[str, object]]", doc["outputs"])
        fingerprint = cast("dict[str, object]", doc.get("fingerprint") or {})
        return CacheEntry(
            key=checked_key(str(doc["key"])),
            job=str(doc["job"]),
            outputs=tuple(
                CachedOutput(str(o["path"]), str(o["digest"]), _int(o["size"]), _int(o["mode"]))
                for o in outputs
            ),
            log_digest=None if doc.get("log_digest") is None else str(doc["log_digest"]),
            exit_code=_int(doc["exit_code"]),
            tests=None
            if tests is None
            else TestCounts(
                _int(tests["passed"]),
                _int(tests["failed"]),
                _int(tests["skipped"]),
                tuple(str(f) for f in cast("list[object]", tests.get("failures", []))),
            ),
            fingerprint={str(k): str(v) for k, v in fingerprint.items()},
            created_at=float(cast(float, doc["created_at"])),
            duration_s=float(cast(float, doc["duration_s"])),
        )
    except (KeyError, TypeError, AttributeError, UsageError) as exc:
        raise ValueError(f"not a cache entry: {exc}") from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, found {value!r}")
    return value

"""`/api/v1/cache`: the job cache runners share through the server.

`GET /cache/{key}` answers an entry (outputs with path, digest, size and
mode; the log's digest; test counts) or 404. `PUT /cache/{key}` records one,
for runner tokens only, and only when the server holds every blob it names
(409 otherwise: upload them with `PUT /artifacts/{digest}` first). Keys are
sha256 digests, checked before anything touches the disk, so no key can name
a path. `GET /cache` hands runners the key they hash secret values with.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.access.errors import Forbidden
from conveyor.access.roles import Principal
from conveyor.artifacts.cache import CachedOutput, CacheEntry
from conveyor.core.digest import is_digest
from conveyor.core.errors import NotFound, UsageError
from conveyor.core.records import TestCounts
from conveyor.engine.remote_cache import RemoteCache, entry_to_json
from conveyor.server.auth import Caller, State
from conveyor.server.state import ServerState

router = APIRouter(prefix="/cache", tags=["cache"])

Key = Annotated[
    str,
    PathParam(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="The job's cache key: sha256:<64 hex digits>.",
    ),
]


def _digest(value: str) -> str:
    if not is_digest(value):
        raise ValueError("must be an artifact digest, sha256:<64 hex digits>")
    return value


class OutputIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)
    digest: str
    size: int = Field(ge=0)
    mode: int = Field(ge=0, le=0o7777)

    @field_validator("digest")
    @classmethod
    def _checked_digest(cls, value: str) -> str:
        return _digest(value)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, value: str) -> str:
        if "\x00" in value or not set(value.split("/")).isdisjoint(("", ".", "..")):
            raise ValueError("must be a plain relative path inside the workspace, like dist/app")
        return value


class TestsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    failures: list[str] = Field(default_factory=list, max_length=10_000)


class EntryIn(BaseModel):
    """A job's cached result, as a runner records it after the job succeeded."""

    model_config = ConfigDict(extra="forbid")
    job: str = Field(min_length=1, max_length=1000)
    outputs: list[OutputIn] = Field(default_factory=list, max_length=100_000)
    log_digest: str | None = None
    exit_code: int = 0
    tests: TestsIn | None = None
    fingerprint: dict[str, str] = Field(default_factory=dict, max_length=100_000)
    created_at: float = Field(ge=0)
    duration_s: float = Field(default=0.0, ge=0)

    @field_validator("log_digest")
    @classmethod
    def _checked_log(cls, value: str | None) -> str | None:
        return None if value is None else _digest(value)

    @field_validator("outputs")
    @classmethod
    def _distinct(cls, value: list[OutputIn]) -> list[OutputIn]:
        paths = [o.path for o in value]
        if len(set(paths)) != len(paths):
            raise ValueError("an output path is listed twice; list each file once")
        return value

    def entry(self, key: str) -> CacheEntry:
        tests = self.tests
        return CacheEntry(
            key=key,
            job=self.job,
            outputs=tuple(CachedOutput(o.path, o.digest, o.size, o.mode) for o in self.outputs),
            log_digest=self.log_digest,
            exit_code=self.exit_code,
            tests=None
            if tests is None
            else TestCounts(tests.passed, tests.failed, tests.skipped, tuple(tests.failures)),
            fingerprint=self.fingerprint,
            created_at=self.created_at,
            duration_s=self.duration_s,
        )


class KeyOut(BaseModel):
    hmac_key: str


def _cache(state: ServerState) -> RemoteCache:
    return RemoteCache.at(state.settings.state_dir, cas=state.cas, db=state.db, clock=state.clock)


def _shared_with(caller: Principal) -> None:
    # Entries are shared by every project, so a token held to one project reads none.
    if caller.kind == "user" and caller.project is not None:
        raise Forbidden(
            f"this token is limited to project {caller.project}, and cache entries are "
            "shared by every project; use a token without --project"
        )


@router.get(
    "",
    name="cache_hmac_key",
    summary="The key runners hash secret values into cache keys with (runners only).",
)
def cache_hmac_key(caller: Caller, state: State) -> KeyOut:
    return KeyOut(hmac_key=_cache(state).hmac_key().hex())


@router.get(
    "/{key}",
    name="get_cache_entry",
    summary="A job's cached result by cache key: outputs, log digest, test counts; 404 on a miss.",
)
def get_cache_entry(key: Key, caller: Caller, state: State) -> dict[str, object]:
    _shared_with(caller)
    entry = _cache(state).lookup(key)
    if entry is None:
        raise NotFound(f"no cache entry {key} on this server (never recorded, pruned or corrupt)")
    return entry_to_json(entry)


@router.put(
    "/{key}",
    name="put_cache_entry",
    summary="Record a job's result under its cache key; upload every blob it names first.",
    status_code=201,
)
def put_cache_entry(key: Key, body: EntryIn, caller: Caller, state: State) -> dict[str, object]:
    entry = body.entry(key)
    try:
        _cache(state).record(key, entry)
    except UsageError as err:
        raise HTTPException(422, str(err)) from None
    return entry_to_json(entry)

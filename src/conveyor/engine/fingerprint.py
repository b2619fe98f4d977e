"""A job's fingerprint: every input that decides its result, as named digests.

The cache key is the digest of the fingerprint. Keeping the components (not
only the key) lets `conveyor explain` name exactly what changed between two
executions: a file, an environment variable, an upstream output.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from conveyor.core import digest
from conveyor.core.records import OutputRecord
from conveyor.core.values import frozen
from conveyor.spec.pipeline import SPEC_VERSION, Job

# Bump when the meaning of a cache entry changes, to invalidate every entry.
CACHE_FORMAT = "1"

Fingerprint = dict[str, str]


@frozen
class FingerprintInputs:
    """What a fingerprint is computed from, gathered by the engine."""

    job: Job
    pipeline_env: Mapping[str, str]
    secrets: Mapping[str, str | None]
    secret_key: bytes
    files_listing: str  # digest of the stored listing of input files
    files_kind: str  # "files" (implicit) or "inputs" (declared)
    upstream: Mapping[str, tuple[OutputRecord, ...]]


def compute(inputs: FingerprintInputs) -> Fingerprint:
    """The named components; `cache_key` turns them into the key."""
    job = inputs.job
    fp: Fingerprint = {
        "format": f"cache/{CACHE_FORMAT} spec/{SPEC_VERSION}",
        "script": digest.of_text(job.run),
        "workdir": job.workdir,
        "outputs": digest.of_json(list(job.outputs)),
        "reports": digest.of_json(list(job.reports_junit)),
        inputs.files_kind: inputs.files_listing,
    }
    env = {**inputs.pipeline_env, **job.env, **job.matrix}
    for name, value in env.items():
        fp[f"env:{name}"] = digest.of_text(value)
    for name, secret in inputs.secrets.items():
        # Keyed, so a stored fingerprint cannot be used to guess a secret.
        fp[f"secret:{name}"] = (
            "unset"
            if secret is None
            else "hmac:" + hmac.new(inputs.secret_key, _bytes(secret), hashlib.sha256).hexdigest()
        )
    for need, outputs in inputs.upstream.items():
        fp[f"upstream:{need}"] = digest.of_json(sorted((o.path, o.digest) for o in outputs))
        for output in outputs:
            fp[f"upstream:{need}:{output.path}"] = output.digest
    return fp


def cache_key(fp: Mapping[str, str]) -> str:
    return digest.of_json(dict(fp))


@frozen
class Change:
    """One difference between two fingerprints, said for a person."""

    component: str
    text: str


ListingLoader = Callable[[str], Mapping[str, str] | None]


def diff(old: Mapping[str, str], new: Mapping[str, str], load: ListingLoader) -> list[Change]:
    """What changed from `old` to `new`, most specific first (files by name)."""
    changes: list[Change] = []
    if ("files" in old) != ("files" in new):
        changes.append(Change("inputs", "the job switched between declared and implicit inputs"))
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after or _is_rollup(key, new, old):
            continue
        if key in ("files", "inputs"):
            changes.extend(_file_changes(key, before, after, load))
        else:
            changes.append(Change(key, _describe(key, before, after)))
    return changes


def _is_rollup(key: str, new: Mapping[str, str], old: Mapping[str, str]) -> bool:
    """`upstream:job` sums its per-file components; report those instead."""
    if not key.startswith("upstream:") or key.count(":") != 1:
        return False
    prefix = key + ":"
    return any(k.startswith(prefix) for k in (*new, *old))


def _describe(key: str, before: str | None, after: str | None) -> str:
    kind, _, name = key.partition(":")
    what = {
        "script": "the job's script (`run`) changed",
        "workdir": f"workdir changed from '{before}' to '{after}'",
        "outputs": "the declared outputs changed",
        "reports": "the declared reports changed",
        "format": "Conveyor's cache format changed",
    }
    if key in what:
        return what[key]
    if kind in ("env", "secret"):
        label = "environment variable" if kind == "env" else "secret"
        if before is None:
            return f"{label} {name} was added"
        if after is None:
            return f"{label} {name} was removed"
        return f"{label} {name} changed"
    if kind == "upstream":
        need, _, path = name.partition(":")
        if before is None:
            return f"upstream '{need}' now outputs {path} ({digest.short(after or '')})"
        if after is None:
            return f"upstream '{need}' no longer outputs {path}"
        change = f"{digest.short(before)} -> {digest.short(after)}"
        return f"upstream '{need}' output {path} changed ({change})"
    return f"{key} changed"


def _file_changes(
    key: str, before: str | None, after: str | None, load: ListingLoader
) -> list[Change]:
    if before is None or after is None:
        return []  # a switch between declared and implicit inputs, reported once by `diff`
    old, new = load(before), load(after)
    if old is None or new is None:
        return [Change(key, "input files changed (the earlier listing was pruned)")]
    changes = [
        Change(key, f"file {p} changed") for p in sorted(set(old) & set(new)) if old[p] != new[p]
    ]
    changes += [Change(key, f"file {p} was added") for p in sorted(set(new) - set(old))]
    changes += [Change(key, f"file {p} was removed") for p in sorted(set(old) - set(new))]
    return changes or [Change(key, "the input file patterns changed")]


def _bytes(value: str) -> bytes:
    """A value from the environment as the bytes it was (one not UTF-8 holds escapes)."""
    return value.encode("utf-8", "surrogateescape")

"""The server's job cache as an agent reaches it over HTTP: a `CachePort` on `/api/v1/cache`.

A lookup is one GET (404: a miss). Recording sends every blob the entry names
unless the server has it (HEAD, then PUT by digest, as results are uploaded),
then PUTs the entry; a 409 (a blob pruned meanwhile) sends the blobs again,
once. Nothing here retries for long: a cache the agent cannot reach costs a
run of the job, never a failed one, so a fault is a `ConveyorError` the
caller turns into a warning.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from conveyor.artifacts.cache import CacheEntry
from conveyor.artifacts.cas import ContentStore
from conveyor.control.agent_client import _refusal
from conveyor.core.errors import ExecutorError
from conveyor.engine.remote_cache import entry_from_json, entry_to_json

Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    return None


class HttpCache:
    """A CachePort over the server's cache endpoints; safe from any thread."""

    def __init__(
        self,
        *,
        server: str,
        token: str,
        progress: Progress = _quiet,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=server.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )
        self._progress = progress
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def hmac_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                doc = self._ok(self._call("GET", "/cache")).json()
                try:
                    self._key = bytes.fromhex(str(doc["hmac_key"]))
                except (KeyError, ValueError, TypeError):
                    problem = "the server sent no cache key this agent can read"
                    raise ExecutorError(problem) from None
            return self._key

    def lookup(self, key: str) -> CacheEntry | None:
        response = self._call("GET", f"/cache/{key}")
        if response.status_code == 404:
            return None
        try:
            entry = entry_from_json(self._ok(response).json())
        except ValueError as exc:
            raise ExecutorError(
                f"the server sent a cache entry this agent cannot read: {exc}"
            ) from None
        if entry.key != key:
            raise ExecutorError(f"the server sent the entry of {entry.key} when asked for {key}")
        return entry

    def record(self, entry: CacheEntry, blobs: ContentStore) -> None:
        self._send_blobs(entry, blobs)
        body = {**entry_to_json(entry), "fingerprint": dict(entry.fingerprint)}
        del body["key"]
        response = self._call("PUT", f"/cache/{entry.key}", json=body)
        if response.status_code == 409:
            self._send_blobs(entry, blobs)
            response = self._call("PUT", f"/cache/{entry.key}", json=body)
        self._ok(response)

    def report(self, message: str) -> None:
        self._progress(message)

    def _send_blobs(self, entry: CacheEntry, blobs: ContentStore) -> None:
        digests = [o.digest for o in entry.outputs]
        digests += [entry.log_digest] if entry.log_digest else []
        for digest in digests:
            if self._call("HEAD", f"/artifacts/{digest}").status_code == 200:
                continue
            headers = {
                "Content-Length": str(blobs.size(digest)),
                "Content-Type": "application/octet-stream",
            }
            with blobs.open(digest) as blob:
                self._ok(self._call("PUT", f"/artifacts/{digest}", content=blob, headers=headers))

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise ExecutorError(
                f"cannot reach the server's cache ({type(exc).__name__}) for {method} {path}"
            ) from None

    def _ok(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise _refusal(response)
        return response

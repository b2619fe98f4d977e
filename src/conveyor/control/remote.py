"""The control plane through `conveyor server`'s REST API (API v1).

Reads (runs, one run, job logs, artifacts) go to the server and come back as
the same records the embedded control plane returns, rebuilt from the JSON
both sides share (`core/record_json.py`). Remote Runs are submitted as a
source bundle, followed by polling the run, canceled and retried. Releases,
promotions, waivers, environments, release notes, change records and
evidence bundles go through the delivery endpoints (`delivery_client.py`),
with the token's owner as who acts. What the API cannot do yet is
refused with a UsageError naming the command: a command run against a server
never quietly reads or writes the local store instead.

The token travels only in the Authorization header; no message names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn
from urllib.parse import quote

import httpx

from conveyor import __version__
from conveyor.access.errors import Forbidden, Unauthenticated
from conveyor.control.delivery_client import DeliveryCalls
from conveyor.core.digest import is_digest
from conveyor.core.errors import (
    ArtifactError,
    Conflict,
    ConveyorError,
    NotFound,
    StoreError,
    UsageError,
)
from conveyor.core.record_json import RecordFormatError, run_from_json
from conveyor.core.records import RunRecord

# The server answers at most this many runs a page (`GET /api/v1/runs?limit=`).
PAGE_LIMIT = 200
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

# The command each control-plane method serves, to name it when the API lacks it.
_COMMANDS: Mapping[str, str] = {
    "run": "run",
    "dry_run": "run --dry-run",
    "explain": "explain",
    "reconcile": "reconcile",
    "release_run": "run (automatic releases)",
}


class ServerUnavailable(StoreError):
    """The server cannot be reached or failed: the shared store is out of reach."""


class RemoteControlPlane(DeliveryCalls):
    """Runs and their history on a `conveyor server`, as one token's holder sees them."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = _TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"conveyor/{__version__}",
            },
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    # --- reads ---------------------------------------------------------------

    def list_runs(
        self,
        *,
        limit: int = 20,
        status: str | None = None,
        branch: str | None = None,
        before: int | None = None,
    ) -> list[RunRecord]:
        found: list[RunRecord] = []
        cursor = None if before is None else str(before)
        while len(found) < limit:
            params = {"limit": min(limit - len(found), PAGE_LIMIT), "cursor": cursor}
            params |= {"status": status, "branch": branch}
            page = self._json("/api/v1/runs", {k: v for k, v in params.items() if v is not None})
            found += [self._run(doc) for doc in _items(page, "runs", self.base_url)]
            cursor = _cursor(page.get("next_cursor"), self.base_url)
            if cursor is None:
                break
        return found

    def get_run(self, ref: str | None) -> RunRecord:
        run_id = _run_id(ref)
        if run_id is not None:
            return self._run(self._json(f"/api/v1/runs/{run_id}"))
        latest = self.list_runs(limit=1)
        if not latest:
            raise NotFound(f"no runs yet on {self.base_url}")
        return latest[0]

    def job_log(self, ref: str | None, job: str, attempt: int | None = None) -> tuple[str, bool]:
        """The job's log text (or that of one of its attempts), and whether it is still being
        written."""
        run = self.get_run(ref)
        path = f"/api/v1/runs/{run.id}/jobs/{quote(job, safe='')}/log"
        params = None if attempt is None else {"attempt": attempt}
        with self._request("GET", path, params) as got:
            text = got.read().decode("utf-8", errors="replace")
            complete = got.headers.get("X-Conveyor-Log-Complete", "true") == "true"
        return text, not complete

    def artifact_available(self, digest: str) -> bool:
        if not is_digest(digest):
            return False
        # Only the answer's status is read; closing the stream stops the download.
        try:
            with self._request("GET", _artifact_path(digest)):
                return True
        except NotFound:
            return False

    def fetch_artifact(self, digest: str, dest: Path) -> None:
        """Write an artifact's content to `dest`, checking its digest before it appears there."""
        if not is_digest(digest):
            raise UsageError(
                f"'{digest}' is not an artifact digest; write sha256:<64 hex digits> "
                "(`conveyor artifacts ls RUN --json` shows them whole)"
            )
        with self._request("GET", _artifact_path(digest)) as got:
            _write_verified(digest, got.iter_bytes(), dest)

    # --- remote runs ---------------------------------------------------------

    def submit_run(self, bundle: Path, options: Mapping[str, object]) -> RunRecord:
        """Upload a source bundle and start a Run of it on the server's runners."""
        with bundle.open("rb") as blob:
            files = {"bundle": ("bundle.tar.gz", blob, "application/gzip")}
            data = {"options": json.dumps(dict(options))}
            return self._run(self._send("POST", "/api/v1/runs", files=files, data=data))

    def cancel_run(self, ref: str | None) -> RunRecord:
        """Cancel a Run on the server; its running jobs stop at their next heartbeat."""
        run = self.get_run(ref)
        return self._run(self._send("POST", f"/api/v1/runs/{run.id}/cancel"))

    def retry_run(self, ref: str | None) -> RunRecord:
        """A new Run of a finished Run: jobs that succeeded carried over, the rest run again."""
        run = self.get_run(ref)
        return self._run(self._send("POST", f"/api/v1/runs/{run.id}/retry"))

    def follow_run(
        self,
        run_id: int,
        on_change: Callable[[RunRecord], None],
        *,
        poll_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RunRecord:
        """Poll a Run until it finishes, calling `on_change` whenever a job's status moved or
        one of its attempts ended (a retry may come and go between two looks)."""
        seen: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
        while True:
            run = self.get_run(str(run_id))
            now = tuple(
                (job.name, job.status, tuple(a.status for a in job.attempt_results))
                for job in run.jobs
            )
            if now != seen:
                on_change(run)
                seen = now
            if run.status != "running":
                return run
            sleep(poll_s)

    def close(self) -> None:
        self._client.close()

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        """Every other control-plane method: refused until the API serves it."""
        command = _COMMANDS.get(name)
        if command is None:
            raise AttributeError(name)

        def refuse(*_: object, **__: object) -> NoReturn:
            raise UsageError(
                f"`conveyor {command}` is not available against a server yet; unset "
                "CONVEYOR_SERVER to use this machine's workspace"
            )

        return refuse

    # --- HTTP ----------------------------------------------------------------

    @contextmanager
    def _request(
        self, method: str, path: str, params: Mapping[str, str | int] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed answer that succeeded; anything else as a Conveyor error."""
        try:
            with self._client.stream(method, path, params=params) as answer:
                if not answer.is_success:
                    answer.read()
                    raise error_for(answer, self.base_url)
                yield answer
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"cannot reach the server at {self.base_url} ({type(exc).__name__}: {exc}); "
                "check CONVEYOR_SERVER and that the server is running"
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        files: Mapping[str, tuple[str, BinaryIO, str]] | None = None,
        data: Mapping[str, str] | None = None,
        json: Mapping[str, object] | None = None,
    ) -> dict[str, object]:
        """A JSON answer to a request with a body; anything else as a Conveyor error."""
        body = None if json is None else dict(json)
        try:
            answer = self._client.request(method, path, files=files, data=data, json=body)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(
                f"cannot reach the server at {self.base_url} ({type(exc).__name__}: {exc}); "
                "check CONVEYOR_SERVER and that the server is running"
            ) from None
        if not answer.is_success:
            raise error_for(answer, self.base_url)
        return self._document(answer, path)

    def _post_json(self, path: str, body: Mapping[str, object]) -> dict[str, object]:
        """A JSON answer to a POST of the JSON `body`; anything else as a Conveyor error."""
        return self._send("POST", path, json=body)

    def _document(self, answer: httpx.Response, path: str) -> dict[str, object]:
        """The JSON object an answer holds; a server that sent none is a fault (exit 3)."""
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise ServerUnavailable(f"the server at {self.base_url} answered {path} with no JSON")
        return doc

    def _json(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, object]:
        with self._request("GET", path, params) as answer:
            answer.read()
            return self._document(answer, path)

    def _run(self, doc: object) -> RunRecord:
        try:
            return run_from_json(doc if isinstance(doc, dict) else {})
        except RecordFormatError as err:
            raise ServerUnavailable(
                f"the server at {self.base_url} answered a run this CLI cannot read ({err}); "
                "is the CLI's version the server's?"
            ) from None


def error_for(answer: httpx.Response, server: str) -> ConveyorError:
    """The Conveyor error an HTTP answer means, so exit codes match the embedded commands."""
    status = answer.status_code
    detail = _detail(answer)
    if status == 401:
        return Unauthenticated(
            f"the server at {server} refused CONVEYOR_TOKEN ({detail}); set CONVEYOR_TOKEN to "
            "a valid token (an admin makes one with `conveyor token create`)"
        )
    if status == 403:
        return Forbidden(f"the server at {server} refused: {detail}")
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    if 400 <= status < 500:
        return UsageError(detail)
    return ServerUnavailable(f"the server at {server} failed ({status}): {detail}")


def _detail(answer: httpx.Response) -> str:
    """The problem's detail, or the status's reason when the answer is no problem+json."""
    try:
        doc = answer.json()
    except ValueError:
        doc = None
    detail = doc.get("detail") if isinstance(doc, dict) else None
    return str(detail) if detail else answer.reason_phrase


def _run_id(ref: str | None) -> int | None:
    """A Run id from what a user typed, None for the latest; as the embedded history reads it."""
    if ref is None or ref in ("latest", "last", "-"):
        return None
    text = ref.removeprefix("#")
    if not text.isdigit() or len(text) > 18:
        raise NotFound(f"'{ref}' is not a run id; use a number from `conveyor runs` or 'latest'")
    return int(text)


def _items(page: Mapping[str, object], key: str, server: str) -> list[object]:
    items = page.get(key)
    if not isinstance(items, list):
        raise ServerUnavailable(f"the server at {server} answered no list of {key}")
    return items


def _cursor(value: object, server: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ServerUnavailable(f"the server at {server} answered a cursor that is not text")


def _artifact_path(digest: str) -> str:
    return f"/api/v1/artifacts/{quote(digest, safe=':')}"


def _write_verified(digest: str, chunks: Iterator[bytes], dest: Path) -> None:
    """Stream `chunks` into a temp file beside `dest`; rename it there only if the digest holds."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:120]}.", suffix=".part")
    except OSError as err:
        raise ArtifactError(f"cannot write {dest}: {err.strerror or err}") from None
    tmp = Path(name)
    try:
        found = _copy_hashing(chunks, fd)
        if found == digest:
            tmp.replace(dest)
    except OSError as err:
        raise ArtifactError(f"cannot write {dest}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    if found != digest:
        raise ArtifactError(f"the server sent {found} for {digest}; nothing was written")


def _copy_hashing(chunks: Iterator[bytes], fd: int) -> str:
    hasher = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            hasher.update(chunk)
            out.write(chunk)
    return "sha256:" + hasher.hexdigest()

"""The server as an agent reaches it over HTTP: a `WorkSource` for the `AgentLoop`.

Connection faults and 502/503/504 answers are retried with a growing pause,
so an agent outlives a server restart and goes on where it was: a claim
that fails is simply asked for again, a heartbeat or a report is repeated
until the server answers. Blobs move by digest: before a job starts, the
source bundle and the outputs of the jobs it needs are fetched into the
agent's own content store; before a result is reported, its log and outputs
are uploaded unless the server already has them (HEAD). A job's live log is
shipped in batches (every half second, 64 KiB at most per request), read
from the file the AgentLoop writes it to, already masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import httpx

from conveyor.artifacts.cas import ContentStore
from conveyor.control.agent_wire import claim_from_json, digests_of, result_to_json
from conveyor.core.errors import Conflict, ConveyorError, ExecutorError, NotFound, UsageError
from conveyor.core.records import JOB_STATES, JobState
from conveyor.core.values import frozen
from conveyor.engine.dispatch_rules import AttemptResult, Beat, Claim

Progress = Callable[[str], None]
RETRYABLE = frozenset({502, 503, 504})
LOG_EVERY_S = 0.5
LOG_BATCH = 64 << 10
MAX_PAUSE_S = 2.0


def _quiet(_line: str) -> None:
    return None


@frozen
class Registration:
    """What the server answered a registration with."""

    agent_id: int
    name: str
    lease_s: float
    heartbeat_s: float


def _refusal(response: httpx.Response) -> ConveyorError:
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text[:200]
    status = response.status_code
    if status == 401:
        return UsageError(f"the server refused the token: {detail}")
    if status == 403:
        return UsageError(f"the server does not allow this: {detail}")
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    return ExecutorError(f"the server answered {status}: {detail}")


class HttpWorkSource:
    """A WorkSource over `/api/v1/agents` and `/api/v1/attempts`; safe from any thread."""

    def __init__(
        self,
        *,
        server: str,
        token: str,
        cas: ContentStore,
        work_dir: Path,
        progress: Progress = _quiet,
        wait_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=server.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, read=wait_s + 30.0),
            transport=transport,
        )
        self._cas = cas
        self._work_dir = work_dir
        self.progress = progress
        self._wait_s = wait_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._shippers: dict[int, LogShipper] = {}
        # Blobs the server was seen to hold: blobs are immutable, so asking again is waste.
        self._on_server: set[str] = set()
        self.agent_id: int | None = None

    # --- calls, retried ---------------------------------------------------------

    def _call(
        self, method: str, path: str, *, give_up_s: float | None = None, **kwargs: object
    ) -> httpx.Response:
        """The server's answer; retried while unreachable (forever, or for `give_up_s`)."""
        deadline = None if give_up_s is None else time.monotonic() + give_up_s
        pause = 0.1
        while True:
            try:
                response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
                if response.status_code not in RETRYABLE:
                    return response
                problem = f"the server answered {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"cannot reach the server ({type(exc).__name__})"
            if deadline is not None and time.monotonic() + pause > deadline:
                raise ExecutorError(f"{problem}; gave up on {method} {path}")
            self.progress(f"{problem}; retrying in {pause:.1f}s")
            time.sleep(pause)
            pause = min(MAX_PAUSE_S, pause * 2)

    def _ok(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise _refusal(response)
        return response

    # --- registration -----------------------------------------------------------

    def register(
        self, *, name: str, labels: list[str], concurrency: int, give_up_s: float = 30.0
    ) -> Registration:
        """Register (again) as `name`; later calls act as this agent."""
        body = {"name": name, "labels": labels, "concurrency": concurrency}
        doc = self._ok(self._call("POST", "/agents", json=body, give_up_s=give_up_s)).json()
        self.agent_id = int(doc["id"])
        return Registration(self.agent_id, str(doc["name"]), doc["lease_s"], doc["heartbeat_s"])

    def stop(self) -> None:
        """Claim nothing more; a claim answered after this is handed back at once."""
        self._stopping.set()

    def close(self) -> None:
        with self._lock:
            shippers = list(self._shippers.values())
        for shipper in shippers:
            shipper.finish()
        self._http.close()

    # --- the WorkSource ---------------------------------------------------------

    def claim(self) -> Claim | None:
        if self._stopping.is_set() or self.agent_id is None:
            return None
        try:
            response = self._call(
                "POST",
                f"/agents/{self.agent_id}/claim",
                params={"wait": self._wait_s},
                give_up_s=0.0,
            )
        except ExecutorError as exc:
            self.progress(f"{exc}; asking again")
            time.sleep(0.5)
            return None
        if response.status_code == 204:
            return None
        claim = claim_from_json(self._ok(response).json())
        if self._stopping.is_set():
            self.hand_back(claim.attempt_id)
            return None
        self.progress(
            f"claimed run {claim.run_id} job {claim.job.name} "
            f"(attempt {claim.attempt_id}, queued {claim.queued_s:.3f}s)"
        )
        return self._prepared(claim)

    def _prepared(self, claim: Claim) -> Claim | None:
        """The claim, with its blobs fetched; None (and reported failed) if one is missing."""
        wanted = [claim.source.bundle] if claim.source.bundle else []
        wanted += [output.digest for output in claim.upstream]
        try:
            for digest in wanted:
                self._fetch(digest)
        except NotFound as exc:
            failed = AttemptResult("failed", reason=f"cannot fetch what the job needs: {exc}")
            self.complete(claim.attempt_id, failed)
            return None
        shipper = LogShipper(
            self, claim.attempt_id, self._work_dir / f"attempt-{claim.attempt_id}.log"
        )
        with self._lock:
            self._shippers[claim.attempt_id] = shipper
        shipper.start()
        return claim

    def heartbeat(self, attempt_id: int) -> Beat:
        response = self._ok(self._call("POST", f"/attempts/{attempt_id}/heartbeat"))
        action = response.json()["action"]
        if action == "continue":
            return "ok"
        self.progress(f"attempt {attempt_id}: the server says {action}; stopping it")
        return "cancel" if action == "cancel" else "lost"

    def complete(self, attempt_id: int, result: AttemptResult) -> JobState | None:
        self._finish_log(attempt_id)
        for digest in digests_of(result):
            self._upload(digest)
        body = result_to_json(result)
        response = self._call("POST", f"/attempts/{attempt_id}/complete", json=body)
        if response.status_code == 409:
            # A blob seen before was pruned on the server since: send it again, once.
            self._on_server.clear()
            for digest in digests_of(result):
                self._upload(digest)
            response = self._call("POST", f"/attempts/{attempt_id}/complete", json=body)
        answer = self._ok(response).json()
        if not answer["accepted"]:
            self.progress(
                f"attempt {attempt_id} finished: {result.status}, refused: no longer held"
            )
            return None
        # A server that does not say how it judged the result recorded it as sent.
        recorded = answer.get("status") or result.status
        judged = "" if recorded == result.status else f" (sent as {result.status})"
        self.progress(f"attempt {attempt_id} finished: {recorded}{judged}")
        if recorded not in JOB_STATES:  # a newer server's word: at least, not a success
            return None
        return cast(JobState, recorded)

    def hand_back(self, attempt_id: int) -> bool:
        self._finish_log(attempt_id)
        response = self._call("POST", f"/attempts/{attempt_id}/hand-back", give_up_s=10.0)
        accepted = bool(self._ok(response).json()["accepted"])
        self.progress(f"attempt {attempt_id} handed back")
        return accepted

    # --- logs and blobs ---------------------------------------------------------

    def send_log(self, attempt_id: int, data: bytes) -> bool:
        """Append to the attempt's live log on the server; False once the attempt is over."""
        response = self._call("POST", f"/attempts/{attempt_id}/log", content=data, give_up_s=5.0)
        return response.status_code < 400

    def _finish_log(self, attempt_id: int) -> None:
        with self._lock:
            shipper = self._shippers.pop(attempt_id, None)
        if shipper is not None:
            shipper.finish()

    def _fetch(self, digest: str) -> None:
        if self._cas.has(digest):
            return
        response = self._call("GET", f"/artifacts/{digest}")
        self._ok(response)
        blob = self._cas.put_bytes(response.content)
        if blob.digest != digest:
            self._cas.delete(blob.digest)
            raise ExecutorError(f"the server sent {blob.digest} when asked for {digest}")

    def _upload(self, digest: str) -> None:
        """Send a blob unless the server has it; retried from its start after a fault."""
        if digest in self._on_server:
            return
        if self._call("HEAD", f"/artifacts/{digest}").status_code != 200:
            with self._cas.open(digest) as blob:
                self._put(digest, blob)
        self._on_server.add(digest)

    def _put(self, digest: str, blob: BinaryIO) -> None:
        size = self._cas.size(digest)
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        self._ok(self._call("PUT", f"/artifacts/{digest}", content=blob, headers=headers))


class LogShipper:
    """Sends what a job adds to its log file to the server, in batches, on a thread."""

    def __init__(self, source: HttpWorkSource, attempt_id: int, path: Path) -> None:
        self._source = source
        self._attempt_id = attempt_id
        self._path = path
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"log-{attempt_id}", daemon=True)
        self._handle: BinaryIO | None = None
        self._open = True

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Send what is left and stop."""
        self._done.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._done.wait(LOG_EVERY_S):
                self._ship()
            self._ship()
        finally:
            if self._handle is not None:
                self._handle.close()

    def _ship(self) -> None:
        if not self._open:
            return
        if self._handle is None:
            try:
                # Kept open: the loop removes the file once the log is stored, and the
                # open handle still reads the last lines.
                self._handle = self._path.open("rb")
            except FileNotFoundError:
                return
        while chunk := self._handle.read(LOG_BATCH):
            try:
                self._open = self._source.send_log(self._attempt_id, chunk)
            except ConveyorError:
                self._open = False
            if not self._open:
                return

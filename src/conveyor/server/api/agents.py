"""The agent endpoints: register, long-poll for a job, heartbeat, stream the log, report.

Only runner tokens may call them (the permission table), and an agent acts
only on itself and on its own attempts: the agent must have been registered
with the caller's token, else 403. Every state change goes through the
dispatch service, which records it as Events in the same transaction.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from conveyor.access.errors import Forbidden
from conveyor.access.roles import Principal
from conveyor.control.agent_wire import claim_to_json, digests_of
from conveyor.core.digest import is_digest
from conveyor.core.errors import Conflict
from conveyor.core.records import JobState, OutputRecord, TestCounts
from conveyor.engine.dispatch_rules import AttemptResult, Claim
from conveyor.server.agent_work import WorkSignal
from conveyor.server.auth import Caller, State
from conveyor.server.state import ServerState
from conveyor.store import agents, attempts, queue
from conveyor.store.attempts import AttemptRecord

router = APIRouter(tags=["agents"])
# A heartbeat every this fraction of the lease keeps it through two lost beats.
HEARTBEAT_SHARE = 1 / 6
MAX_LOG_BATCH = 4 << 20
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"


def _checked_digest(value: str) -> str:
    if not is_digest(value):
        raise ValueError("must be an artifact digest, sha256:<64 hex digits>")
    return value


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=64
    )
    concurrency: int = Field(default=1, ge=1, le=256)


class AgentOut(BaseModel):
    id: int
    name: str
    labels: list[str]
    concurrency: int
    lease_s: float
    heartbeat_s: float


class OutputIn(BaseModel):
    path: str = Field(min_length=1, max_length=4096)
    digest: str
    size: int = Field(ge=0)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _checked_digest(value)


class TestsIn(BaseModel):
    passed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    skipped: int = Field(default=0, ge=0)
    failures: list[str] = Field(default_factory=list)


class ResultIn(BaseModel):
    """How an attempt ended, as `conveyor agent` reports it."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["success", "cached", "failed", "timed_out", "canceled"]
    exit_code: int | None = None
    duration_s: float = Field(default=0.0, ge=0)
    reason: str | None = Field(default=None, max_length=4000)
    log_digest: str | None = None
    tests: TestsIn | None = None
    outputs: list[OutputIn] = Field(default_factory=list)

    @field_validator("log_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        return None if value is None else _checked_digest(value)

    def result(self) -> AttemptResult:
        tests = self.tests
        return AttemptResult(
            status=self.status,
            exit_code=self.exit_code,
            duration_s=self.duration_s,
            reason=self.reason,
            log_digest=self.log_digest,
            tests=None
            if tests is None
            else TestCounts(tests.passed, tests.failed, tests.skipped, tuple(tests.failures)),
            outputs=tuple(OutputRecord(o.path, o.digest, o.size) for o in self.outputs),
        )


class Answer(BaseModel):
    accepted: bool


class Completed(Answer):
    status: JobState | None = Field(
        default=None,
        description="The attempt's status as the server recorded it, when accepted: a "
        "success whose outputs take a file another job of the Run produced is `failed`; a "
        "failure to be retried is `failed` (its job is queued again). The same result sent "
        "again gets the same answer.",
    )


class BeatOut(BaseModel):
    action: Literal["continue", "cancel", "lost"]


# --- who calls ------------------------------------------------------------------


def _token_id(caller: Principal) -> int:
    """The id of the caller's token (authenticated by `authorize`)."""
    if caller.token_id is None:
        raise Forbidden("agent endpoints need a runner token")
    return caller.token_id


def _own_agent(state: ServerState, agent_id: int, token_id: int) -> None:
    """NotFound for an unknown agent, Forbidden for one registered with another token."""
    with state.db.write() as tx:
        agent, _ = agents.touch_agent(tx, agent_id, state.clock.now())
    if agent.token_id != token_id:
        raise Forbidden(f"agent {agent_id} was registered with another token; use that token")


def _own_attempt(state: ServerState, attempt_id: int, token_id: int) -> AttemptRecord:
    """The attempt, when it was claimed by an agent of the caller's token; 404/403 otherwise."""
    with state.db.write() as tx:
        attempt = attempts.lock_attempt(tx, attempt_id)
        if attempt.agent_id is None:
            raise Forbidden(f"job attempt {attempt_id} belongs to no agent of this token")
        agent, _ = agents.touch_agent(tx, attempt.agent_id, state.clock.now())
    if agent.token_id != token_id:
        raise Forbidden(
            f"job attempt {attempt_id} belongs to agent {agent.name}, registered with "
            "another token; an agent may only act on its own attempts"
        )
    return attempt


def _live_log(state: ServerState, run_id: int, job_run_id: int) -> Path:
    """Where the server keeps a running attempt's log, where `History.job_log` reads it."""
    with state.db.read() as tx:
        position = queue.job_run(tx, job_run_id).position
    return _run_logs(state, run_id) / f"{position:04d}.log"


def _run_logs(state: ServerState, run_id: int) -> Path:
    return state.history.workspace.logs_dir / f"run-{run_id}"


def _forget_live_log(state: ServerState, run_id: int, job_run_id: int) -> None:
    """Remove a live log; most jobs of most runs never sent one, which a stat tells."""
    if _run_logs(state, run_id).is_dir():
        _live_log(state, run_id, job_run_id).unlink(missing_ok=True)


# --- endpoints ------------------------------------------------------------------


@router.post("/agents", name="register_agent", summary="Register an agent (runner tokens only).")
def register_agent(body: AgentIn, caller: Caller, state: State) -> AgentOut:
    token_id = _token_id(caller)
    agent = state.dispatch.register_agent(
        name=body.name, labels=body.labels, concurrency=body.concurrency, token_id=token_id
    )
    lease_s = state.settings.lease_s
    return AgentOut(
        id=agent.id,
        name=agent.name,
        labels=list(agent.labels),
        concurrency=agent.concurrency,
        lease_s=lease_s,
        heartbeat_s=lease_s * HEARTBEAT_SHARE,
    )


@router.post(
    "/agents/{agent_id}/claim",
    name="claim_job",
    summary="Long-poll for a job: 200 with the claim, or 204 when none came within `wait` s.",
    responses={204: {"description": "No job fits this agent yet; ask again."}},
)
async def claim_job(
    agent_id: int,
    request: Request,
    caller: Caller,
    state: State,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds to hold the request.")] = 20,
) -> Response:
    token_id = _token_id(caller)
    await run_in_threadpool(_own_agent, state, agent_id, token_id)
    signal: WorkSignal = request.app.state.work_signal
    deadline = time.monotonic() + wait
    while True:
        claim = await run_in_threadpool(state.dispatch.claim, agent_id)
        if claim is not None:
            return await run_in_threadpool(_handed_out, state, claim)
        left = deadline - time.monotonic()
        if left <= 0 or await request.is_disconnected():
            return Response(status_code=204)
        await signal.wait(left)


def _handed_out(state: ServerState, claim: Claim) -> Response:
    """The claim as JSON; a log left by an earlier attempt of the job is started afresh."""
    state.metrics.job_queue_time.observe(claim.queued_s)
    _forget_live_log(state, claim.run_id, claim.job_run_id)
    return Response(json.dumps(claim_to_json(claim)), media_type="application/json")


@router.post(
    "/attempts/{attempt_id}/heartbeat",
    name="heartbeat_attempt",
    summary="Extend the lease: continue, cancel (stop the job) or lost (stop; not yours now).",
)
def heartbeat_attempt(attempt_id: int, caller: Caller, state: State) -> BeatOut:
    attempt = _own_attempt(state, attempt_id, _token_id(caller))
    assert attempt.agent_id is not None  # checked by _own_attempt
    beat = state.dispatch.heartbeat(attempt_id, agent_id=attempt.agent_id)
    return BeatOut(action="continue" if beat == "ok" else beat)


@router.post(
    "/attempts/{attempt_id}/log",
    name="append_attempt_log",
    summary="Append a batch of the job's log (raw bytes, already masked by the agent).",
    status_code=204,
)
async def append_attempt_log(
    attempt_id: int, request: Request, caller: Caller, state: State
) -> Response:
    token_id = _token_id(caller)
    attempt = await run_in_threadpool(_own_attempt, state, attempt_id, token_id)
    if attempt.status != "running":
        raise Conflict(f"job attempt {attempt_id} is {attempt.status}; its log is closed")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOG_BATCH:
            raise HTTPException(413, f"a log batch may hold at most {MAX_LOG_BATCH} bytes")
    path = await run_in_threadpool(_live_log, state, attempt.run_id, attempt.job_run_id)
    await run_in_threadpool(_append, path, bytes(body))
    return Response(status_code=204)


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as out:
        out.write(data)


@router.post(
    "/attempts/{attempt_id}/complete",
    name="complete_attempt",
    summary="Report how the attempt ended; upload its log and outputs first.",
)
def complete_attempt(attempt_id: int, body: ResultIn, caller: Caller, state: State) -> Completed:
    attempt = _own_attempt(state, attempt_id, _token_id(caller))
    assert attempt.agent_id is not None  # checked by _own_attempt
    result = body.result()
    missing = [d for d in digests_of(result) if not state.cas.has(d)]
    if missing:
        raise Conflict(
            f"the server does not have {missing[0]} named in the result; upload it with "
            "PUT /api/v1/artifacts/{digest} first"
        )
    status = state.dispatch.complete(attempt_id, agent_id=attempt.agent_id, result=result)
    if status is not None:
        state.metrics.job_duration.observe(result.duration_s)
        _forget_live_log(state, attempt.run_id, attempt.job_run_id)
    return Completed(accepted=status is not None, status=status)


@router.post(
    "/attempts/{attempt_id}/hand-back",
    name="hand_back_attempt",
    summary="Give the job back unfinished; it is queued again at once.",
)
def hand_back_attempt(attempt_id: int, caller: Caller, state: State) -> Answer:
    attempt = _own_attempt(state, attempt_id, _token_id(caller))
    assert attempt.agent_id is not None  # checked by _own_attempt
    return Answer(accepted=state.dispatch.hand_back(attempt_id, agent_id=attempt.agent_id))

"""`/api/v1/runs`: list, get, job logs (complete and live); create, cancel and retry Runs.

A Run is created from an uploaded source bundle (`conveyor run --remote`) or
from a project's commit (JSON; runners fetch it with git) and handed to
runners by the dispatch service; a retry is a new Run whose jobs
that succeeded before are carried over. Live logs are Server-Sent Events made
by polling the stored log, so any server process can serve any stream.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.types import Message

from conveyor.core.errors import NotFound, UsageError
from conveyor.core.record_json import run_json
from conveyor.core.records import RUN_STATUSES, TERMINAL_JOB_STATES, RunId, RunRecord
from conveyor.engine.history import find_job
from conveyor.engine.remote_runs import RemoteRunRequest
from conveyor.server.auth import Caller, State, require_project
from conveyor.store import runs as run_store

router = APIRouter(prefix="/runs", tags=["runs"])
_DEFAULT_PROJECT = "default"
_POLL_S = 0.25
_MAX_JSON = 64 << 10


def parse_cursor(cursor: str | None) -> int | None:
    """The position a `next_cursor` names; UsageError for anything else."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise UsageError(f"cursor: '{cursor}' is not a cursor; pass back a `next_cursor` as given")
    return int(cursor)


@router.get("", name="list_runs", summary="List runs, newest first.")
def list_runs(
    *,
    caller: Caller,
    state: State,
    status: Annotated[str | None, Query(description="Only runs with this status.")] = None,
    branch: Annotated[str | None, Query(description="Only runs of this branch.")] = None,
    project: Annotated[str | None, Query(description="Only runs of this project.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
) -> dict[str, object]:
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(
            f"status: '{status}' is not a run status; use one of {', '.join(RUN_STATUSES)}"
        )
    found = run_store.list_runs(
        state.db,
        project=caller.project or project,
        status=status,
        branch=branch,
        limit=limit,
        before=parse_cursor(cursor),
        with_jobs=True,
    )
    more = len(found) == limit
    return {
        "runs": [run_json(run) for run in found],
        "next_cursor": str(found[-1].id) if found and more else None,
    }


def _visible_run(caller: Caller, state: State, run_id: int) -> RunRecord:
    run = state.history.get_run(run_id)
    if caller.project is not None and run.project != caller.project:
        # A run of another project is not shown to exist.
        raise NotFound(f"no run {run_id}")
    return run


@router.get("/{run_id}", name="get_run", summary="One run, as `conveyor show RUN --json`.")
def get_run(run_id: int, caller: Caller, state: State) -> dict[str, object]:
    return run_json(_visible_run(caller, state, run_id))


@router.get(
    "/{run_id}/jobs/{job}/log",
    name="job_log",
    summary="A job's complete log as text (secrets masked).",
    response_class=PlainTextResponse,
)
def job_log(
    run_id: int,
    job: str,
    caller: Caller,
    state: State,
    attempt: Annotated[
        int | None,
        Query(ge=1, description="That attempt's own log (`attempt_results` lists them)."),
    ] = None,
) -> PlainTextResponse:
    _visible_run(caller, state, run_id)
    text, live = state.history.job_log(run_id, job, attempt)
    return PlainTextResponse(text, headers={"X-Conveyor-Log-Complete": str(not live).lower()})


# --- creating, canceling and retrying remote Runs -------------------------------------

_CREATE = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["bundle"],
                    "properties": {
                        "bundle": {"type": "string", "format": "binary"},
                        "options": {
                            "type": "string",
                            "description": 'JSON: {"jobs": [...], "branch": ..., "commit": '
                            '..., "event": "push", "keep_going": false, "project": ...}',
                        },
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["project", "commit"],
                    "properties": {
                        "project": {"type": "string"},
                        "commit": {"type": "string", "description": "The full commit id."},
                        "branch": {"type": "string"},
                        "event": {"type": "string", "default": "push"},
                        "jobs": {"type": "array", "items": {"type": "string"}},
                        "keep_going": {"type": "boolean", "default": False},
                    },
                }
            },
        },
    }
}


class RunOptions(BaseModel):
    """The fields sent with a source bundle."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1000
    )
    branch: Annotated[str, StringConstraints(max_length=255)] | None = None
    commit: Annotated[str, StringConstraints(max_length=64)] | None = None
    event: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "push"
    keep_going: bool = False
    project: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


@router.post(
    "",
    name="create_run",
    status_code=201,
    summary="Start a Run of an uploaded source bundle (multipart: `bundle`, `options`) or "
    "of a project's commit (JSON: `project`, `commit`, `branch`), which runners fetch with git.",
    openapi_extra=_CREATE,
)
async def create_run(request: Request, caller: Caller, state: State) -> JSONResponse:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return await _create_from_commit(request, caller, state)
    if kind != "multipart/form-data":
        raise UsageError(
            f"Content-Type: '{kind[:100]}' is not accepted; send multipart/form-data with a "
            "`bundle` file (`conveyor run --remote` does), or JSON naming a project's commit"
        )
    limit = state.settings.max_upload_bytes
    with tempfile.TemporaryDirectory(dir=_uploads(state)) as scratch:
        bundle = Path(scratch) / "bundle.tar.gz"
        options = await _receive(request, limit, bundle)
        project = options.project or caller.project or _DEFAULT_PROJECT
        require_project(caller, project)
        ask = RemoteRunRequest(
            project=project,
            targets=tuple(options.jobs),
            branch=options.branch,
            commit=options.commit,
            event=options.event,
            keep_going=options.keep_going,
        )
        service = state.remote_runs
        run_id = await run_in_threadpool(service.submit_bundle, bundle, ask, actor=caller.name)
    return JSONResponse(run_json(state.history.get_run(run_id)), status_code=201)


class CommitRun(BaseModel):
    """A Run of a project's commit, which runners fetch with git."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    commit: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    branch: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    event: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "push"
    jobs: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=1000
    )
    keep_going: bool = False


async def _create_from_commit(request: Request, caller: Caller, state: State) -> JSONResponse:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_JSON:
            raise HTTPException(413, f"a JSON run request may hold at most {_MAX_JSON} bytes")
    try:
        ask = CommitRun.model_validate_json(body)
    except ValidationError as exc:
        raise UsageError(_fields(exc, "")) from None
    require_project(caller, ask.project)
    run_id = await run_in_threadpool(
        state.remote_runs.submit_commit,
        ask.project,
        ask.commit,
        branch=ask.branch,
        event=ask.event,
        actor=caller.name,
        targets=tuple(ask.jobs),
        keep_going=ask.keep_going,
    )
    return JSONResponse(run_json(state.history.get_run(run_id)), status_code=201)


def _fields(exc: ValidationError, prefix: str) -> str:
    """Each problem pydantic found, named by its field."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in exc.errors()
    )


def _uploads(state: State) -> Path:
    where = state.settings.state_dir / "uploads"
    where.mkdir(parents=True, exist_ok=True)
    return where


async def _receive(request: Request, limit: int, dest: Path) -> RunOptions:
    """The form's options, with its `bundle` copied to `dest`; 413 past `limit` bytes."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise HTTPException(
                413,
                f"the upload is larger than this server accepts ({limit} bytes; "
                "CONVEYOR_MAX_UPLOAD raises it)",
            )
        return message

    limited = Request(request.scope, receive=counted)
    async with limited.form(max_files=1, max_fields=4) as form:
        upload = form.get("bundle")
        if not isinstance(upload, StarletteUpload):
            raise UsageError("bundle: missing; send the checkout as a .tar.gz file field `bundle`")
        with dest.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        raw = form.get("options") or "{}"
    if not isinstance(raw, str):
        raise UsageError("options: must be a JSON text field, not a file")
    try:
        return RunOptions.model_validate_json(raw)
    except ValidationError as exc:
        raise UsageError(_fields(exc, "options.")) from None


@router.post(
    "/{run_id}/cancel",
    name="cancel_run",
    status_code=202,
    summary="Cancel a running remote Run; running jobs stop at their next heartbeat.",
)
def cancel_run(run_id: int, caller: Caller, state: State) -> dict[str, object]:
    _visible_run(caller, state, run_id)
    state.remote_runs.cancel(RunId(run_id), actor=caller.name)
    return run_json(state.history.get_run(run_id))


@router.post(
    "/{run_id}/retry",
    name="retry_run",
    status_code=201,
    summary="A new Run of a finished remote Run: jobs that succeeded carried over, the rest run.",
)
def retry_run(run_id: int, caller: Caller, state: State) -> dict[str, object]:
    _visible_run(caller, state, run_id)
    new_id = state.remote_runs.retry(RunId(run_id), actor=caller.name)
    return run_json(state.history.get_run(new_id))


@router.get(
    "/{run_id}/jobs/{job}/log/stream",
    name="job_log_stream",
    summary="A job's log as Server-Sent Events: `log` chunks while it runs, then `end`.",
    response_class=StreamingResponse,
)
def job_log_stream(
    run_id: int, job: str, request: Request, caller: Caller, state: State
) -> StreamingResponse:
    find_job(_visible_run(caller, state, run_id), job)
    return StreamingResponse(
        _log_events(request, state, run_id, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


async def _log_events(
    request: Request, state: State, run_id: int, job: str
) -> AsyncIterator[bytes]:
    """Poll the stored log (no replica-local state) and send what is new, then `end`."""
    sent = 0
    while not await request.is_disconnected():
        record = find_job(await run_in_threadpool(state.history.get_run, run_id), job)
        finished = record.status in TERMINAL_JOB_STATES
        try:
            text, _ = await run_in_threadpool(state.history.job_log, run_id, job)
        except NotFound:
            text = ""
        if len(text) > sent:
            yield _sse("log", text[sent:])
            sent = len(text)
        if finished:
            yield _sse("end", json.dumps({"status": record.status, "reason": record.reason}))
            return
        await asyncio.sleep(_POLL_S)


def _sse(event: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n".encode()

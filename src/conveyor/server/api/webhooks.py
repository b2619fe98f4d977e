"""`POST /api/v1/webhooks/{github,gitlab}`: pushes and pull requests that start Runs.

These two routes take no bearer token: GitHub signs the body with the
project's webhook secret and GitLab sends it as a token, and the Webhook
service checks either in constant time. The raw body is read here, at most
the server's upload limit, because the signature covers its exact bytes.

Answers: 202 `{"run": id}` when a Run started; 200 with the reason when the
delivery starts nothing (a tag, a ping) or was accepted before; 401 when
the signature or token does not match (or the project has no secret); 404
when no project has the repository; 400 for a malformed payload. When the
Run of the commit cannot start, the error's own answer: 400 for a commit the
repository lacks, 422 for a bad `conveyor.yaml` at it, 503 for a repository
the server cannot reach; the delivery is then recorded as failed, so the
same delivery is accepted when it is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from conveyor.engine.webhooks import Duplicate, Outcome, Refused, Started
from conveyor.server.auth import State
from conveyor.server.errors import problem
from conveyor.triggers.model import Ignored

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Handler = Callable[[Mapping[str, str], bytes], Outcome]
_DELIVERY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                413,
                f"the body is larger than this server accepts ({limit} bytes; "
                "CONVEYOR_MAX_UPLOAD raises it)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(outcome: Outcome, instance: str) -> JSONResponse:
    if isinstance(outcome, Started):
        run = int(outcome.run_id) if outcome.run_id.isdigit() else outcome.run_id
        return JSONResponse({"run": run}, status_code=202)
    if isinstance(outcome, Ignored):
        return JSONResponse({"outcome": "ignored", "reason": outcome.reason})
    if isinstance(outcome, Duplicate):
        reason = f"delivery {outcome.delivery} was accepted before; it starts nothing again"
        return JSONResponse({"outcome": "duplicate", "reason": reason})
    return _refusal(outcome, instance)


def _refusal(refused: Refused, instance: str) -> JSONResponse:
    if refused.code == "unknown_project":
        detail = f"{refused.reason}; create one with `conveyor project create`"
        return problem(404, "unknown-project", "Unknown project", detail, instance=instance)
    return problem(
        401,
        "webhook-refused",
        "Delivery not trusted",
        f"{refused.reason}; the webhook's secret must be the project's webhook secret",
        instance=instance,
        extra={"code": refused.code},
    )


async def _deliver(request: Request, state: State, handler: Handler) -> JSONResponse:
    state.require_secret_key("check webhook signatures (they use the projects' webhook secrets)")
    body = await _body(request, state.settings.max_upload_bytes)
    headers = dict(request.headers.items())
    outcome = await run_in_threadpool(handler, headers, body)
    return _answer(outcome, request.url.path)


@router.post(
    "/github",
    name="github_webhook",
    summary="Receive a GitHub delivery (push, pull_request, ping); signed, no bearer token.",
    openapi_extra=_DELIVERY,
)
async def github_webhook(request: Request, state: State) -> JSONResponse:
    return await _deliver(request, state, state.webhooks.github)


@router.post(
    "/gitlab",
    name="gitlab_webhook",
    summary="Receive a GitLab delivery (Push Hook); X-Gitlab-Token, no bearer token.",
    openapi_extra=_DELIVERY,
)
async def gitlab_webhook(request: Request, state: State) -> JSONResponse:
    return await _deliver(request, state, state.webhooks.gitlab)

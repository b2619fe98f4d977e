"""`HEAD` and `PUT /api/v1/artifacts/{digest}`: upload by digest, skipped when already stored.

An uploader asks with HEAD first (200: the server has it, skip the upload;
404: send it). PUT streams the body to a temporary file while hashing it and
stores it only when its digest is the one in the path (422 otherwise), so no
request can place a blob under a name that is not its content's. A body past
the server's upload limit is refused with 413 and nothing is stored.
"""

from __future__ import annotations

import hashlib
import os

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from conveyor.artifacts.cas import new_temp_file
from conveyor.core.digest import is_digest
from conveyor.core.errors import NotFound, UsageError
from conveyor.server.auth import Caller, State

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


def _checked(digest: str) -> str:
    if not is_digest(digest):
        raise UsageError(f"'{digest[:80]}' is not an artifact digest; write sha256:<64 hex digits>")
    return digest


@router.head(
    "/{digest}",
    name="has_artifact",
    summary="200 when the server has this artifact (skip the upload), 404 when it does not.",
)
def has_artifact(digest: str, caller: Caller, state: State) -> Response:
    if not state.cas.has(_checked(digest)):
        raise NotFound(f"no artifact {digest} on this server; upload it with PUT")
    return Response(headers={"Content-Length": str(state.cas.size(digest))})


@router.put(
    "/{digest}",
    name="upload_artifact",
    summary="Upload an artifact; its content must hash to the digest in the path.",
    status_code=201,
)
async def upload_artifact(digest: str, request: Request, caller: Caller, state: State) -> Response:
    _checked(digest)
    if state.cas.has(digest):
        return Response(status_code=200)
    limit = state.settings.max_upload_bytes
    tmp, fd = new_temp_file(state.cas.root / "tmp", "upload")
    try:
        hasher = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(
                        413,
                        f"the body is larger than this server accepts ({limit} bytes); "
                        "raise CONVEYOR_MAX_UPLOAD where the server runs",
                    )
                hasher.update(chunk)
                await run_in_threadpool(out.write, chunk)
        found = "sha256:" + hasher.hexdigest()
        if found != digest:
            raise HTTPException(
                422,
                f"the body hashes to {found}, not {digest}; upload the file the digest names",
            )
        await run_in_threadpool(state.cas.put_file, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return Response(status_code=201)

"""`GET /api/v1/artifacts/{digest}`: an artifact's content, found by its digest alone.

The digest is the only thing that names a file, so no request can reach a path
outside the content store. A token limited to a project reads only the outputs
and logs of that project's Runs; any other digest is answered as absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from conveyor.core.digest import is_digest
from conveyor.core.errors import NotFound, UsageError
from conveyor.server.auth import Caller, State
from conveyor.store.scoping import artifact_in_project

router = APIRouter(prefix="/artifacts", tags=["artifacts"])
_CHUNK = 1 << 20


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


@router.get(
    "/{digest}",
    name="get_artifact",
    summary="Download an artifact by digest (sha256:<64 hex digits>).",
    response_class=StreamingResponse,
)
def get_artifact(digest: str, caller: Caller, state: State) -> StreamingResponse:
    if not is_digest(digest):
        raise UsageError(f"'{digest[:80]}' is not an artifact digest; write sha256:<64 hex digits>")
    absent = NotFound(f"no artifact {digest} on this server (never stored, or pruned)")
    if caller.project is not None and not artifact_in_project(state.db, digest, caller.project):
        raise absent
    if not state.cas.has(digest):
        raise absent
    size = state.cas.size(digest)
    return StreamingResponse(
        _chunks(state.cas.open(digest)),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "ETag": f'"{digest}"'},
    )

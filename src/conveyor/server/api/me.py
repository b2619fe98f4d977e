"""`GET /api/v1/whoami`: the caller as the server sees it."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from conveyor.access.roles import PERMISSIONS
from conveyor.server.auth import Caller

router = APIRouter(tags=["access"])


class Me(BaseModel):
    name: str
    kind: str
    role: str
    project: str | None
    actions: list[str]


@router.get("/whoami", name="whoami", summary="Who the bearer token belongs to.")
def whoami(caller: Caller) -> Me:
    return Me(
        name=caller.name,
        kind=caller.kind,
        role=caller.role,
        project=caller.project,
        actions=sorted(PERMISSIONS.get(caller.role, ())),
    )

"""Where every route is wired: probes in the open, API v1 behind `authorize`.

`authorize` runs on the webhook receivers too: their action is one that
anonymous callers may take, so the table still says who may call them.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from conveyor.server import health
from conveyor.server.api import (
    agents,
    artifacts,
    cache,
    delivery,
    events,
    me,
    projects,
    promotions,
    runs,
    secrets,
    tokens,
    uploads,
    webhooks,
)
from conveyor.server.auth import authorize


def api_v1() -> APIRouter:
    """Every v1 route, each checked by `authorize` before its handler runs."""
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
    for module in (me, tokens, runs, artifacts, events, projects, secrets, webhooks):
        api.include_router(module.router)
    for module in (agents, uploads, cache, delivery, promotions):
        api.include_router(module.router)
    return api


def probes() -> APIRouter:
    return health.router

"""Probes and metrics: `/healthz` (the process answers), `/readyz` (its database does)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from conveyor.core.errors import StoreError
from conveyor.server.auth import server_state
from conveyor.server.errors import problem
from conveyor.server.state import require_migrated

router = APIRouter(tags=["health"])


@router.get("/healthz", name="healthz", summary="Liveness: the process answers.")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", name="readyz", summary="Readiness: the database answers, migrated.")
def readyz(request: Request) -> Response:
    try:
        require_migrated(server_state(request).db)
    except StoreError as exc:
        return problem(503, "not-ready", "Not ready", str(exc), instance=request.url.path)
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", name="metrics", summary="Prometheus metrics in text format.")
def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = server_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

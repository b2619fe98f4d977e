"""Releases, environments and Deployments of the server's workspace: make, list, read.

The server delivers the workspace it runs in (`conveyor.yaml` beside its
state directory). A release is made from a successful Run recorded there,
with the token's owner recorded as who made it. Values travel as
`control/delivery_wire.py` writes them, so the CLI reads back exactly the
records it prints on its own workspace. A release's evidence bundle is built
here, with the token's owner as who exported it, and sent as the zip itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from conveyor.control.delivery_wire import (
    EVIDENCE_HEADER,
    deployment_to_json,
    environment_to_json,
    export_summary_to_json,
    notes_to_json,
    outcome_to_json,
    release_to_json,
)
from conveyor.engine.change_records import ChangeRecords
from conveyor.engine.evidence import EvidenceService
from conveyor.server.auth import Caller, State, require_project
from conveyor.server.delivery import ServerDelivery
from conveyor.server.logs import LOGGER

router = APIRouter(tags=["delivery"])
log = logging.getLogger(LOGGER)


def project_delivery(caller: Caller, state: State) -> ServerDelivery:
    """The workspace's delivery services, once the caller may act on its project."""
    require_project(caller, state.delivery.project)
    return state.delivery


# Every route about the workspace's delivery takes this: the project is checked in one place.
ProjectDelivery = Annotated[ServerDelivery, Depends(project_delivery)]

Doc = dict[str, object]


class ReleaseRequest(BaseModel):
    """A release to make: the run whose artifacts it holds, and its version (else derived)."""

    model_config = ConfigDict(extra="forbid")

    run: str = Field(
        min_length=1,
        max_length=40,
        examples=["42", "latest"],
        description="A run id, or `latest`: the run must have succeeded.",
    )
    version: str | None = Field(
        default=None,
        max_length=100,
        examples=["1.4.0"],
        description="A semantic version; derived from the Conventional Commits when absent.",
    )


@router.post("/releases", name="create_release", summary="Release a successful run's artifacts.")
def create_release(
    body: ReleaseRequest, caller: Caller, delivery: ProjectDelivery, response: Response
) -> Doc:
    releases = delivery.releases_by(caller)
    outcome = releases.create(delivery.pipeline(), body.run, version=body.version)
    response.status_code = 201 if outcome.created else 200
    return outcome_to_json(outcome)


@router.get("/releases", name="list_releases", summary="List releases, newest first.")
def list_releases(
    *,
    delivery: ProjectDelivery,
    service: Annotated[str | None, Query(max_length=200)] = None,
) -> Doc:
    found = delivery.releases.list_releases(service=service)
    return {"releases": [release_to_json(r) for r in found]}


@router.get(
    "/releases/{service}/{version}", name="get_release", summary="One release ('latest' too)."
)
def get_release(service: str, version: str, delivery: ProjectDelivery) -> Doc:
    return release_to_json(delivery.releases.get_release(version, service=service))


@router.get(
    "/releases/{service}/{version}/notes",
    name="release_notes",
    summary="A release's notes from its Conventional Commits, as JSON and Markdown.",
)
def release_notes(service: str, version: str, delivery: ProjectDelivery) -> Doc:
    return notes_to_json(delivery.releases.notes(version, service=service))


@router.get(
    "/releases/{service}/{version}/changelog",
    name="release_changelog",
    summary="The notes of every release of the service up to this one, highest first.",
)
def release_changelog(service: str, version: str, delivery: ProjectDelivery) -> Doc:
    found = delivery.releases.changelog(version, service=service)
    return {"service": service, "releases": [notes_to_json(n) for n in found]}


@router.post(
    "/releases/{service}/{version}/evidence",
    name="export_evidence",
    summary="Export a release's evidence bundle (a zip), recorded as exported by the caller.",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export_evidence(
    service: str, version: str, caller: Caller, delivery: ProjectDelivery
) -> FileResponse:
    # Built in a directory of its own, sent from there, and removed once sent (or not).
    where = Path(tempfile.mkdtemp(prefix="conveyor-evidence-"))
    try:
        done = _evidence(delivery).export(
            service, version, where / "evidence.zip", actor=caller.name
        )
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise
    name = f"{done.release.service}-{done.release.version}-evidence.zip"
    return FileResponse(
        done.path,
        media_type="application/zip",
        filename=name,
        headers={EVIDENCE_HEADER: json.dumps(export_summary_to_json(done))},
        background=BackgroundTask(shutil.rmtree, where, ignore_errors=True),
    )


def change_records_of(delivery: ServerDelivery) -> ChangeRecords:
    """The change records of the server's promotions, read as the promotion service files them."""
    return ChangeRecords(
        db=delivery.db,
        releases=delivery.releases,
        clock=delivery.clock,
        environ=delivery.environ,
        warn=log.warning,
    )


def _evidence(delivery: ServerDelivery) -> EvidenceService:
    return EvidenceService(
        delivery.workspace,
        db=delivery.db,
        releases=delivery.releases,
        change_records=change_records_of(delivery),
        clock=delivery.clock,
        environ=delivery.environ,
    )


@router.get(
    "/status",
    name="environment_status",
    summary="Each environment: the release deployed, its Deployment, the live instances.",
)
def environment_status(delivery: ProjectDelivery) -> Doc:
    pipeline = delivery.pipeline()
    views = delivery.deployments.environments(pipeline)
    service = pipeline.delivery.service if pipeline.delivery is not None else ""
    return {"service": service, "environments": [environment_to_json(v) for v in views]}


@router.get("/deployments", name="list_deployments", summary="List Deployments, newest first.")
def list_deployments(
    *,
    delivery: ProjectDelivery,
    service: Annotated[str | None, Query(max_length=200)] = None,
    environment: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Doc:
    found = delivery.deployments.list_deployments(
        service=service, environment=environment, limit=limit
    )
    return {"deployments": [deployment_to_json(d) for d in found]}

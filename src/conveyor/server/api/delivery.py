"""Releases, environments and Deployments of the server's workspace: make, list, read.

The server delivers the workspace it runs in (`conveyor.yaml` beside its
state directory). A release is made from a successful Run recorded there,
with the token's owner recorded as who made it. Values travel as
`control/delivery_wire.py` writes them, so the CLI reads back exactly the
records it prints on its own workspace.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from conveyor.control.delivery_wire import (
    deployment_to_json,
    environment_to_json,
    outcome_to_json,
    release_to_json,
)
from conveyor.release.notes import to_json as notes_json
from conveyor.release.notes import to_markdown as notes_markdown
from conveyor.server.auth import Caller, State, require_project

router = APIRouter(tags=["delivery"])

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
def create_release(body: ReleaseRequest, caller: Caller, state: State, response: Response) -> Doc:
    delivery = state.delivery
    require_project(caller, delivery.project)
    releases = delivery.releases_by(caller)
    outcome = releases.create(delivery.pipeline(), body.run, version=body.version)
    response.status_code = 201 if outcome.created else 200
    return outcome_to_json(outcome)


@router.get("/releases", name="list_releases", summary="List releases, newest first.")
def list_releases(
    *,
    caller: Caller,
    state: State,
    service: Annotated[str | None, Query(max_length=200)] = None,
) -> Doc:
    require_project(caller, state.delivery.project)
    found = state.delivery.releases.list_releases(service=service)
    return {"releases": [release_to_json(r) for r in found]}


@router.get(
    "/releases/{service}/{version}", name="get_release", summary="One release ('latest' too)."
)
def get_release(service: str, version: str, caller: Caller, state: State) -> Doc:
    require_project(caller, state.delivery.project)
    return release_to_json(state.delivery.releases.get_release(version, service=service))


@router.get(
    "/releases/{service}/{version}/notes",
    name="release_notes",
    summary="A release's notes from its Conventional Commits, as JSON and Markdown.",
)
def release_notes(service: str, version: str, caller: Caller, state: State) -> Doc:
    require_project(caller, state.delivery.project)
    notes = state.delivery.releases.notes(version, service=service)
    return {**notes_json(notes), "markdown": notes_markdown(notes)}


@router.get(
    "/status",
    name="environment_status",
    summary="Each environment: the release deployed, its Deployment, the live instances.",
)
def environment_status(caller: Caller, state: State) -> Doc:
    delivery = state.delivery
    require_project(caller, delivery.project)
    pipeline = delivery.pipeline()
    views = delivery.deployments.environments(pipeline)
    service = pipeline.delivery.service if pipeline.delivery is not None else ""
    return {"service": service, "environments": [environment_to_json(v) for v in views]}


@router.get("/deployments", name="list_deployments", summary="List Deployments, newest first.")
def list_deployments(
    *,
    caller: Caller,
    state: State,
    service: Annotated[str | None, Query(max_length=200)] = None,
    environment: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Doc:
    require_project(caller, state.delivery.project)
    found = state.delivery.deployments.list_deployments(
        service=service, environment=environment, limit=limit
    )
    return {"deployments": [deployment_to_json(d) for d in found]}

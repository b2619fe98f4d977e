"""`/api/v1/projects`: the repositories the server builds; create, list, show and delete.

A project's webhook secret is accepted on create and never shown again: the
answer only says whether one is set.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.core.clock import iso
from conveyor.core.errors import NotFound, UsageError
from conveyor.engine.projects import DEFAULT_BRANCH, DEFAULT_SPEC_PATH
from conveyor.server.auth import Caller, State, require_project
from conveyor.triggers.project import Project as ProjectRecord
from conveyor.triggers.project import canonical_repository, check_project_name

router = APIRouter(prefix="/projects", tags=["projects"])


class ProjectRequest(BaseModel):
    """A project to create: its name, repository, where its conveyor.yaml is, its webhook secret."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["payments"])
    repository: str = Field(
        min_length=1, max_length=2000, examples=["https://github.com/octo-org/payments"]
    )
    spec_path: str = Field(default=DEFAULT_SPEC_PATH, max_length=255)
    default_branch: str = Field(default=DEFAULT_BRANCH, min_length=1, max_length=255)
    webhook_secret: str | None = Field(
        default=None,
        max_length=1024,
        description="Shared with GitHub (signature) or GitLab (token); never shown again.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return check_project_name(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        try:
            canonical_repository(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return value


class Project(BaseModel):
    name: str
    repository: str
    spec_path: str
    default_branch: str
    webhook_secret: Literal["set"] | None = Field(
        description="`set` when the project has a webhook secret; its value is never shown."
    )
    created_by: str
    created_at: str | None

    @classmethod
    def of(cls, record: ProjectRecord) -> Project:
        return cls(
            name=record.name,
            repository=record.repository,
            spec_path=record.spec_path,
            default_branch=record.default_branch,
            webhook_secret="set" if record.has_webhook_secret else None,
            created_by=record.created_by,
            created_at=iso(record.created_at),
        )


class ProjectList(BaseModel):
    projects: list[Project]


@router.post("", name="create_project", status_code=201, summary="Create a project.")
def create_project(body: ProjectRequest, caller: Caller, state: State) -> Project:
    require_project(caller, body.name)
    if body.webhook_secret is not None:
        state.require_secret_key("store webhook secrets")
    created = state.projects.create(
        body.name,
        body.repository,
        actor=caller.name,
        spec_path=body.spec_path,
        default_branch=body.default_branch,
        webhook_secret=body.webhook_secret,
    )
    return Project.of(created)


@router.get("", name="list_projects", summary="List projects, by name.")
def list_projects(caller: Caller, state: State) -> ProjectList:
    found = state.projects.list_projects()
    mine = [p for p in found if caller.project is None or p.name == caller.project]
    return ProjectList(projects=[Project.of(p) for p in mine])


@router.get("/{name}", name="get_project", summary="One project.")
def get_project(name: str, caller: Caller, state: State) -> Project:
    if caller.project is not None and name != caller.project:
        # A project the token is not limited to is not shown to exist.
        raise NotFound(f"there is no project {name}")
    return Project.of(state.projects.get(name))


@router.delete("/{name}", name="delete_project", summary="Delete a project (its history stays).")
def delete_project(name: str, caller: Caller, state: State) -> dict[str, str]:
    require_project(caller, name)
    state.projects.delete(name, actor=caller.name)
    return {"deleted": name}

"""`/api/v1/secrets`: set, list and delete stored secrets; a value goes in and never comes out.

A server started without CONVEYOR_SECRET_KEY cannot seal a value and answers
409 naming the variable (`ServerState.require_secret_key` says why 409).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from conveyor.core.clock import iso
from conveyor.engine.secrets import SecretInfo
from conveyor.server.auth import Caller, State, require_project
from conveyor.store.secrets import GLOBAL

router = APIRouter(prefix="/secrets", tags=["secrets"])

ProjectQuery = Annotated[
    str | None,
    Query(description="The project the secret is for (default: every project)."),
]


class SecretValue(BaseModel):
    """The value to store; it is encrypted before it is written and never shown again."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="At most 64 KiB; never shown again.")


class Secret(BaseModel):
    name: str
    project: str | None
    key_id: str
    created_at: str | None
    updated_at: str | None
    updated_by: str

    @classmethod
    def of(cls, info: SecretInfo) -> Secret:
        return cls(
            name=info.name,
            project=info.project or None,
            key_id=info.key_id,
            created_at=iso(info.created_at),
            updated_at=iso(info.updated_at),
            updated_by=info.updated_by,
        )


class SecretList(BaseModel):
    secrets: list[Secret]


@router.put("/{name}", name="set_secret", summary="Store a secret's value, encrypted.")
def set_secret(
    name: str, body: SecretValue, caller: Caller, state: State, project: ProjectQuery = None
) -> Secret:
    require_project(caller, project)
    state.require_secret_key("store secrets")
    info = state.secrets.set(name, body.value, actor=caller.name, project=project or GLOBAL)
    return Secret.of(info)


@router.get("", name="list_secrets", summary="List stored secrets (never their values).")
def list_secrets(caller: Caller, state: State, project: ProjectQuery = None) -> SecretList:
    found = state.secrets.list_secrets(project=caller.project or project)
    return SecretList(secrets=[Secret.of(info) for info in found])


@router.delete("/{name}", name="delete_secret", summary="Delete a stored secret.")
def delete_secret(
    name: str, caller: Caller, state: State, project: ProjectQuery = None
) -> dict[str, str | None]:
    require_project(caller, project)
    state.secrets.delete(name, actor=caller.name, project=project or GLOBAL)
    return {"deleted": name, "project": project}

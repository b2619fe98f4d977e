"""`/api/v1/tokens`: create (the token is in this answer only), list and revoke."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.access.tokens import TokenRecord, parse_expiry
from conveyor.core.clock import iso
from conveyor.server.auth import Caller, State, require_project

router = APIRouter(prefix="/tokens", tags=["access"])

Role = Literal["viewer", "developer", "approver", "release-manager", "admin", "runner"]


class TokenRequest(BaseModel):
    """A token to create: its role, who holds it, which project it is limited to, its life."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str | None = Field(default=None, min_length=1, max_length=255)
    project: str | None = Field(default=None, min_length=1, max_length=200)
    expires: str | None = Field(default=None, examples=["30d", "12h", "never"])

    @field_validator("expires")
    @classmethod
    def _lifetime(cls, value: str | None) -> str | None:
        parse_expiry(value, now=0.0)
        return value


class Token(BaseModel):
    id: int
    name: str
    kind: str
    role: str
    project: str | None
    prefix: str
    created_by: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def of(cls, record: TokenRecord) -> Token:
        return cls(
            id=record.id,
            name=record.name,
            kind=record.kind,
            role=record.role,
            project=record.project,
            prefix=record.prefix,
            created_by=record.created_by,
            created_at=iso(record.created_at),
            expires_at=iso(record.expires_at),
            revoked_at=iso(record.revoked_at),
            last_used_at=iso(record.last_used_at),
        )


class IssuedToken(Token):
    token: str = Field(description="The token itself; shown in this answer and never again.")


class TokenList(BaseModel):
    tokens: list[Token]


@router.post("", name="create_token", status_code=201, summary="Create an API token.")
def create_token(body: TokenRequest, caller: Caller, state: State) -> IssuedToken:
    require_project(caller, body.project)
    issued = state.tokens.create(
        role=body.role,
        actor=caller.name,
        name=body.name,
        project=body.project,
        expires=body.expires,
    )
    return IssuedToken(token=issued.token, **Token.of(issued.record).model_dump())


@router.get("", name="list_tokens", summary="List API tokens (never their text).")
def list_tokens(caller: Caller, state: State, include_revoked: bool = False) -> TokenList:
    found = state.tokens.list_tokens(include_revoked=include_revoked)
    mine = [t for t in found if caller.project is None or t.project == caller.project]
    return TokenList(tokens=[Token.of(t) for t in mine])


@router.delete("/{token_id}", name="revoke_token", summary="Revoke an API token for good.")
def revoke_token(token_id: int, caller: Caller, state: State) -> Token:
    if caller.project is not None:
        require_project(caller, state.tokens.get(token_id).project)
    return Token.of(state.tokens.revoke(token_id, actor=caller.name))

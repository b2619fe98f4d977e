"""Issuing, checking and revoking API tokens; creating and revoking are Events."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from conveyor.access.errors import Unauthenticated
from conveyor.access.roles import Principal, check_role
from conveyor.access.tokens import (
    TOKEN_BYTES,
    IssuedToken,
    TokenRecord,
    format_token,
    hash_token,
    looks_like_token,
    parse_expiry,
    shown_prefix,
)
from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock, SystemClock
from conveyor.core.errors import NotFound, UsageError
from conveyor.store import events
from conveyor.store import tokens as token_store
from conveyor.store.db import Database

# Every refusal says the same to the caller, so nobody learns which tokens exist.
INVALID = "the bearer token is unknown, revoked or expired; ask an admin for a new one"
# Recording a use at most this often keeps authentication from writing on every request.
TOUCH_EVERY_S = 60.0


class TokenService:
    """API tokens: shown once when created, stored as SHA-256, checked on every request."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock | None = None,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self._random = random

    def create(
        self,
        *,
        role: str,
        actor: str,
        name: str | None = None,
        project: str | None = None,
        expires: str | None = None,
    ) -> IssuedToken:
        """A new token for `role`; its text is in the answer and nowhere else."""
        now = self.clock.now()
        try:
            check_role(role)
            expires_at = parse_expiry(expires, now=now)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        token = format_token(self._random(TOKEN_BYTES))
        new = token_store.NewToken(
            name=name or f"{role} token by {actor}",
            role=role,
            project=project or None,
            token_hash=hash_token(token),
            prefix=shown_prefix(token),
            created_by=actor,
            created_at=now,
            expires_at=expires_at,
        )
        with self.db.write() as tx:
            record = token_store.insert(tx, new)
            events.append(tx, [_event("token.created", record, actor, now)])
        return IssuedToken(token, record)

    def authenticate(self, token: str) -> Principal:
        """The Principal holding `token`; Unauthenticated (same words for every cause) if none."""
        if not looks_like_token(token):
            raise Unauthenticated(INVALID, reason="malformed")
        record = token_store.by_hash(self.db, hash_token(token))
        if record is None:
            raise Unauthenticated(INVALID, reason="unknown")
        now = self.clock.now()
        refusal = record.refusal(now)
        if refusal is not None:
            raise Unauthenticated(INVALID, reason=refusal)
        token_store.touch(self.db, record.id, now=now, older_than=now - TOUCH_EVERY_S)
        return Principal(record.name, record.kind, record.role, record.project, record.id)

    def revoke(self, token_id: int, *, actor: str) -> TokenRecord:
        """Revoke a token for good; revoking twice changes nothing and records nothing."""
        now = self.clock.now()
        with self.db.write() as tx:
            record, changed = token_store.revoke(tx, token_id, now=now)
            if record is None:
                raise NotFound(f"no token {token_id}; `conveyor token list` shows the ids")
            if changed:
                events.append(tx, [_event("token.revoked", record, actor, now)])
        return record

    def get(self, token_id: int) -> TokenRecord:
        record = token_store.get(self.db, token_id)
        if record is None:
            raise NotFound(f"no token {token_id}; `conveyor token list` shows the ids")
        return record

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        return token_store.list_tokens(self.db, include_revoked=include_revoked)


def _event(kind: str, record: TokenRecord, actor: str, now: float) -> NewEvent:
    """The Event for a token change: who and what, never the token or its hash."""
    data: dict[str, object] = {
        "name": record.name,
        "kind": record.kind,
        "role": record.role,
        "project": record.project,
        "expires_at": record.expires_at,
    }
    return NewEvent(kind, f"token/{record.id}", actor, now, data)

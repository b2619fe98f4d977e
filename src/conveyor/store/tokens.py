"""API tokens in the store: only their SHA-256 and a short prefix, never the token."""

from __future__ import annotations

from conveyor.access.roles import kind_of
from conveyor.access.tokens import TokenRecord
from conveyor.core.values import frozen
from conveyor.store.db import Database, Row, Transaction

_COLUMNS = (
    "id, name, kind, role, project, prefix, created_by, created_at, "
    "expires_at, revoked_at, last_used_at"
)


@frozen
class NewToken:
    """What is stored for a token being created."""

    name: str
    role: str
    project: str | None
    token_hash: str
    prefix: str
    created_by: str
    created_at: float
    expires_at: float | None


def insert(tx: Transaction, token: NewToken) -> TokenRecord:
    """Store `token` inside the caller's write transaction; its record with the new id."""
    params = {
        "name": token.name,
        "kind": kind_of(token.role),
        "role": token.role,
        "project": token.project,
        "token_hash": token.token_hash,
        "prefix": token.prefix,
        "created_by": token.created_by,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    }
    rows = tx.execute(
        "INSERT INTO api_tokens (name, kind, role, project, token_hash, prefix, created_by, "
        "created_at, expires_at) VALUES (:name, :kind, :role, :project, :token_hash, :prefix, "
        ":created_by, :created_at, :expires_at) RETURNING id",
        params,
    )
    record = _get(tx, int(rows[0][0]))
    assert record is not None, "a token just inserted is readable in its transaction"
    return record


def by_hash(db: Database, token_hash: str) -> TokenRecord | None:
    """The token stored under `token_hash`, revoked or expired ones included."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = :h", {"h": token_hash}
        )
    return _record(rows[0]) if rows else None


def get(db: Database, token_id: int) -> TokenRecord | None:
    with db.read() as tx:
        return _get(tx, token_id)


def _get(tx: Transaction, token_id: int) -> TokenRecord | None:
    rows = tx.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = :id", {"id": token_id})
    return _record(rows[0]) if rows else None


def list_tokens(db: Database, *, include_revoked: bool = False) -> list[TokenRecord]:
    """Tokens oldest first; revoked ones only when asked."""
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM api_tokens{where} ORDER BY id")
    return [_record(row) for row in rows]


def revoke(tx: Transaction, token_id: int, *, now: float) -> tuple[TokenRecord | None, bool]:
    """Mark the token revoked; its record (None when unknown) and whether this call revoked it."""
    changed = tx.execute(
        "UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL "
        "RETURNING id",
        {"now": now, "id": token_id},
    )
    return _get(tx, token_id), bool(changed)


def touch(db: Database, token_id: int, *, now: float, older_than: float) -> None:
    """Record that the token was used, unless it was already recorded after `older_than`.

    Skipping recent uses keeps authentication from writing on every request.
    """
    with db.write() as tx:
        tx.execute(
            "UPDATE api_tokens SET last_used_at = :now WHERE id = :id "
            "AND (last_used_at IS NULL OR last_used_at < :older)",
            {"now": now, "id": token_id, "older": older_than},
        )


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _record(row: Row) -> TokenRecord:
    token_id, name, kind, role, project, prefix, created_by, created_at = row[:8]
    return TokenRecord(
        id=int(token_id),
        name=str(name),
        kind="runner" if kind == "runner" else "user",
        role=str(role),
        project=None if project is None else str(project),
        prefix=str(prefix),
        created_by=str(created_by),
        created_at=float(created_at),
        expires_at=_opt(row[8]),
        revoked_at=_opt(row[9]),
        last_used_at=_opt(row[10]),
    )

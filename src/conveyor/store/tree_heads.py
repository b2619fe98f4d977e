"""Storing and reading signed tree heads.

Rows are read back as they are, even when altered: a value that no longer
decodes becomes empty bytes, which no root or signature ever equals, so
checking the head reports it instead of this module failing on it.
"""

from __future__ import annotations

import json

from conveyor.audit.tree_head import TreeHead, decode_signature, encode_signature
from conveyor.core.values import frozen
from conveyor.store.db import Database, Row, Transaction

_COLUMNS = "size, root, ts, key_id, signature"
# Serializes signers on PostgreSQL; SQLite's write lock does it there.
_SIGNING_LOCK = 7261102


@frozen
class Checkpoint:
    """The newest signed head, and the perfect-subtree hashes of the log it covers."""

    head: TreeHead
    frontier: tuple[bytes, ...]


def lock_for_signing(tx: Transaction) -> None:
    """Keep other signers out until `tx` ends."""
    if tx.dialect == "postgresql":
        tx.execute(f"SELECT pg_advisory_xact_lock({_SIGNING_LOCK})")


def add(tx: Transaction, head: TreeHead, frontier: tuple[bytes, ...]) -> None:
    """Record a signed head and the frontier it was computed from."""
    tx.execute(
        f"INSERT INTO tree_heads ({_COLUMNS}, frontier) "
        "VALUES (:size, :root, :ts, :key_id, :signature, :frontier)",
        {
            "size": head.size,
            "root": head.root.hex(),
            "ts": head.timestamp,
            "key_id": head.key_id,
            "signature": encode_signature(head.signature),
            "frontier": json.dumps([node.hex() for node in frontier]),
        },
    )


def _unhex(text: object) -> bytes:
    try:
        return bytes.fromhex(str(text))
    except ValueError:
        return b""


def _head(row: Row) -> TreeHead:
    size, root, ts, key_id, signature = row[:5]
    return TreeHead(int(size), _unhex(root), str(ts), str(key_id), decode_signature(str(signature)))


def _frontier(text: object) -> tuple[bytes, ...]:
    try:
        nodes = json.loads(str(text))
        return tuple(bytes.fromhex(str(node)) for node in nodes)
    except (ValueError, TypeError):
        return ()


def newest(tx: Transaction) -> Checkpoint | None:
    """The head covering the most Events, with its frontier; None before the first."""
    rows = tx.execute(f"SELECT {_COLUMNS}, frontier FROM tree_heads ORDER BY size DESC LIMIT 1")
    if not rows:
        return None
    return Checkpoint(_head(rows[0]), _frontier(rows[0][5]))


def newest_head(db: Database) -> TreeHead | None:
    """The head covering the most Events; None before the first."""
    with db.read() as tx:
        found = newest(tx)
    return None if found is None else found.head


def all_heads(db: Database) -> list[TreeHead]:
    """Every stored head, smallest first."""
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM tree_heads ORDER BY size")
    return [_head(row) for row in rows]

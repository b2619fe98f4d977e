"""Stored tree heads on SQLite and PostgreSQL: round trips, ordering, altered rows."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conveyor.audit.merkle import Frontier
from conveyor.audit.tree_head import TreeHead, sign
from conveyor.store import tree_heads
from conveyor.store.db import Database

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _frontier(size: int) -> Frontier:
    frontier = Frontier()
    for n in range(size):
        frontier.append(f"leaf {n}".encode())
    return frontier


def _store(db: Database, size: int) -> tuple[TreeHead, Frontier]:
    frontier = _frontier(size)
    head = sign(KEY, size=size, root=frontier.root(), timestamp=f"2026-01-01T00:00:{size:02d}Z")
    with db.write() as tx:
        tree_heads.lock_for_signing(tx)
        tree_heads.add(tx, head, frontier.hashes)
    return head, frontier


def test_there_is_no_head_before_the_first_is_signed(db: Database) -> None:
    with db.read() as tx:
        assert tree_heads.newest(tx) is None
    assert tree_heads.newest_head(db) is None
    assert tree_heads.all_heads(db) == []


def test_a_stored_head_and_its_frontier_read_back_exactly(db: Database) -> None:
    head, frontier = _store(db, 7)

    with db.read() as tx:
        found = tree_heads.newest(tx)

    assert found == tree_heads.Checkpoint(head, frontier.hashes)
    assert Frontier.resume(7, found.frontier).root() == head.root
    assert tree_heads.newest_head(db) == head


def test_heads_are_listed_smallest_first_and_the_newest_covers_the_most_events(
    db: Database,
) -> None:
    stored = [_store(db, size)[0] for size in (5, 1, 12)]

    assert tree_heads.all_heads(db) == sorted(stored, key=lambda h: h.size)
    assert tree_heads.newest_head(db) == stored[2]


def test_an_altered_row_reads_back_as_values_no_root_or_signature_equals(db: Database) -> None:
    _store(db, 3)
    with db.write() as tx:
        tx.execute(
            "UPDATE tree_heads SET root = 'zz', signature = '***', frontier = '[1, 2' "
            "WHERE size = 3"
        )

    with db.read() as tx:
        found = tree_heads.newest(tx)

    assert found is not None
    assert (found.head.root, found.head.signature, found.frontier) == (b"", b"", ())

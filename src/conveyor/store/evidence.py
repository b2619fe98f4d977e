"""Reads for change records and evidence bundles: a Release's promotions, its Events, the chain.

Read-only; each call is one transaction, or one per batch for the streams,
which stop at a given seq so that batches read after new appends still see
the log as signed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from conveyor.audit.chain import StoredEvent
from conveyor.promotion.model import Promotion, PromotionState
from conveyor.store import promotions as promotion_store
from conveyor.store.db import Database, Params, Row

_EVENT_COLUMNS = "seq, ts, kind, subject, actor, data, prev_hash, hash"


def promotions_of_release(
    db: Database, *, project: str, service: str, version: str
) -> list[Promotion]:
    """Every Promotion of one Release, oldest first, with its approvals."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT id FROM promotions WHERE project = :p AND service = :s AND version = :v "
            "ORDER BY id",
            {"p": project, "s": service, "v": version},
        )
        return [promotion_store.get(tx, int(row[0])) for row in rows]


def previous_outcome(
    db: Database, *, project: str, service: str, environment: str, before: int
) -> tuple[PromotionState, str] | None:
    """How the last carried-out Promotion into `environment` before id `before` ended, and its
    version: `deployed` or `failed`; None when there was none."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT state, version FROM promotions WHERE project = :p AND service = :s "
            "AND environment = :e AND id < :before AND state IN ('deployed', 'failed') "
            "ORDER BY id DESC LIMIT 1",
            {"p": project, "s": service, "e": environment, "before": before},
        )
    if not rows:
        return None
    state: PromotionState = "failed" if str(rows[0][0]) == "failed" else "deployed"
    return state, str(rows[0][1])


def has_event(db: Database, *, subject: str, kind: str) -> bool:
    """Whether an Event of `kind` was recorded with exactly `subject`."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT 1 FROM events WHERE subject = :s AND kind = :k LIMIT 1",
            {"s": subject, "k": kind},
        )
    return bool(rows)


def _subjects_clause(prefixes: Sequence[str]) -> tuple[str, dict[str, object]]:
    """SQL matching a subject equal to, or below, any of `prefixes` (no LIKE wildcards)."""
    parts, params = [], {}
    for i, prefix in enumerate(prefixes):
        below = prefix + "/"
        parts.append(f"subject = :s{i} OR substr(subject, 1, :k{i}) = :p{i}")
        params.update({f"s{i}": prefix, f"k{i}": len(below), f"p{i}": below})
    return "(" + " OR ".join(parts) + ")", params


def events_under(
    db: Database, prefixes: Sequence[str], *, until: int, batch: int = 2000
) -> Iterator[StoredEvent]:
    """The Events at or below any of `prefixes` with seq <= `until`, in chain order, in batches."""
    if not prefixes:
        return
    clause, base = _subjects_clause(prefixes)
    after = 0
    while True:
        params: Params = {**base, "after": after, "until": until, "n": batch}
        with db.read() as tx:
            rows = tx.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > :after AND seq <= :until "
                f"AND {clause} ORDER BY seq LIMIT :n",
                params,
            )
        if not rows:
            return
        for row in rows:
            event = _stored(row)
            after = event.seq
            yield event


def chain_hashes_until(
    db: Database, *, until: int, batch: int = 20000
) -> Iterator[tuple[int, str]]:
    """(seq, hash) of every Event with seq <= `until`, in chain order, read in batches."""
    after = 0
    while after < until:
        with db.read() as tx:
            rows = tx.execute(
                "SELECT seq, hash FROM events WHERE seq > :after AND seq <= :until "
                "ORDER BY seq LIMIT :n",
                {"after": after, "until": until, "n": batch},
            )
        if not rows:
            return
        for seq, digest in rows:
            after = int(seq)
            yield after, str(digest)


def _stored(row: Row) -> StoredEvent:
    seq, ts, kind, subject, actor, data, prev_hash, digest = row
    return StoredEvent(
        int(seq),
        str(ts),
        str(kind),
        str(subject),
        str(actor),
        str(data),
        str(prev_hash),
        str(digest),
    )

"""Runners (agents): registered with their labels and concurrency, seen by their calls."""

from __future__ import annotations

import json
from collections.abc import Sequence

from conveyor.core.errors import NotFound
from conveyor.core.values import frozen
from conveyor.store.db import Row, Transaction


@frozen
class AgentRecord:
    """A registered runner."""

    id: int
    name: str
    labels: tuple[str, ...]
    concurrency: int
    token_id: int | None
    registered_at: float
    last_seen_at: float


# --- ------------------------------------------------------------------------

_AGENT = "id, name, labels, concurrency, token_id, registered_at, last_seen_at"


def _agent(row: Row) -> AgentRecord:
    return AgentRecord(
        id=int(row[0]),
        name=str(row[1]),
        labels=tuple(json.loads(str(row[2]))),
        concurrency=int(row[3]),
        token_id=None if row[4] is None else int(row[4]),
        registered_at=float(row[5]),
        last_seen_at=float(row[6]),
    )


def register_agent(
    tx: Transaction,
    *,
    name: str,
    labels: Sequence[str],
    concurrency: int,
    token_id: int | None,
    now: float,
) -> AgentRecord:
    """Add a runner, or update the one registered under `name` (a restarted runner)."""
    rows = tx.execute(
        "INSERT INTO agents (name, labels, concurrency, token_id, registered_at, last_seen_at) "
        "VALUES (:name, :labels, :c, :t, :now, :now) ON CONFLICT (name) DO UPDATE SET "
        "labels = excluded.labels, concurrency = excluded.concurrency, "
        f"token_id = excluded.token_id, last_seen_at = excluded.last_seen_at RETURNING {_AGENT}",
        {
            "name": name,
            "labels": json.dumps(sorted(set(labels))),
            "c": concurrency,
            "t": token_id,
            "now": now,
        },
    )
    return _agent(rows[0])


def touch_agent(tx: Transaction, agent_id: int, now: float) -> tuple[AgentRecord, int]:
    """Note that a runner called; it, and how many JobRuns it holds."""
    rows = tx.execute(
        f"UPDATE agents SET last_seen_at = :now WHERE id = :id RETURNING {_AGENT}, "
        "(SELECT count(*) FROM job_attempts WHERE agent_id = :id AND status = 'running')",
        {"now": now, "id": agent_id},
    )
    if not rows:
        raise NotFound(f"there is no agent {agent_id}; register it first")
    return _agent(rows[0]), int(rows[0][7])


def agents_seen_since(tx: Transaction, since: float) -> list[AgentRecord]:
    """Runners heard from since `since` (the connected ones)."""
    rows = tx.execute(
        f"SELECT {_AGENT} FROM agents WHERE last_seen_at >= :s ORDER BY id", {"s": since}
    )
    return [_agent(row) for row in rows]

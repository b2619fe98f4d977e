"""Waivers: their requests, decisions and revocations.

The `tx` functions are steps the Waiver service composes into one write
transaction with the Events they cause; the `db` functions are whole reads.
A decision and a revocation each change a row only once (`... IS NULL` in the
update), so of two people deciding at once exactly one is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.errors import NotFound
from conveyor.policy.waiver import NewWaiver, Waiver, WaiverDecision, WaiverId
from conveyor.store.db import Database, Row, Transaction, bind_list

_COLUMNS = (
    "id, project, rule, environment, reason, requested_by, requested_at, expires_at, "
    "decided_by, decided_at, decision, comment, revoked_by, revoked_at"
)


def insert(tx: Transaction, new: NewWaiver) -> Waiver:
    """Record a requested Waiver (pending until someone else decides)."""
    rows = tx.execute(
        "INSERT INTO waivers (project, rule, environment, reason, requested_by, requested_at, "
        "expires_at) VALUES (:project, :rule, :environment, :reason, :by, :at, :expires) "
        "RETURNING id",
        {
            "project": new.project,
            "rule": new.rule,
            "environment": new.environment,
            "reason": new.reason,
            "by": new.requested_by,
            "at": new.requested_at,
            "expires": new.expires_at,
        },
    )
    return get(tx, int(rows[0][0]))


def get(tx: Transaction, waiver_id: int, *, for_update: bool = False) -> Waiver:
    """One Waiver; `for_update` locks its row on PostgreSQL."""
    lock = " FOR UPDATE" if for_update and tx.dialect == "postgresql" else ""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM waivers WHERE id = :id{lock}", {"id": waiver_id})
    if not rows:
        raise NotFound(f"there is no waiver {waiver_id}; `conveyor waiver list` lists them")
    return _waiver(rows[0])


def decide(
    tx: Transaction,
    *,
    waiver_id: int,
    by: str,
    decision: WaiverDecision,
    comment: str,
    at: float,
) -> bool:
    """Record the one decision on a Waiver; False when one was recorded already."""
    rows = tx.execute(
        "UPDATE waivers SET decided_by = :by, decided_at = :at, decision = :decision, "
        "comment = :comment WHERE id = :id AND decision IS NULL RETURNING id",
        {"id": waiver_id, "by": by, "at": at, "decision": decision, "comment": comment},
    )
    return bool(rows)


def revoke(tx: Transaction, *, waiver_id: int, by: str, at: float) -> bool:
    """Revoke a Waiver; False when it was revoked already."""
    rows = tx.execute(
        "UPDATE waivers SET revoked_by = :by, revoked_at = :at "
        "WHERE id = :id AND revoked_at IS NULL RETURNING id",
        {"id": waiver_id, "by": by, "at": at},
    )
    return bool(rows)


def get_waiver(db: Database, *, waiver_id: int) -> Waiver:
    """One Waiver, read on its own."""
    with db.read() as tx:
        return get(tx, waiver_id)


def list_waivers(
    db: Database,
    *,
    project: str,
    environment: str | None = None,
    rule: str | None = None,
    limit: int = 100,
) -> list[Waiver]:
    """The project's Waivers, newest first."""
    clause, params = "project = :p", {"p": project, "n": limit}
    if environment is not None:
        clause += " AND environment = :e"
        params["e"] = environment
    if rule is not None:
        clause += " AND rule = :r"
        params["r"] = rule
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM waivers WHERE {clause} ORDER BY id DESC LIMIT :n", params
        )
    return [_waiver(row) for row in rows]


def approved_for(db: Database, *, project: str, environment: str) -> list[Waiver]:
    """The approved, unrevoked Waivers of one environment (expired ones too), oldest first."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM waivers WHERE project = :p AND environment = :e "
            "AND decision = :d AND revoked_at IS NULL ORDER BY id",
            {"p": project, "e": environment, "d": "approved"},
        )
    return [_waiver(row) for row in rows]


def by_ids(db: Database, ids: Sequence[int]) -> list[Waiver]:
    """The Waivers with these ids, in id order (unknown ids are left out)."""
    if not ids:
        return []
    listed, params = bind_list("i", ids)
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM waivers WHERE id IN ({listed}) ORDER BY id", params
        )
    return [_waiver(row) for row in rows]


def _waiver(row: Row) -> Waiver:
    (wid, project, rule, env, reason, by, at, expires, decided_by, decided_at, decision,
     comment, revoked_by, revoked_at) = row  # fmt: skip
    return Waiver(
        id=WaiverId(int(wid)),
        project=str(project),
        rule=str(rule),
        environment=str(env),
        reason=str(reason),
        requested_by=str(by),
        requested_at=float(at),
        expires_at=float(expires),
        decided_by=None if decided_by is None else str(decided_by),
        decided_at=None if decided_at is None else float(decided_at),
        decision=_decision(decision),
        comment=str(comment or ""),
        revoked_by=None if revoked_by is None else str(revoked_by),
        revoked_at=None if revoked_at is None else float(revoked_at),
    )


def _decision(value: object) -> WaiverDecision | None:
    if value == "approved":
        return "approved"
    if value == "rejected":
        return "rejected"
    return None

"""Promotions, their approvals, and what runs in each environment.

The `tx` functions are steps the Promotion service composes into one write
transaction with the Events they cause; the `db` functions are whole reads
(and `record_deployed`, the whole write the deploying step makes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound, StoreError
from conveyor.promotion.codec import basis_from_json, basis_json, report_from_json, report_json
from conveyor.promotion.model import (
    OPEN_STATES,
    PROMOTION_STATES,
    Approval,
    EnvironmentState,
    GateReport,
    NewPromotion,
    Promotion,
    PromotionId,
    PromotionState,
    Verdict,
)
from conveyor.release.model import ReleaseId
from conveyor.store import events as event_log
from conveyor.store.db import Database, Row, Transaction, bind_list

_COLUMNS = (
    "id, project, service, version, release_id, release_digest, environment, requested_by, "
    "requested_at, state, basis, decision, revision, updated_at"
)
_APPROVAL_COLUMNS = "id, promotion_id, release_digest, actor, role, decision, comment, decided_at"
_OPEN = tuple(sorted(OPEN_STATES))
# Serializes promotion writes on PostgreSQL, so two requests into one environment at
# once see each other: the later always supersedes the earlier.
_LOCK_KEY = 7261102


def lock(tx: Transaction) -> None:
    """Take the promotions write lock for the rest of `tx` (SQLite's write lock already is one)."""
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": _LOCK_KEY})


def insert(tx: Transaction, *, new: NewPromotion, report: GateReport) -> PromotionId:
    """Record a new Promotion in the state its first report decided."""
    rows = tx.execute(
        "INSERT INTO promotions (project, service, version, release_id, release_digest, "
        "environment, requested_by, requested_at, state, basis, decision, retry_at, revision, "
        "updated_at) VALUES (:project, :service, :version, :release_id, :digest, :environment, "
        ":by, :at, :state, :basis, :decision, :retry_at, 1, :at) RETURNING id",
        {
            "project": new.project,
            "service": new.service,
            "version": new.version,
            "release_id": new.release_id,
            "digest": new.release_digest,
            "environment": new.environment,
            "by": new.requested_by,
            "at": new.requested_at,
            "state": report.state,
            "basis": json.dumps(basis_json(new.basis), ensure_ascii=False),
            "decision": json.dumps(report_json(report), ensure_ascii=False),
            "retry_at": report.retry_at,
        },
    )
    return PromotionId(int(rows[0][0]))


def open_into(tx: Transaction, *, project: str, service: str, environment: str) -> list[Promotion]:
    """The open (pending or blocked) promotions into one environment, oldest first."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM promotions WHERE project = :p AND service = :s "
        "AND environment = :e AND state IN (:a, :b) ORDER BY id",
        {"p": project, "s": service, "e": environment, "a": _OPEN[0], "b": _OPEN[1]},
    )
    return _with_approvals(tx, rows)


def get(tx: Transaction, promotion_id: int, *, for_update: bool = False) -> Promotion:
    """One Promotion with its approvals; `for_update` locks its row on PostgreSQL."""
    lock_clause = " FOR UPDATE" if for_update and tx.dialect == "postgresql" else ""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM promotions WHERE id = :id{lock_clause}", {"id": promotion_id}
    )
    if not rows:
        raise NotFound(f"there is no promotion {promotion_id}; `conveyor promotions` lists them")
    return _with_approvals(tx, rows)[0]


def set_state(
    tx: Transaction,
    *,
    promotion_id: int,
    state: PromotionState,
    now: float,
    report: GateReport | None = None,
    revision: int | None = None,
) -> bool:
    """Move a Promotion to `state` (with a new report); False when `revision` is not current."""
    sets = "state = :state, updated_at = :now, revision = revision + 1"
    params: dict[str, object] = {"id": promotion_id, "state": state, "now": now}
    if report is not None:
        sets += ", decision = :decision, retry_at = :retry_at"
        params["decision"] = json.dumps(report_json(report), ensure_ascii=False)
        params["retry_at"] = report.retry_at if state in OPEN_STATES else None
    where = "id = :id"
    if revision is not None:
        where += " AND revision = :revision"
        params["revision"] = revision
    rows = tx.execute(f"UPDATE promotions SET {sets} WHERE {where} RETURNING id", params)
    return bool(rows)


def insert_approval(
    tx: Transaction,
    *,
    promotion_id: int,
    release_digest: str,
    actor: str,
    role: str,
    verdict: Verdict,
    comment: str,
    at: float,
) -> Approval | None:
    """Record one person's decision; None when they had already decided on this promotion."""
    rows = tx.execute(
        "INSERT INTO approvals (promotion_id, release_digest, actor, role, decision, comment, "
        "decided_at) VALUES (:p, :digest, :actor, :role, :verdict, :comment, :at) "
        "ON CONFLICT (promotion_id, actor) DO NOTHING RETURNING id",
        {
            "p": promotion_id,
            "digest": release_digest,
            "actor": actor,
            "role": role,
            "verdict": verdict,
            "comment": comment,
            "at": at,
        },
    )
    if not rows:
        return None
    approval_id = int(rows[0][0])
    return Approval(
        approval_id, PromotionId(promotion_id), release_digest, actor, role, verdict, comment, at
    )


def environment_state(
    tx: Transaction, *, project: str, service: str, environment: str
) -> EnvironmentState | None:
    """What runs in one environment of a service, or None when nothing was deployed there."""
    states = _states(tx, project, service, environment)
    return states[0] if states else None


def environment_states(db: Database, *, project: str, service: str) -> list[EnvironmentState]:
    """What runs in each environment of a service, most recently deployed first."""
    with db.read() as tx:
        return _states(tx, project, service, None)


def _states(
    tx: Transaction, project: str, service: str, environment: str | None
) -> list[EnvironmentState]:
    clause, params = "project = :p AND service = :s", {"p": project, "s": service}
    if environment is not None:
        clause += " AND environment = :e"
        params["e"] = environment
    rows = tx.execute(
        "SELECT environment, release_id, version, deployed_at, healthy_since "
        f"FROM environment_states WHERE {clause} ORDER BY deployed_at DESC, id DESC",
        params,
    )
    return [
        EnvironmentState(
            str(env),
            ReleaseId(int(release_id)),
            str(version),
            float(deployed_at),
            None if healthy is None else float(healthy),
        )
        for env, release_id, version, deployed_at, healthy in rows
    ]


def record_deployed(
    db: Database,
    *,
    project: str,
    service: str,
    environment: str,
    release_id: ReleaseId,
    version: str,
    deployed_at: float,
    healthy_since: float | None,
    events: Sequence[NewEvent],
    promotion_id: int | None = None,
) -> EnvironmentState:
    """Record that `version` runs in `environment` (healthy since `healthy_since`, or not yet).

    The step that deploys calls this when a Deployment finishes and again when
    health changes; with `promotion_id` the Promotion it carried out becomes
    `deployed`. One transaction with `events`.
    """
    with db.write() as tx:
        return mark_deployed(
            tx,
            project=project,
            service=service,
            environment=environment,
            release_id=release_id,
            version=version,
            deployed_at=deployed_at,
            healthy_since=healthy_since,
            events=events,
            promotion_id=promotion_id,
        )


def mark_deployed(
    tx: Transaction,
    *,
    project: str,
    service: str,
    environment: str,
    release_id: ReleaseId,
    version: str,
    deployed_at: float,
    healthy_since: float | None,
    events: Sequence[NewEvent],
    promotion_id: int | None = None,
) -> EnvironmentState:
    """`record_deployed` as a step of the caller's write transaction (a Deployment's last save)."""
    tx.execute(
        "INSERT INTO environment_states (project, service, environment, release_id, version, "
        "deployed_at, healthy_since) VALUES (:p, :s, :e, :r, :v, :at, :healthy) "
        "ON CONFLICT (project, service, environment) DO UPDATE SET release_id = :r, "
        "version = :v, deployed_at = :at, healthy_since = :healthy",
        {
            "p": project,
            "s": service,
            "e": environment,
            "r": release_id,
            "v": version,
            "at": deployed_at,
            "healthy": healthy_since,
        },
    )
    if promotion_id is not None and not set_state(
        tx, promotion_id=promotion_id, state="deployed", now=deployed_at
    ):
        raise NotFound(f"there is no promotion {promotion_id}")
    event_log.append(tx, events)
    return EnvironmentState(environment, release_id, version, deployed_at, healthy_since)


# --- reading ---------------------------------------------------------------------------


def get_promotion(db: Database, *, promotion_id: int) -> Promotion:
    """One Promotion with its approvals; NotFound when there is none."""
    with db.read() as tx:
        return get(tx, promotion_id)


def latest_promotion(
    db: Database, *, project: str, service: str, version: str, environment: str
) -> Promotion | None:
    """The newest Promotion of one Release into one environment, or None."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM promotions WHERE project = :p AND service = :s "
            "AND version = :v AND environment = :e ORDER BY id DESC LIMIT 1",
            {"p": project, "s": service, "v": version, "e": environment},
        )
        return _with_approvals(tx, rows)[0] if rows else None


def list_promotions(
    db: Database,
    *,
    project: str,
    service: str | None = None,
    environment: str | None = None,
    states: Sequence[PromotionState] = (),
    limit: int = 50,
) -> list[Promotion]:
    """The project's Promotions, newest first, filtered by service, environment and state."""
    clause, params = "project = :p", {"p": project, "n": limit}
    if service is not None:
        clause += " AND service = :s"
        params["s"] = service
    if environment is not None:
        clause += " AND environment = :e"
        params["e"] = environment
    if states:
        marks, listed = bind_list("st", states)
        clause += f" AND state IN ({marks})"
        params.update(listed)
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM promotions WHERE {clause} ORDER BY id DESC LIMIT :n", params
        )
        return _with_approvals(tx, rows)


def _with_approvals(tx: Transaction, rows: Sequence[Row]) -> list[Promotion]:
    if not rows:
        return []
    marks, params = bind_list("i", (int(row[0]) for row in rows))
    found = tx.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE promotion_id IN ({marks}) ORDER BY id",
        params,
    )
    by_promotion: dict[int, list[Approval]] = {}
    for row in found:
        approval = _approval(row)
        by_promotion.setdefault(int(approval.promotion_id), []).append(approval)
    return [_promotion(row, by_promotion.get(int(row[0]), [])) for row in rows]


def _approval(row: Row) -> Approval:
    verdict = str(row[5])
    if verdict not in ("approve", "reject"):
        raise StoreError(f"approval {row[0]} records an unknown decision '{verdict}'")
    return Approval(
        id=int(row[0]),
        promotion_id=PromotionId(int(row[1])),
        release_digest=str(row[2]),
        by=str(row[3]),
        role=str(row[4]),
        verdict="approve" if verdict == "approve" else "reject",
        comment=str(row[6]),
        at=float(row[7]),
    )


def _promotion(row: Row, approvals: list[Approval]) -> Promotion:
    try:
        basis = basis_from_json(json.loads(str(row[10])))
        report = None if row[11] is None else report_from_json(json.loads(str(row[11])))
    except ValueError as exc:
        raise StoreError(f"promotion {row[0]} cannot be read back: {exc}") from exc
    return Promotion(
        id=PromotionId(int(row[0])),
        project=str(row[1]),
        service=str(row[2]),
        version=str(row[3]),
        release_id=ReleaseId(int(row[4])),
        release_digest=str(row[5]),
        environment=str(row[6]),
        requested_by=str(row[7]),
        requested_at=float(row[8]),
        state=_state(str(row[9]), int(row[0])),
        basis=basis,
        report=report,
        revision=int(row[12]),
        updated_at=float(row[13]),
        approvals=tuple(approvals),
    )


def _state(value: str, promotion_id: int) -> PromotionState:
    for state in PROMOTION_STATES:
        if state == value:
            return state
    raise StoreError(f"promotion {promotion_id} records an unknown state '{value}'")

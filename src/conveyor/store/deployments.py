"""Deployments: queued per environment, claimed with a lease, saved with an optimistic check.

Each environment's Deployments form a queue: those with a `due_at`, oldest
first. `claim` hands out the oldest one of an environment when it is due and
nobody else holds a live lease on it, so one Deployment per environment is
worked on at a time and later ones wait their turn. On PostgreSQL the row is
taken with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on
each other; SQLite's write lock serializes them.

Every write bumps `revision`; `save` writes only over the revision it read,
so a controller whose lease expired and was taken over cannot overwrite the
new owner's status. `save` is a step of the caller's write transaction, with
the Events it records (and whatever else the settled outcome changes).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound, StoreError
from conveyor.core.values import replace
from conveyor.rollout.deployment import Deployment, DeploymentId, NewDeployment
from conveyor.rollout.status import DeploymentStatus, StatusFormatError, from_json, to_json
from conveyor.store import events as event_log
from conveyor.store.db import Database, Row, Transaction, bind_list

_FIELDS = (
    "id",
    "project",
    "service",
    "environment",
    "promotion_id",
    "release_id",
    "version",
    "status",
    "phase",
    "revision",
    "created_at",
    "updated_at",
    "due_at",
    "claimed_by",
    "lease_until",
)
_COLUMNS = ", ".join(_FIELDS)
_D_COLUMNS = ", ".join(f"d.{name}" for name in _FIELDS)
# The Deployments before this one in its environment's queue.
_AHEAD = (
    "SELECT 1 FROM deployments e WHERE e.project = d.project AND e.service = d.service "
    "AND e.environment = d.environment AND e.due_at IS NOT NULL AND e.id < d.id"
)


def create(tx: Transaction, *, new: NewDeployment) -> Deployment | None:
    """Queue a Deployment of `new`'s Promotion, due at once; None when it has one already."""
    rows = tx.execute(
        "INSERT INTO deployments (project, service, environment, promotion_id, release_id, "
        "version, status, phase, revision, created_at, updated_at, due_at) VALUES (:project, "
        ":service, :environment, :promotion, :release, :version, '{}', 'pending', 1, :at, :at, "
        ":at) ON CONFLICT (promotion_id) DO NOTHING RETURNING id",
        {
            "project": new.project,
            "service": new.service,
            "environment": new.environment,
            "promotion": new.promotion_id,
            "release": new.release_id,
            "version": new.version,
            "at": new.created_at,
        },
    )
    if not rows:
        return None
    deployment_id = DeploymentId(int(rows[0][0]))
    status = DeploymentStatus(deployment_id, new.version)
    tx.execute(
        "UPDATE deployments SET status = :status WHERE id = :id",
        {"status": _status_text(status), "id": deployment_id},
    )
    return Deployment(
        project=new.project,
        service=new.service,
        environment=new.environment,
        promotion_id=new.promotion_id,
        release_id=new.release_id,
        version=new.version,
        created_at=new.created_at,
        id=deployment_id,
        status=status,
        revision=1,
        updated_at=new.created_at,
        due_at=new.created_at,
    )


def claim(
    db: Database,
    *,
    project: str,
    owner: str,
    now: float,
    lease_s: float,
    skip: Collection[int] = (),
) -> Deployment | None:
    """Lease the next due Deployment at the head of its environment's queue to `owner`.

    One whose lease `owner` already holds counts as free; ids in `skip` are
    passed over. None when nothing is due.
    """
    clause = (
        "d.project = :p AND d.due_at IS NOT NULL AND d.due_at <= :now AND (d.claimed_by IS NULL "
        f"OR d.claimed_by = :owner OR d.lease_until < :now) AND NOT EXISTS ({_AHEAD})"
    )
    params: dict[str, object] = {"p": project, "now": now, "owner": owner}
    if skip:
        marks, skipped = bind_list("skip", skip)
        clause += f" AND d.id NOT IN ({marks})"
        params.update(skipped)
    with db.write() as tx:
        lock = " FOR UPDATE OF d SKIP LOCKED" if tx.dialect == "postgresql" else ""
        rows = tx.execute(
            f"SELECT {_D_COLUMNS} FROM deployments d WHERE {clause} "
            f"ORDER BY d.due_at, d.id LIMIT 1{lock}",
            params,
        )
        if not rows:
            return None
        found = _deployment(rows[0])
        lease_until = now + lease_s
        tx.execute(
            "UPDATE deployments SET claimed_by = :owner, lease_until = :until, "
            "revision = revision + 1 WHERE id = :id",
            {"owner": owner, "until": lease_until, "id": found.id},
        )
    return replace(found, claimed_by=owner, lease_until=lease_until, revision=found.revision + 1)


def save(
    tx: Transaction,
    *,
    deployment: Deployment,
    status: DeploymentStatus,
    now: float,
    due_at: float | None,
    owner: str | None,
    lease_until: float | None,
    events: Sequence[NewEvent],
) -> Deployment | None:
    """Write `status` (and `events`) over the revision `deployment` was read at.

    `due_at` None settles it, `owner` None releases it. Returns the saved
    Deployment, or None when another writer changed it since (nothing written).
    """
    rows = tx.execute(
        "UPDATE deployments SET status = :status, phase = :phase, revision = revision + 1, "
        "updated_at = :now, due_at = :due, claimed_by = :owner, lease_until = :lease "
        "WHERE id = :id AND revision = :revision RETURNING revision",
        {
            "status": _status_text(status),
            "phase": status.phase,
            "now": now,
            "due": due_at,
            "owner": owner,
            "lease": lease_until if owner is not None else None,
            "id": deployment.id,
            "revision": deployment.revision,
        },
    )
    if not rows:
        return None
    event_log.append(tx, events)
    return replace(
        deployment,
        status=status,
        revision=int(rows[0][0]),
        updated_at=now,
        due_at=due_at,
        claimed_by=owner,
        lease_until=lease_until if owner is not None else None,
    )


def release(db: Database, *, deployment_id: int, owner: str) -> bool:
    """Give up `owner`'s lease on a Deployment; False when `owner` did not hold it."""
    with db.write() as tx:
        rows = tx.execute(
            "UPDATE deployments SET claimed_by = NULL, lease_until = NULL "
            "WHERE id = :id AND claimed_by = :owner RETURNING id",
            {"id": deployment_id, "owner": owner},
        )
    return bool(rows)


# --- reading ---------------------------------------------------------------------------


def get(db: Database, deployment_id: int) -> Deployment:
    """One Deployment; NotFound when there is none."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM deployments WHERE id = :id", {"id": deployment_id}
        )
    if not rows:
        raise NotFound(f"there is no deployment {deployment_id}; `conveyor deployments` lists them")
    return _deployment(rows[0])


def for_promotion(db: Database, promotion_id: int) -> Deployment | None:
    """The Deployment carrying out a Promotion, if it was queued."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM deployments WHERE promotion_id = :p", {"p": promotion_id}
        )
    return _deployment(rows[0]) if rows else None


def list_deployments(
    db: Database,
    *,
    project: str,
    service: str | None = None,
    environment: str | None = None,
    active: bool = False,
    limit: int = 50,
) -> list[Deployment]:
    """The project's Deployments, newest first; with `active`, only those not yet settled."""
    clause, params = "project = :p", {"p": project, "n": limit}
    if service is not None:
        clause += " AND service = :s"
        params["s"] = service
    if environment is not None:
        clause += " AND environment = :e"
        params["e"] = environment
    if active:
        clause += " AND due_at IS NOT NULL"
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM deployments WHERE {clause} ORDER BY id DESC LIMIT :n", params
        )
    return [_deployment(row) for row in rows]


def current(db: Database, *, project: str, service: str, environment: str) -> Deployment | None:
    """The Deployment an environment works on (the head of its queue), else its newest one."""
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM deployments WHERE project = :p AND service = :s "
            "AND environment = :e ORDER BY CASE WHEN due_at IS NULL THEN 1 ELSE 0 END, "
            "CASE WHEN due_at IS NULL THEN -id ELSE id END LIMIT 1",
            {"p": project, "s": service, "e": environment},
        )
    return _deployment(rows[0]) if rows else None


def _status_text(status: DeploymentStatus) -> str:
    return json.dumps(to_json(status), ensure_ascii=False, sort_keys=True)


def _deployment(row: Row) -> Deployment:
    try:
        status = from_json(json.loads(str(row[7])))
    except (ValueError, StatusFormatError) as exc:
        raise StoreError(f"deployment {row[0]} cannot be read back: {exc}") from exc
    return Deployment(
        project=str(row[1]),
        service=str(row[2]),
        environment=str(row[3]),
        promotion_id=int(row[4]),
        release_id=int(row[5]),
        version=str(row[6]),
        created_at=float(row[10]),
        id=DeploymentId(int(row[0])),
        status=status,
        revision=int(row[9]),
        updated_at=float(row[11]),
        due_at=None if row[12] is None else float(row[12]),
        claimed_by=None if row[13] is None else str(row[13]),
        lease_until=None if row[14] is None else float(row[14]),
    )

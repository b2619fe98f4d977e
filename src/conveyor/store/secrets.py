"""Stored secrets: ciphertexts with the id of the key that sealed them; never a plaintext."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.core.values import frozen
from conveyor.store.db import Database, Row, Transaction, bind_list

GLOBAL = ""
_COLUMNS = "id, project, name, ciphertext, key_id, created_at, updated_at, updated_by"


@frozen
class SecretRow:
    """One stored secret; `project` is '' for a secret every project may use."""

    id: int
    project: str
    name: str
    ciphertext: str
    key_id: str
    created_at: float
    updated_at: float
    updated_by: str


def _row(row: Row) -> SecretRow:
    id_, project, name, ciphertext, key_id, created_at, updated_at, updated_by = row
    return SecretRow(
        int(id_),
        str(project),
        str(name),
        str(ciphertext),
        str(key_id),
        float(created_at),
        float(updated_at),
        str(updated_by),
    )


def find(tx: Transaction, *, project: str, name: str) -> SecretRow | None:
    """The secret stored under exactly `project` and `name`."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM secrets WHERE project = :p AND name = :n",
        {"p": project, "n": name},
    )
    return _row(rows[0]) if rows else None


def put(
    tx: Transaction,
    *,
    project: str,
    name: str,
    ciphertext: str,
    key_id: str,
    now: float,
    actor: str,
) -> None:
    """Store a new ciphertext under `project` and `name`, replacing any there."""
    tx.execute(
        "INSERT INTO secrets (project, name, ciphertext, key_id, created_at, updated_at, "
        "updated_by) VALUES (:p, :n, :c, :k, :now, :now, :actor) "
        "ON CONFLICT (project, name) DO UPDATE SET ciphertext = excluded.ciphertext, "
        "key_id = excluded.key_id, updated_at = excluded.updated_at, "
        "updated_by = excluded.updated_by",
        {"p": project, "n": name, "c": ciphertext, "k": key_id, "now": now, "actor": actor},
    )


def reseal(tx: Transaction, *, secret_id: int, ciphertext: str, key_id: str) -> None:
    """Replace a secret's ciphertext by the same value sealed under another key."""
    tx.execute(
        "UPDATE secrets SET ciphertext = :c, key_id = :k WHERE id = :id",
        {"c": ciphertext, "k": key_id, "id": secret_id},
    )


def delete(tx: Transaction, *, project: str, name: str) -> bool:
    """Remove one secret; False when there was none."""
    if find(tx, project=project, name=name) is None:
        return False
    tx.execute("DELETE FROM secrets WHERE project = :p AND name = :n", {"p": project, "n": name})
    return True


def list_secrets(db: Database, *, project: str | None = None) -> list[SecretRow]:
    """Every secret, or those of one project and the global ones, by project and name."""
    where, params = ("", {}) if project is None else ("WHERE project IN (:p, '') ", {"p": project})
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM secrets {where}ORDER BY project, name", params)
    return [_row(row) for row in rows]


def for_run(db: Database, *, project: str, names: Sequence[str]) -> list[SecretRow]:
    """The stored secrets among `names` a Run of `project` may use: its own and the global ones."""
    if not names:
        return []
    marks, params = bind_list("n", names)
    params["p"] = project
    with db.read() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM secrets WHERE name IN ({marks}) AND project IN (:p, '') "
            "ORDER BY name, project",
            params,
        )
    return [_row(row) for row in rows]


def sealed_under_other_keys(tx: Transaction, *, key_id: str) -> list[SecretRow]:
    """Secrets sealed under any key but `key_id`: what rotation must re-encrypt."""
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM secrets WHERE key_id <> :k ORDER BY id", {"k": key_id}
    )
    return [_row(row) for row in rows]

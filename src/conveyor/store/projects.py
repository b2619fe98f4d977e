"""Stored projects: a repository, where its conveyor.yaml is, and its sealed webhook secret."""

from __future__ import annotations

from conveyor.store.db import Database, Row, Transaction
from conveyor.triggers.project import Project

_COLUMNS = (
    "id, name, repository, spec_path, default_branch, webhook_secret IS NOT NULL, "
    "created_by, created_at"
)


def _project(row: Row) -> Project:
    id_, name, repository, spec_path, branch, has_secret, created_by, created_at = row
    return Project(
        int(id_),
        str(name),
        str(repository),
        str(spec_path),
        str(branch),
        bool(has_secret),
        str(created_by),
        float(created_at),
    )


def insert(
    tx: Transaction,
    *,
    name: str,
    repository: str,
    spec_path: str,
    default_branch: str,
    webhook_secret: str | None,
    actor: str,
    now: float,
) -> Project | None:
    """Store a new project; None when one of that name already exists."""
    inserted = tx.execute(
        "INSERT INTO projects (name, repository, spec_path, default_branch, webhook_secret, "
        "created_by, created_at) VALUES (:name, :repo, :spec, :branch, :secret, :actor, :now) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        {
            "name": name,
            "repo": repository,
            "spec": spec_path,
            "branch": default_branch,
            "secret": webhook_secret,
            "actor": actor,
            "now": now,
        },
    )
    return find(tx, name) if inserted else None


def find(tx: Transaction, name: str) -> Project | None:
    """The project called `name`, inside `tx`."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM projects WHERE name = :n", {"n": name})
    return _project(rows[0]) if rows else None


def get(db: Database, name: str) -> Project | None:
    """The project called `name`."""
    with db.read() as tx:
        return find(tx, name)


def list_projects(db: Database) -> list[Project]:
    """Every project, by name."""
    with db.read() as tx:
        return list_in(tx)


def delete(tx: Transaction, name: str) -> bool:
    """Remove the project called `name`; False when there was none."""
    if find(tx, name) is None:
        return False
    tx.execute("DELETE FROM projects WHERE name = :n", {"n": name})
    return True


def lock(tx: Transaction, name: str) -> str | None:
    """The project's sealed webhook secret, its row locked until `tx` ends (PostgreSQL).

    Deliveries of one project are then judged one at a time, so a replay that
    arrives while the first copy is being recorded waits and sees it.
    SQLite's write transaction already serializes them.
    """
    suffix = " FOR UPDATE" if tx.dialect == "postgresql" else ""
    rows = tx.execute(f"SELECT webhook_secret FROM projects WHERE name = :n{suffix}", {"n": name})
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def webhook_secrets(tx: Transaction) -> list[tuple[str, str]]:
    """(project, sealed webhook secret) of every project that has one."""
    rows = tx.execute(
        "SELECT name, webhook_secret FROM projects WHERE webhook_secret IS NOT NULL ORDER BY name"
    )
    return [(str(name), str(sealed)) for name, sealed in rows]


def set_webhook_secret(tx: Transaction, *, name: str, sealed: str | None) -> None:
    """Replace a project's sealed webhook secret."""
    tx.execute("UPDATE projects SET webhook_secret = :s WHERE name = :n", {"s": sealed, "n": name})


def delivery_kinds(tx: Transaction, subject: str) -> list[str]:
    """The kinds of the Events recorded for one webhook delivery, oldest first."""
    rows = tx.execute("SELECT kind FROM events WHERE subject = :s ORDER BY seq", {"s": subject})
    return [str(kind) for (kind,) in rows]


def list_in(tx: Transaction) -> list[Project]:
    """Every project, by name, inside `tx`."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM projects ORDER BY name")
    return [_project(row) for row in rows]

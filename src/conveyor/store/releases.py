"""Releases and their artifacts: record once, read many. Keyword-only, one transaction per call."""

from __future__ import annotations

import json
from collections.abc import Sequence

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound
from conveyor.core.records import RunId
from conveyor.release.model import Commit, NewRelease, Release, ReleaseArtifact, ReleaseId
from conveyor.store import events as event_log
from conveyor.store.db import Database, Row, Transaction, bind_list

_COLUMNS = (
    "id, project, service, version, commit_sha, run_id, config_digest, config, "
    "previous_version, repository, commits, created_at, created_by"
)


def create_release(db: Database, *, release: NewRelease, event: NewEvent) -> tuple[Release, bool]:
    """Record `release` and its Event unless its version exists; (the stored one, whether new)."""
    with db.write() as tx:
        rows = tx.execute(
            "INSERT INTO releases (project, service, version, commit_sha, run_id, config_digest, "
            "config, previous_version, repository, commits, created_at, created_by) VALUES "
            "(:project, :service, :version, :commit_sha, :run_id, :config_digest, :config, "
            ":previous_version, :repository, :commits, :created_at, :created_by) "
            "ON CONFLICT (project, service, version) DO NOTHING RETURNING id",
            _values(release),
        )
        if not rows:
            # Recorded before, perhaps a moment ago by another process: the caller compares.
            return _get(tx, release.project, release.service, release.version), False
        release_id = int(rows[0][0])
        tx.executemany(
            "INSERT INTO release_artifacts (release_id, path, digest, size) "
            "VALUES (:r, :path, :digest, :size)",
            [
                {"r": release_id, "path": a.path, "digest": a.digest, "size": a.size}
                for a in release.artifacts
            ],
        )
        event_log.append(tx, [event])
        return _get(tx, release.project, release.service, release.version), True


def _values(release: NewRelease) -> dict[str, object]:
    return {
        "project": release.project,
        "service": release.service,
        "version": release.version,
        "commit_sha": release.commit_sha,
        "run_id": release.run_id,
        "config_digest": release.config_digest,
        "config": release.config,
        "previous_version": release.previous_version,
        "repository": release.repository,
        "commits": json.dumps([_commit_json(c) for c in release.commits], ensure_ascii=False),
        "created_at": release.created_at,
        "created_by": release.created_by,
    }


def get_release(db: Database, *, project: str, service: str, version: str) -> Release:
    """The Release of `service` at `version`; NotFound when there is none."""
    with db.read() as tx:
        return _get(tx, project, service, version)


def list_releases(db: Database, *, project: str, service: str | None = None) -> list[Release]:
    """Every Release of the project (or of one service), oldest first."""
    clause, params = "project = :p", {"p": project}
    if service is not None:
        clause += " AND service = :s"
        params["s"] = service
    with db.read() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM releases WHERE {clause} ORDER BY id", params)
        artifacts = _artifacts_of(tx, [int(row[0]) for row in rows])
    return [_release(row, artifacts.get(int(row[0]), ())) for row in rows]


def released_digests(db: Database) -> set[str]:
    """The digest of every artifact of every Release, in every project."""
    with db.read() as tx:
        rows = tx.execute("SELECT DISTINCT digest FROM release_artifacts")
    return {str(row[0]) for row in rows}


def _get(tx: Transaction, project: str, service: str, version: str) -> Release:
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM releases WHERE project = :p AND service = :s AND version = :v",
        {"p": project, "s": service, "v": version},
    )
    if not rows:
        raise NotFound(f"{service} has no release {version}; `conveyor release list` shows them")
    release_id = int(rows[0][0])
    return _release(rows[0], _artifacts_of(tx, [release_id]).get(release_id, ()))


def _artifacts_of(
    tx: Transaction, release_ids: Sequence[int]
) -> dict[int, tuple[ReleaseArtifact, ...]]:
    if not release_ids:
        return {}
    marks, params = bind_list("r", release_ids)
    rows = tx.execute(
        f"SELECT release_id, path, digest, size FROM release_artifacts "
        f"WHERE release_id IN ({marks}) ORDER BY release_id, path",
        params,
    )
    out: dict[int, list[ReleaseArtifact]] = {}
    for release_id, path, digest, size in rows:
        out.setdefault(int(release_id), []).append(
            ReleaseArtifact(str(path), str(digest), int(size))
        )
    return {rid: tuple(items) for rid, items in out.items()}


def _commit_json(commit: Commit) -> dict[str, object]:
    return {
        "sha": commit.sha,
        "author": commit.author,
        "email": commit.email,
        "date": commit.date,
        "message": commit.message,
        "parents": commit.parents,
        "committer_email": commit.committer_email,
    }


def _commit(doc: dict[str, object]) -> Commit:
    return Commit(
        sha=str(doc["sha"]),
        author=str(doc["author"]),
        email=str(doc["email"]),
        date=str(doc["date"]),
        message=str(doc["message"]),
        parents=int(str(doc["parents"])),
        committer_email=str(doc.get("committer_email", "")),
    )


def _release(row: Row, artifacts: tuple[ReleaseArtifact, ...]) -> Release:
    return Release(
        id=ReleaseId(int(row[0])),
        project=str(row[1]),
        service=str(row[2]),
        version=str(row[3]),
        commit_sha=None if row[4] is None else str(row[4]),
        run_id=RunId(int(row[5])),
        config_digest=str(row[6]),
        config=str(row[7]),
        previous_version=None if row[8] is None else str(row[8]),
        repository=None if row[9] is None else str(row[9]),
        commits=tuple(_commit(doc) for doc in json.loads(str(row[10]))),
        created_at=float(row[11]),
        created_by=str(row[12]),
        artifacts=artifacts,
    )

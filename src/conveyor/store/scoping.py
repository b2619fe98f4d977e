"""What a token limited to one project may read: its Events and the artifacts of its Runs.

An Event belongs to project P when its subject is at or below `project/P` or
`waiver/P`, or at or below the subject of one of P's Runs (`run/<id>`) or
Releases (`release/<service>/<version>`). Everything else (tokens, agents,
global secrets, other projects) is not P's to read.
"""

from __future__ import annotations

from conveyor.store.db import Database


def project_events_clause(project: str) -> tuple[str, dict[str, object]]:
    """A WHERE clause (over `events`) true for the Events of `project`, and its parameters."""
    own, waivers = f"project/{project}", f"waiver/{project}/"
    run = "'run/' || r.id"
    release = "'release/' || x.service || '/' || x.version"
    sql = (
        "(subject = :scope_own OR substr(subject, 1, :scope_k) = :scope_below"
        " OR substr(subject, 1, :scope_kw) = :scope_waivers"
        " OR (substr(subject, 1, 4) = 'run/' AND EXISTS (SELECT 1 FROM runs r"
        f" WHERE r.project = :scope AND (subject = {run}"
        f" OR substr(subject, 1, length({run}) + 1) = {run} || '/')))"
        " OR (substr(subject, 1, 8) = 'release/' AND EXISTS (SELECT 1 FROM releases x"
        f" WHERE x.project = :scope AND (subject = {release}"
        f" OR substr(subject, 1, length({release}) + 1) = {release} || '/'))))"
    )
    params: dict[str, object] = {
        "scope": project,
        "scope_own": own,
        "scope_k": len(own) + 1,
        "scope_below": own + "/",
        "scope_kw": len(waivers),
        "scope_waivers": waivers,
    }
    return sql, params


def artifact_in_project(db: Database, digest: str, project: str) -> bool:
    """Whether `digest` is an output or a log of a JobRun of one of `project`'s Runs."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT 1 FROM artifacts a JOIN job_runs j ON j.id = a.job_run_id "
            "JOIN runs r ON r.id = j.run_id WHERE a.digest = :d AND r.project = :p "
            "UNION ALL SELECT 1 FROM job_runs j JOIN runs r ON r.id = j.run_id "
            "WHERE j.log_digest = :d AND r.project = :p LIMIT 1",
            {"d": digest, "p": project},
        )
    return bool(rows)

"""The same commands against PostgreSQL (`CONVEYOR_DATABASE_URL`) instead of the embedded store."""

from __future__ import annotations

import psycopg
import pytest

from .support import WorkspaceFactory, assert_chain_intact, jobs_by_name

PIPELINE = """
version: 1
jobs:
  build:
    inputs: ["src/**"]
    run: mkdir -p out && cat src/*.txt > out/app.txt
    outputs: [out/app.txt]
  test:
    needs: [build]
    inputs: []
    run: grep -q hello out/app.txt
"""


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_a_pipeline_runs_caches_and_explains_itself_on_postgresql(
    workspace: WorkspaceFactory, database_url: str
) -> None:
    ws = workspace(PIPELINE, files={"src/a.txt": "hello\n"}, fresh=True)
    env = {"CONVEYOR_DATABASE_URL": database_url}

    unmigrated = ws.cli("run", env=env)
    assert unmigrated.code == 3
    assert "conveyor db upgrade" in unmigrated.err
    assert ws.cli("db", "upgrade", env=env).code == 0

    first = ws.cli("run", "--json", env=env)
    assert first.code == 0, first.err
    again = ws.cli("run", "--json", env=env).json()
    assert {job["status"] for job in again["jobs"]} == {"cached"}

    ws.write("src/a.txt", "hello again\n")
    changed = ws.cli("run", "--json", "--explain", env=env).json()
    build = jobs_by_name(changed)["build"]
    assert build["status"] == "success"
    assert build["explain"] == ["file src/a.txt changed"]
    assert jobs_by_name(changed)["test"]["status"] == "success"

    runs = ws.cli("runs", "--json", env=env).json()["runs"]
    assert [run["status"] for run in runs] == ["success", "success", "success"]
    shown = ws.cli("show", str(first.json()["id"]), "--json", env=env).json()
    assert shown["jobs"] == first.json()["jobs"]
    assert ws.cli("logs", "latest", "build", env=env).code == 0
    # Nothing went to the embedded database.
    assert not (ws.state / "conveyor.db").exists()

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT seq, ts, kind, subject, actor, data, prev_hash, hash FROM events ORDER BY seq"
        ).fetchall()
    keys = ("seq", "ts", "kind", "subject", "actor", "data", "prev_hash", "hash")
    events = [dict(zip(keys, row, strict=True)) for row in rows]
    assert len(events) >= 3 * 2 + 2
    assert_chain_intact(events)

"""Alembic migrations on SQLite and PostgreSQL: upgrade, no-op, drift, downgrade, concurrency."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from conveyor.core.errors import StoreError
from conveyor.store import migrate, schema
from conveyor.store.db import Database, SqliteDatabase, open_database

Connect = Callable[[], AbstractContextManager[Connection]]
TABLES = {
    "runs",
    "job_runs",
    "artifacts",
    "events",
    "tree_heads",
    "releases",
    "release_artifacts",
    "promotions",
    "approvals",
    "environment_states",
    "deployments",
    "waivers",
    "api_tokens",
    "secrets",
    "projects",
    "agents",
    "job_attempts",
}


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def _alembic(connect: Connect, action: Callable[[Config, str], None], revision: str) -> None:
    with connect() as conn, conn.begin():
        action(_config(conn), revision)


def _tables(connect: Connect) -> set[str]:
    with connect() as conn:
        return set(inspect(conn).get_table_names())


def _drift(connect: Connect) -> Sequence[object]:
    with connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata))


def _count(db: Database, table: str) -> int:
    with db.read() as tx:
        return int(tx.execute(f"SELECT count(*) FROM {table}")[0][0])


def test_upgrade_creates_the_schema_on_an_empty_database_and_reports_where_it_started(
    empty_db: Database, connect_sqlalchemy: Connect
) -> None:
    assert migrate.current_revision(empty_db) is None
    assert not migrate.is_current(empty_db)

    assert migrate.upgrade(empty_db) is None

    assert migrate.current_revision(empty_db) == migrate.HEAD_REVISION
    assert migrate.is_current(empty_db)
    assert _tables(connect_sqlalchemy) == TABLES | {"alembic_version"}
    assert all(_count(empty_db, table) == 0 for table in TABLES)


def test_upgrading_a_current_database_changes_nothing_and_does_not_run_alembic(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.write() as tx:
        tx.execute(
            "INSERT INTO events (seq, ts, kind, subject, actor, data, prev_hash, hash) "
            "VALUES (1, 't', 'k', 's', 'a', '{}', 'p', 'h')"
        )

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Alembic ran on a current database")

    monkeypatch.setattr(command, "upgrade", fail)

    assert migrate.upgrade(db) == migrate.HEAD_REVISION
    assert migrate.upgrade(db) == migrate.HEAD_REVISION
    assert _count(db, "events") == 1
    assert _count(db, "alembic_version") == 1


def test_head_revision_is_alembics_script_head() -> None:
    script = ScriptDirectory.from_config(_config())

    assert script.get_heads() == [migrate.HEAD_REVISION]


def test_migrated_schema_matches_the_metadata_exactly(
    db: Database, connect_sqlalchemy: Connect
) -> None:
    assert _drift(connect_sqlalchemy) == []


def test_downgrade_to_base_then_upgrade_restores_the_schema(
    db: Database, connect_sqlalchemy: Connect
) -> None:
    _alembic(connect_sqlalchemy, command.downgrade, "base")

    assert _tables(connect_sqlalchemy) == {"alembic_version"}
    assert migrate.current_revision(db) is None

    assert migrate.upgrade(db) is None
    assert migrate.is_current(db)
    assert _drift(connect_sqlalchemy) == []


def test_two_processes_migrating_the_same_fresh_database_both_succeed(
    database_url: str, spawn: Callable[[str, int, Sequence[str]], list[str]]
) -> None:
    script = (
        "from conveyor.store import migrate\n"
        "from conveyor.store.db import open_database\n"
        "wait_for_go()\n"
        "db = open_database(sys.argv[3])\n"
        "try:\n    print(migrate.upgrade(db))\nfinally:\n    db.close()\n"
    )

    started_from = [out.strip() for out in spawn(script, 2, [database_url])]

    # One of them found the database empty; the other either waited for it and
    # found nothing left to do, or (PostgreSQL) checked before it finished.
    assert "None" in started_from
    assert set(started_from) <= {"None", migrate.HEAD_REVISION}
    db = open_database(database_url)
    try:
        assert migrate.is_current(db)
        assert _count(db, "alembic_version") == 1
    finally:
        db.close()


def test_upgrading_from_0001_keeps_artifacts_and_lifts_the_2_gib_size_limit(
    empty_db: Database, connect_sqlalchemy: Connect
) -> None:
    _alembic(connect_sqlalchemy, command.upgrade, "0001")
    with empty_db.write() as tx:
        (run_id,) = tx.execute(
            "INSERT INTO runs (project, status, pipeline_path, spec_digest, workspace, event, "
            "actor, targets, options, host, pid, created_at) VALUES ('shop', 'success', "
            "'conveyor.yaml', 'sha256:0', '/srv/shop', 'manual', 'ada', '[]', '{}', 'h', 1, 0) "
            "RETURNING id"
        )[0]
        (job_id,) = tx.execute(
            "INSERT INTO job_runs (run_id, position, name, base_name, needs, status, cached, "
            "allow_failure, attempts) VALUES (:r, 0, 'build', 'build', '[]', 'success', :f, :f, 1) "
            "RETURNING id",
            {"r": run_id, "f": False},
        )[0]
        tx.execute(
            "INSERT INTO artifacts (job_run_id, path, digest, size) "
            "VALUES (:j, 'a', 'sha256:a', 7)",
            {"j": job_id},
        )

    assert migrate.upgrade(empty_db) == "0001"

    with empty_db.write() as tx:
        tx.execute(
            "INSERT INTO artifacts (job_run_id, path, digest, size) "
            "VALUES (:j, 'b', 'sha256:b', :s)",
            {"j": job_id, "s": 5 << 30},
        )
        sizes = tx.execute("SELECT path, size FROM artifacts ORDER BY id")
    assert [(path, int(size)) for path, size in sizes] == [("a", 7), ("b", 5 << 30)]
    assert _drift(connect_sqlalchemy) == []


RESULT = "exit_code, duration_s, log_digest, tests_passed, tests_failed, tests_skipped, failures"


def test_upgrading_from_0010_moves_a_waiting_retrys_result_onto_its_attempt_and_back(
    empty_db: Database, connect_sqlalchemy: Connect
) -> None:
    _alembic(connect_sqlalchemy, command.upgrade, "0010")
    kept = (1, 4.0, "sha256:" + "3" * 64, 2, 1, 0, '["test_pay"]')
    done = (0, 2.0, "sha256:" + "4" * 64, None, None, None, None)
    with empty_db.write() as tx:
        (run_id,) = tx.execute(
            "INSERT INTO runs (project, status, pipeline_path, spec_digest, workspace, event, "
            "actor, targets, options, host, pid, created_at) VALUES ('shop', 'running', "
            "'conveyor.yaml', 'sha256:0', '/srv/shop', 'manual', 'ada', '[]', '{}', 'h', 1, 0) "
            "RETURNING id"
        )[0]
        jobs = {}
        # 'flaky' waits to retry its failed attempt, whose result revision 0010 kept on the
        # JobRun; 'build' succeeded at its second attempt, after one handed back.
        for name, status, attempts, result in (
            ("flaky", "queued", 1, kept),
            ("build", "success", 2, done),
        ):
            (jobs[name],) = tx.execute(
                "INSERT INTO job_runs (run_id, position, name, base_name, needs, status, cached, "
                f"allow_failure, attempts, {RESULT}) VALUES (:r, :p, :n, :n, '[]', :s, :f, :f, "
                ":a, :c, :d, :l, :tp, :tf, :ts, :fs) RETURNING id",
                {"r": run_id, "p": len(jobs), "n": name, "s": status, "f": False, "a": attempts}
                | dict(zip(("c", "d", "l", "tp", "tf", "ts", "fs"), result, strict=True)),
            )[0]
        for job, number, status in (
            ("flaky", 1, "failed"),
            ("build", 1, "handed_back"),
            ("build", 2, "success"),
        ):
            tx.execute(
                "INSERT INTO job_attempts (job_run_id, run_id, number, status, claimed_at, "
                "queued_s, lease_until, heartbeat_at) VALUES (:j, :r, :n, :s, 0, 0, 30, 0)",
                {"j": jobs[job], "r": run_id, "n": number, "s": status},
            )

    def results(table: str, order: str) -> list[tuple[object, ...]]:
        with empty_db.read() as tx:
            rows = tx.execute(f"SELECT {RESULT} FROM {table} ORDER BY {order}")
        return [tuple(row) for row in rows]

    assert migrate.upgrade(empty_db) == "0010"

    empty = (None,) * 7
    assert results("job_attempts", "job_run_id, number") == [kept, empty, done]
    assert results("job_runs", "position") == [empty, done]
    assert _drift(connect_sqlalchemy) == []

    _alembic(connect_sqlalchemy, command.downgrade, "0010")

    assert results("job_runs", "position") == [kept, done]


def test_an_upgrade_that_fails_part_way_leaves_the_database_as_it_was(
    empty_db: Database, connect_sqlalchemy: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import op

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    # The first migration creates a table, then its indexes: stop it in between.
    monkeypatch.setattr(op, "create_index", interrupted)
    with pytest.raises(KeyboardInterrupt):
        migrate.alembic_upgrade(empty_db)  # a new SQLite store would not go through Alembic
    monkeypatch.undo()

    assert _tables(connect_sqlalchemy) <= {"alembic_version"}
    assert migrate.current_revision(empty_db) is None
    assert migrate.upgrade(empty_db) is None
    assert _drift(connect_sqlalchemy) == []


# --- a new SQLite store from the recorded head schema ---------------------------------

REGENERATE = (
    "src/conveyor/store/sqlite_head.sql is not what the migrations make; after adding a "
    'migration, rewrite it with: python -c "from conveyor.store.migrate import '
    'write_sqlite_head; write_sqlite_head()"'
)


def _master(db: SqliteDatabase) -> list[tuple[object, ...]]:
    with db.read() as tx:
        rows = tx.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        versions = tx.execute("SELECT version_num FROM alembic_version")
    return [tuple(row) for row in rows] + [tuple(row) for row in versions]


def test_a_new_sqlite_store_gets_exactly_the_schema_the_migrations_make(tmp_path: Path) -> None:
    recorded = SqliteDatabase(tmp_path / "recorded.db")
    migrated = SqliteDatabase(tmp_path / "migrated.db")
    try:
        assert migrate.upgrade(recorded) is None
        migrate.alembic_upgrade(migrated)

        assert _master(recorded) == _master(migrated), REGENERATE
        assert migrate.sqlite_schema(migrated) == migrate.SQLITE_HEAD.read_text(), REGENERATE
    finally:
        recorded.close()
        migrated.close()


def test_a_new_sqlite_store_is_made_without_importing_alembic_or_sqlalchemy(
    tmp_path: Path,
) -> None:
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from conveyor.store import migrate\n"
        "from conveyor.store.db import SqliteDatabase\n"
        "db = SqliteDatabase(Path(sys.argv[1]))\n"
        "migrate.upgrade(db)\n"
        "print(migrate.is_current(db), 'alembic' in sys.modules, 'sqlalchemy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "new.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout.split() == ["True", "False", "False"], done.stderr


def test_a_recorded_schema_that_fails_part_way_leaves_the_new_store_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.sql"
    broken.write_text(
        migrate.SQLITE_HEAD.read_text() + "CREATE TABLE runs (id INTEGER);\n\n"
    )  # `runs` exists by then
    monkeypatch.setattr(migrate, "SQLITE_HEAD", broken)
    db = SqliteDatabase(tmp_path / "new.db")
    try:
        with pytest.raises(StoreError, match="cannot create the store's schema"):
            migrate.upgrade(db)

        with db.read() as tx:
            assert tx.execute("SELECT name FROM sqlite_master") == []
    finally:
        db.close()

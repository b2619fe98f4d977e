"""Bringing a database's schema to the head revision with Alembic.

Checking the revision is cheap and done on every open; Alembic itself (half
a second to import) is loaded only when there is something to upgrade.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.core.errors import StoreError
from conveyor.store.db import Database, SqlAlchemyDatabase, SqliteDatabase, redact_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# The newest migration; a test keeps this equal to Alembic's head.
HEAD_REVISION = "0011"
MIGRATIONS = Path(__file__).parent / "migrations"
# A new SQLite store's schema at the head revision, as the migrations leave it (a test keeps
# it equal to what Alembic makes; `write_sqlite_head()` rewrites it). Creating a store from
# it spares the first run in a new workspace importing Alembic and SQLAlchemy (0.5 s).
SQLITE_HEAD = Path(__file__).with_name("sqlite_head.sql")
_STATEMENT_END = ";\n\n"


def current_revision(db: Database) -> str | None:
    """The revision recorded in the database, or None when it has no schema yet."""
    try:
        with db.read() as tx:
            rows = tx.execute("SELECT version_num FROM alembic_version")
    except Exception as exc:
        if _is_missing_table(exc):
            return None
        raise StoreError(f"cannot read the schema revision: {exc}") from exc
    return str(rows[0][0]) if rows else None


def _is_missing_table(exc: BaseException) -> bool:
    """Whether reading the revision failed for want of its table (not of the database, nor a
    role: PostgreSQL says those "do not exist" too)."""
    text = str(exc).lower()
    if "alembic_version" not in text:
        return False
    return "no such table" in text or "does not exist" in text or "undefinedtable" in text


def is_current(db: Database) -> bool:
    return current_revision(db) == HEAD_REVISION


def upgrade(db: Database) -> str | None:
    """Migrate `db` to the head revision; returns the revision it started from."""
    if isinstance(db, SqliteDatabase):
        with _file_lock(db.path.with_suffix(".migrate.lock")):
            return _upgrade_locked(db)
    return _upgrade_locked(db)


def _upgrade_locked(db: Database) -> str | None:
    start = current_revision(db)
    if start == HEAD_REVISION:
        return start
    if start is None and isinstance(db, SqliteDatabase) and _is_empty(db):
        _create_head(db, SQLITE_HEAD.read_text())
        return start
    alembic_upgrade(db)
    return start


def _is_empty(db: SqliteDatabase) -> bool:
    with db.read() as tx:
        return not tx.execute("SELECT 1 FROM sqlite_master LIMIT 1")


def _create_head(db: SqliteDatabase, script: str) -> None:
    """The head schema in one transaction: all of it or, on any error, nothing."""
    statements = [s for s in script.split(_STATEMENT_END) if s.strip()]
    try:
        with db.write() as tx:
            for statement in statements:
                tx.execute(statement)
    except StoreError as exc:
        raise StoreError(f"cannot create the store's schema in {db.path}: {exc}") from exc


def sqlite_schema(db: SqliteDatabase) -> str:
    """The schema of a SQLite store as a script `_create_head` replays: tables, then
    indexes and the rest, each by name and as SQLite keeps it; then the revision."""
    with db.read() as tx:
        rows = tx.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name"
        )
        revisions = tx.execute("SELECT version_num FROM alembic_version")
    statements = [str(row[0]) for row in rows]
    statements += [
        f"INSERT INTO alembic_version (version_num) VALUES ('{r[0]}')" for r in revisions
    ]
    return "".join(statement + _STATEMENT_END for statement in statements)


def write_sqlite_head() -> None:
    """Rewrite SQLITE_HEAD from a store the migrations make (after adding a migration)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = SqliteDatabase(Path(tmp) / "head.db")
        try:
            alembic_upgrade(db)
            SQLITE_HEAD.write_text(sqlite_schema(db))
        finally:
            db.close()


def alembic_upgrade(db: Database) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    engine = db.engine if isinstance(db, SqlAlchemyDatabase) else _sqlite_engine(db.url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two servers starting at once must not both create the schema.
                conn.execute(text("SELECT pg_advisory_xact_lock(7261100)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database: {redact_url(str(exc.orig))}") from exc
    finally:
        if not isinstance(db, SqlAlchemyDatabase):
            engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    """An engine whose transactions cover DDL, so a failed upgrade leaves no half schema.

    The sqlite3 module begins transactions only before DML, so each CREATE
    TABLE would commit at once; SQLAlchemy's documented remedy is to turn that
    off and emit BEGIN itself.
    """
    from sqlalchemy import create_engine, event

    engine = create_engine(url)

    def no_implicit_transactions(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None

    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", no_implicit_transactions)
    event.listen(engine, "begin", begin)
    return engine


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

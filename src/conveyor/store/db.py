"""The one seam between repositories and a SQL database.

Repositories write portable SQL with `:name` parameters and run it through a
`Database`. Two implementations exist:

- `SqliteDatabase` on the standard library's `sqlite3`, the embedded default.
  A fully cached `conveyor run` must finish in well under half a second, and
  importing SQLAlchemy alone costs a quarter of that on a small machine, so
  the embedded path does not import it.
- `SqlAlchemyDatabase` on a SQLAlchemy engine, used for PostgreSQL (and any
  URL that is not plain SQLite). Alembic migrations, which define the schema
  for both, always run through SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.core.errors import StoreError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

Params = Mapping[str, object]
# Drivers return untyped values; repositories convert them at once.
Row = tuple[Any, ...]


def bind_list(prefix: str, values: Iterable[object]) -> tuple[str, dict[str, object]]:
    """Placeholders for an SQL `IN (...)` (`:p0, :p1, ...`) and the parameters they bind."""
    params = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(f":{name}" for name in params), params


class Transaction(Protocol):
    """One open transaction; every statement runs inside it."""

    dialect: str

    def execute(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run one statement; rows when it returns any, else an empty list."""
        ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for each parameter set."""
        ...


class Database(Protocol):
    """A database that hands out read and write transactions.

    `write()` takes the database's write lock for the whole transaction on
    SQLite (BEGIN IMMEDIATE), so read-then-write sequences such as appending
    to the event chain are serialized across processes.
    """

    dialect: str
    url: str

    @contextmanager
    def read(self) -> Iterator[Transaction]: ...

    @contextmanager
    def write(self) -> Iterator[Transaction]: ...

    def checkpoint(self) -> None:
        """Tidy up after writes, at a quiet moment, without waiting on anyone."""
        ...

    def close(self) -> None: ...


class _SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params | None = None) -> list[Row]:
        try:
            return self._conn.execute(sql, params or {}).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"the database refused a statement: {exc}") from exc

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            try:
                self._conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise StoreError(f"the database refused a statement: {exc}") from exc


def _enable_wal(conn: sqlite3.Connection, *, deadline: float) -> None:
    """Switch to WAL, waiting while another connection holds the lock it needs.

    Two processes opening a new file at once race to convert it, and SQLite
    reports the loser busy at once instead of waiting out the busy timeout.
    """
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            busy = (exc.sqlite_errorname or "").startswith("SQLITE_BUSY")
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        else:
            return


class SqliteDatabase:
    """SQLite in WAL mode through the standard library."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_s: float = 60.0) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        try:
            _enable_wal(self._conn, deadline=time.monotonic() + busy_timeout_s)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc
        # One connection serves every thread of this process, one at a time.
        self._lock = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self._transaction("BEGIN") as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Transaction]:
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot use the store at {self.path}: {exc}") from exc
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store at {self.path}: {exc}") from exc

    def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database file, as far as it can.

        SQLite does this when the last connection closes, at the end of a
        command; done while jobs run (the Recorder calls it when idle), that
        end finds little left to copy. PASSIVE: it neither waits for nor blocks
        other connections; what they still read stays in the log.
        """
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _SqlAlchemyTx:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Params | None = None) -> list[Row]:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        try:
            result = self._conn.execute(text(sql), dict(params or {}))
            return [tuple(row) for row in result] if result.returns_rows else []
        except DBAPIError as exc:
            raise StoreError(f"the database refused a statement: {exc.orig}") from exc

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        if rows:
            try:
                self._conn.execute(text(sql), [dict(r) for r in rows])
            except DBAPIError as exc:
                raise StoreError(f"the database refused a statement: {exc.orig}") from exc


class SqlAlchemyDatabase:
    """Any SQLAlchemy URL; PostgreSQL is the one the shared control plane uses."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.url = url
        self._engine: Engine = create_engine(url, pool_pre_ping=True)
        self.dialect = self._engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self._begin() as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with self._begin() as tx:
            yield tx

    @contextmanager
    def _begin(self) -> Iterator[Transaction]:
        from sqlalchemy.exc import OperationalError

        try:
            conn = self._engine.connect()
        except OperationalError as exc:
            raise StoreError(f"cannot reach the database: {redact_url(str(exc.orig))}") from exc
        with conn, conn.begin():
            yield _SqlAlchemyTx(conn, self.dialect)

    @property
    def engine(self) -> Engine:
        return self._engine

    def checkpoint(self) -> None:
        """The server tidies its own log."""

    def close(self) -> None:
        self._engine.dispose()


def open_database(url: str) -> Database:
    """A Database for `url` (`sqlite:///path` uses the standard library)."""
    if url.startswith("sqlite:///") and "?" not in url:
        return SqliteDatabase(Path(url.removeprefix("sqlite:///")))
    for scheme in ("postgresql://", "postgres://"):  # the second as many hosts write it
        if url.startswith(scheme):
            # psycopg 3 is the driver we ship; spare users the `+psycopg` suffix.
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    try:
        return SqlAlchemyDatabase(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types for a bad URL
        reason = redact_url(str(exc))
        # The URL is the user's own setting: bad input, not a fault of the store.
        raise UsageError(
            f"cannot use the database URL {redact_url(url)}: {reason}; write "
            "postgresql://USER@HOST:PORT/DATABASE, or sqlite:///PATH"
        ) from None


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, for messages (also in malformed URLs)."""
    return re.sub(r"([^:/@\s]+):([^@/\s]*)@", r"\1:***@", url)

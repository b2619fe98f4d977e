"""Store fixtures: a real database on SQLite (in tmp_path) and on the real PostgreSQL.

Every PostgreSQL test gets a schema of its own in the shared database, and
every connection it opens (threads, subprocesses, Alembic) uses that schema
through the URL's `options`, so tests run in parallel and leave nothing behind.
PostgreSQL tests never skip: an unreachable server fails them with a message
saying how to start one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from conveyor.audit.chain import NewEvent
from conveyor.core.records import RunId
from conveyor.store import migrate
from conveyor.store import runs as run_store
from conveyor.store.db import Database, SqlAlchemyDatabase, open_database

POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
START_POSTGRES = """\
PostgreSQL is not reachable at {url}: {error}
The store tests run against a real server (CI starts one). Start one with trust
auth and a database named `test`, for example:
  docker run --rm -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust \\
    -e POSTGRES_DB=test postgres:16
or point CONVEYOR_TEST_POSTGRES_URL at another server."""

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server's URL, once it has answered."""
    import psycopg

    error: psycopg.OperationalError | None = None
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        error = exc
    if error is not None:
        pytest.fail(START_POSTGRES.format(url=POSTGRES_URL, error=error), pytrace=False)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections all use a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'conveyor.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def empty_db(database_url: str) -> Iterator[Database]:
    """An open Database with no schema yet."""
    db = open_database(database_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def db(empty_db: Database) -> Database:
    """An open Database migrated to the head revision."""
    migrate.upgrade(empty_db)
    return empty_db


@pytest.fixture
def connect_sqlalchemy(
    empty_db: Database,
) -> Callable[[], AbstractContextManager[Connection]]:
    """Opens a SQLAlchemy connection to the test's database (for Alembic and inspection)."""

    @contextmanager
    def connect() -> Iterator[Connection]:
        if isinstance(empty_db, SqlAlchemyDatabase):
            with empty_db.engine.connect() as conn:
                yield conn
            return
        engine = create_engine(empty_db.url)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    return connect


def _new_run(**overrides: object) -> run_store.NewRun:
    """A NewRun with plausible values; keyword arguments replace any of them."""
    values: dict[str, object] = {
        "project": "shop",
        "pipeline_path": "conveyor.yaml",
        "spec_digest": "sha256:" + "ab" * 32,
        "workspace": "/srv/shop",
        "branch": "main",
        "commit_sha": "c0ffee" * 6 + "c0ff",
        "event": "manual",
        "actor": "ada@example.com",
        "targets": ("deploy",),
        "options": {"jobs": 4, "no_cache": False},
        "host": "build-1",
        "pid": 4242,
        "created_at": T0,
    }
    values.update(overrides)
    return run_store.NewRun(**values)  # type: ignore[arg-type]


def _new_jobs(names: Sequence[str]) -> list[run_store.NewJob]:
    """Planned jobs in the given order; each needs the one before it."""
    return [
        run_store.NewJob(
            position=i,
            name=name,
            base_name=name.split(" ", 1)[0],
            needs=(names[i - 1],) if i else (),
            allow_failure=False,
        )
        for i, name in enumerate(names)
    ]


@pytest.fixture
def make_run(db: Database) -> MakeRun:
    """Creates a Run with planned jobs in the test's database; returns its ids."""

    def make(
        *,
        jobs: Sequence[str] = ("build", "test"),
        events: Sequence[NewEvent] = (),
        **run: object,
    ) -> tuple[RunId, dict[str, int]]:
        return run_store.create_run(db, run=_new_run(**run), jobs=_new_jobs(jobs), events=events)

    return make


@pytest.fixture
def spawn(tmp_path: Path) -> Callable[[str, int, Sequence[str]], list[str]]:
    """Runs `count` copies of a Python script at once; returns what each printed.

    A copy calls `wait_for_go()` once it has imported and set up what it
    needs; every copy then starts together, so their work really overlaps.
    In the script, argv[1] is the go file, argv[2] the copy's index, and the
    rest are `args`.
    """

    def run(script: str, count: int, args: Sequence[str]) -> list[str]:
        go = tmp_path / "go"
        prelude = (
            "import sys, time\nfrom pathlib import Path\n"
            "def wait_for_go():\n"
            "    Path(sys.argv[1] + '.ready.' + sys.argv[2]).touch()\n"
            "    while not Path(sys.argv[1]).exists():\n"
            "        time.sleep(0.001)\n"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", prelude + script, str(go), str(i), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(count)
        ]
        try:
            deadline = time.monotonic() + 30
            while not all(Path(f"{go}.ready.{i}").exists() for i in range(count)):
                assert time.monotonic() < deadline, "the workers did not start"
                for p in procs:
                    if p.poll() is not None:
                        out, err = p.communicate()
                        pytest.fail(f"a worker exited before the start:\n{out}\n{err}")
                time.sleep(0.005)
            go.touch()
            results = [p.communicate(timeout=60) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, f"worker failed with {p.returncode}:\n{out}\n{err}"
        return [out for out, _ in results]

    return run

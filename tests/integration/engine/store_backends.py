"""A migrated database on SQLite and on the real PostgreSQL, for services tested on both.

The same recipe as the store tests' fixtures: a fresh SQLite file, or a
PostgreSQL schema of its own (through the URL's `options`), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor.store import migrate
from conveyor.store.db import Database, open_database

POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An open, migrated Database on the backend the test is parametrized with."""
    if request.param == "sqlite":
        db = open_database(f"sqlite:///{tmp_path / 'state' / 'conveyor.db'}")
        migrate.upgrade(db)
        try:
            yield db
        finally:
            db.close()
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    db = open_database(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        migrate.upgrade(db)
        yield db
    finally:
        db.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

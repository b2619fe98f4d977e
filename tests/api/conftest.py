"""API fixtures: a real app on a real database (SQLite in tmp_path, or a PostgreSQL schema).

The PostgreSQL schema per test comes from the store tests' fixtures, so every
connection the app opens (threads, other server processes) uses that schema.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from conveyor.core.clock import FrozenClock
from conveyor.engine.tokens import TokenService
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from conveyor.store import migrate
from conveyor.store.db import open_database
from integration.store.conftest import postgres_schema_url, postgres_url

__all__ = ["postgres_schema_url", "postgres_url"]

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]

Issue = Callable[..., str]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in the state directory, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'conveyor.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    db = open_database(database_url)
    try:
        migrate.upgrade(db)
    finally:
        db.close()
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path, migrated_url: str) -> Settings:
    return Settings(state_dir=tmp_path / "state", database_url=migrated_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; its base URL until stopped."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client of the app, served for real (its lifespan opened the database)."""
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


@pytest.fixture
def issue(app: FastAPI, client: httpx.Client, clock: FrozenClock) -> Issue:
    """Makes a token straight on the app's database, as `conveyor token create` does on the host."""

    def make(role: str = "admin", **options: str | None) -> str:
        service = TokenService(db=app.state.conveyor.db, clock=clock)
        return service.create(role=role, actor="root@server", **options).token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

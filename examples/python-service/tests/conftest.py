"""A real server on a free port, in a thread, for each test that asks for one."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from apiclient import Client
from payments.app import PaymentsServer


@pytest.fixture
def server() -> Iterator[PaymentsServer]:
    server = PaymentsServer(("127.0.0.1", 0))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(server: PaymentsServer) -> Client:
    return Client(server.url)

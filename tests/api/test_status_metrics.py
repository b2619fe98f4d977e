"""`/metrics` counts runs and jobs by status in the database, so every replica agrees."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import Client

from conveyor.core.clock import FrozenClock
from conveyor.server.app import create_app
from conveyor.server.settings import Settings

from .conftest import serving
from .test_scoping import make_run


def test_runs_and_jobs_by_status_are_read_from_the_database_at_scrape_time(
    client: Client, app: FastAPI, settings: Settings, clock: FrozenClock
) -> None:
    assert 'conveyor_runs{status="running"}' not in client.get("/metrics").text
    make_run(app, "shop", b"a", b"a log")
    make_run(app, "payments", b"b", b"b log")
    other = create_app(settings, clock=clock)
    with serving(other) as url, Client(base_url=url) as replica:
        scraped = [client.get("/metrics").text, replica.get("/metrics").text]
    for text in scraped:
        assert 'conveyor_runs{status="running"} 2.0' in text
        assert 'conveyor_jobs{status="pending"} 2.0' in text

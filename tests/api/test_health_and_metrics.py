"""Probes, metrics, request ids, problem answers for unknown paths, and the OpenAPI document."""

from __future__ import annotations

import psycopg
import pytest
from httpx import Client

from .conftest import Issue, bearer


def test_healthz_and_readyz_answer_ok(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.postgres
def test_readyz_is_503_when_the_database_lost_its_schema(
    postgres_schema_url: str, tmp_path: object
) -> None:
    from pathlib import Path

    from conveyor.server.app import create_app
    from conveyor.server.settings import Settings
    from conveyor.store import migrate
    from conveyor.store.db import open_database

    from .conftest import serving

    db = open_database(postgres_schema_url)
    migrate.upgrade(db)
    db.close()
    app = create_app(Settings(state_dir=Path(str(tmp_path)), database_url=postgres_schema_url))
    with serving(app) as url:
        base = postgres_schema_url.split("?", maxsplit=1)[0]
        with psycopg.connect(base, autocommit=True) as admin:
            schema = postgres_schema_url.rsplit("%3D", 1)[1]
            admin.execute(f"DROP TABLE {schema}.alembic_version")
        with Client(base_url=url) as probe:
            answer = probe.get("/readyz")
            assert answer.status_code == 503
            assert "conveyor db upgrade" in answer.json()["detail"]
            assert probe.get("/healthz").status_code == 200


def test_metrics_has_request_latency_by_route_template(client: Client, issue: Issue) -> None:
    token = issue("viewer")
    client.get("/api/v1/runs/12345", headers=bearer(token))
    text = client.get("/metrics").text
    assert (
        'conveyor_http_request_duration_seconds_count{method="GET",'
        'route="/api/v1/runs/{run_id}",status="404"} 1.0'
    ) in text
    for name in (
        "conveyor_runs",
        "conveyor_jobs",
        "conveyor_job_duration_seconds",
        "conveyor_job_queue_seconds",
        "conveyor_agents_connected",
        "conveyor_leases_expired_total",
    ):
        assert name in text


def test_a_request_id_is_echoed_or_made(client: Client) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad\tid"}).headers["x-request-id"]
    assert made != "bad\tid"
    assert len(made) == 32


def test_an_unknown_path_is_a_404_problem(client: Client) -> None:
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["instance"] == "/api/v1/nothing-here"


def test_the_openapi_document_lists_the_api(client: Client) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/whoami", "/api/v1/tokens", "/api/v1/runs/{run_id}"} <= set(doc["paths"])
    assert client.get("/api/v1/docs").status_code == 200

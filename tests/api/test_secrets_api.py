"""Secrets over HTTP: admins store values that never come back out, in any answer or record."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.core.clock import FrozenClock
from conveyor.core.secrets import format_key
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from conveyor.store import events as event_log

from .conftest import Issue, bearer, serving

ENV = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
VALUE = "s3cr3t-deploy-token-4242"
TABLES = ("secrets", "events", "projects", "api_tokens")


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> FastAPI:
    return create_app(settings, clock=clock, environ=ENV)


def put(client: Client, token: str, name: str = "DEPLOY_TOKEN", query: str = "") -> int:
    answer = client.put(
        f"/api/v1/secrets/{name}{query}", json={"value": VALUE}, headers=bearer(token)
    )
    return answer.status_code


def stored(client: Client, token: str, query: str = "") -> list[tuple[str, str | None]]:
    found = client.get(f"/api/v1/secrets{query}", headers=bearer(token)).json()["secrets"]
    return [(s["name"], s["project"]) for s in found]


def database_text(app: FastAPI) -> str:
    with app.state.conveyor.db.read() as tx:
        return "\n".join(
            repr(row) for table in TABLES for row in tx.execute(f"SELECT * FROM {table}")
        )


def test_an_admin_stores_a_secret_and_sees_only_its_name_and_metadata(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    admin = issue("admin", name="ada@example.com")
    answer = client.put(
        "/api/v1/secrets/DEPLOY_TOKEN?project=payments",
        json={"value": VALUE},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["name"], doc["project"], doc["updated_by"]) == (
        "DEPLOY_TOKEN",
        "payments",
        "ada@example.com",
    )
    assert set(doc) == {"name", "project", "key_id", "created_at", "updated_at", "updated_by"}
    assert stored(client, admin) == [("DEPLOY_TOKEN", "payments")]
    [event] = event_log.for_subject(app.state.conveyor.db, "project/payments/secret")
    assert (event.kind, event.actor) == ("secret.set", "ada@example.com")


def test_a_secret_value_never_reaches_answers_logs_events_or_the_database_in_clear(
    client: Client, issue: Issue, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    admin = issue()
    caplog.set_level(logging.DEBUG)
    answers = [
        client.put("/api/v1/secrets/DEPLOY_TOKEN", json={"value": VALUE}, headers=bearer(admin)),
        client.get("/api/v1/secrets", headers=bearer(admin)),
        client.get("/api/v1/events", headers=bearer(admin)),
        client.put("/api/v1/secrets/bad-name", json={"value": VALUE}, headers=bearer(admin)),
        client.put("/api/v1/secrets/X", json={"value": VALUE, "v": 1}, headers=bearer(admin)),
        client.delete("/api/v1/secrets/DEPLOY_TOKEN", headers=bearer(admin)),
        client.get("/api/v1/events", headers=bearer(admin)),
    ]
    for answer in answers:
        assert VALUE not in answer.text
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 422, 200, 200]
    assert any(r.name == "conveyor.server" for r in caplog.records), "the server's log was read"
    assert VALUE not in caplog.text
    assert VALUE not in database_text(app)


def test_a_viewer_cannot_set_a_secret_and_nothing_is_stored(client: Client, issue: Issue) -> None:
    viewer = issue("viewer")
    answer = client.put(
        "/api/v1/secrets/DEPLOY_TOKEN", json={"value": VALUE}, headers=bearer(viewer)
    )
    assert answer.status_code == 403
    assert "secrets.write" in answer.json()["detail"]
    assert stored(client, issue("admin")) == []


def test_a_release_manager_lists_secrets_but_cannot_change_them(
    client: Client, issue: Issue
) -> None:
    assert put(client, issue("admin")) == 200
    manager = issue("release-manager")
    assert stored(client, manager) == [("DEPLOY_TOKEN", None)]
    assert put(client, manager) == 403
    assert client.delete("/api/v1/secrets/DEPLOY_TOKEN", headers=bearer(manager)).status_code == 403
    assert client.get("/api/v1/secrets", headers=bearer(issue("viewer"))).status_code == 403


def test_a_project_token_sets_only_its_projects_secrets(client: Client, issue: Issue) -> None:
    scoped = issue("admin", project="shop")
    assert put(client, scoped, query="?project=shop") == 200
    assert put(client, scoped, query="?project=payments") == 403
    assert put(client, scoped) == 403
    assert put(client, issue("admin"), "OTHER", query="?project=payments") == 200
    assert stored(client, scoped) == [("DEPLOY_TOKEN", "shop")]


@pytest.mark.parametrize(
    ("name", "body", "status", "words"),
    [
        ("deploy-token", {"value": VALUE}, 400, "capital letters"),
        ("DEPLOY_TOKEN", {"value": "   "}, 400, "empty"),
        ("DEPLOY_TOKEN", {"value": "x" * (64 * 1024 + 1)}, 400, "64 KiB"),
        ("DEPLOY_TOKEN", {}, 422, "body.value"),
    ],
)
def test_a_bad_secret_name_or_value_is_refused_and_nothing_is_stored(
    client: Client, issue: Issue, name: str, body: dict[str, str], status: int, words: str
) -> None:
    admin = issue()
    answer = client.put(f"/api/v1/secrets/{name}", json=body, headers=bearer(admin))
    assert answer.status_code == status
    assert words in answer.text
    assert stored(client, admin) == []


def test_a_value_with_a_lone_surrogate_is_refused_and_nothing_is_stored(
    client: Client, issue: Issue
) -> None:
    admin = issue()
    body = b'{"value": "caf\\udce9"}'  # valid JSON, but no UTF-8 text
    headers = {**bearer(admin), "content-type": "application/json"}
    answer = client.put("/api/v1/secrets/DEPLOY_TOKEN", content=body, headers=headers)
    assert answer.status_code == 400
    assert "not UTF-8 text" in answer.text
    assert stored(client, admin) == []


def test_deleting_a_secret_that_is_not_stored_is_404(client: Client, issue: Issue) -> None:
    answer = client.delete("/api/v1/secrets/DEPLOY_TOKEN", headers=bearer(issue()))
    assert answer.status_code == 404
    assert "conveyor secret list" in answer.json()["detail"]


def test_a_server_without_the_secret_key_answers_409_naming_the_variable(
    settings: Settings, clock: FrozenClock
) -> None:
    from conveyor.engine.tokens import TokenService

    server = create_app(settings, clock=clock, environ={})
    with serving(server) as url, Client(base_url=url) as client:
        admin = TokenService(db=server.state.conveyor.db, clock=clock).create(
            role="admin", actor="root"
        )
        answer = client.put(
            "/api/v1/secrets/DEPLOY_TOKEN", json={"value": VALUE}, headers=bearer(admin.token)
        )
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "application/problem+json"
        assert "CONVEYOR_SECRET_KEY" in answer.json()["detail"]
        assert "operator" in answer.json()["detail"]
        assert stored(client, admin.token) == []

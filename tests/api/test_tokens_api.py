"""Tokens through the API: shown once, stored as hashes, revocable, every change an Event."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.access.tokens import looks_like_token
from conveyor.core.clock import FrozenClock
from conveyor.engine.tokens import TokenService
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from conveyor.store import events as event_store

from .conftest import Issue, bearer, serving


def test_an_admin_creates_a_token_that_is_answered_once(client: Client, issue: Issue) -> None:
    admin = issue("admin", name="root")
    body = {"role": "developer", "name": "ci@example.com", "project": "shop", "expires": "30d"}
    answer = client.post("/api/v1/tokens", json=body, headers=bearer(admin))
    assert answer.status_code == 201
    made = answer.json()
    assert looks_like_token(made["token"])
    assert (made["role"], made["kind"], made["project"]) == ("developer", "user", "shop")
    assert made["expires_at"] == "2026-01-31T00:00:00Z"
    assert made["created_by"] == "root"
    listed = client.get("/api/v1/tokens", headers=bearer(admin)).json()["tokens"]
    assert made["token"] not in str(listed)
    assert client.get("/api/v1/whoami", headers=bearer(made["token"])).json()["name"] == (
        "ci@example.com"
    )


def test_creating_and_revoking_record_events_with_the_actor_and_never_the_token(
    client: Client, issue: Issue
) -> None:
    admin = issue("admin", name="root")
    made = client.post("/api/v1/tokens", json={"role": "viewer"}, headers=bearer(admin)).json()
    revoked = client.delete(f"/api/v1/tokens/{made['id']}", headers=bearer(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    events = client.get(f"/api/v1/events?subject=token/{made['id']}", headers=bearer(admin)).json()[
        "events"
    ]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("token.created", "root"),
        ("token.revoked", "root"),
    ]
    text = str(events)
    assert made["token"] not in text
    assert hashlib.sha256(made["token"].encode()).hexdigest() not in text
    assert client.get("/api/v1/whoami", headers=bearer(made["token"])).status_code == 401


def test_revoking_an_unknown_token_is_404(client: Client, issue: Issue) -> None:
    answer = client.delete("/api/v1/tokens/999", headers=bearer(issue("admin")))
    assert answer.status_code == 404
    assert "conveyor token list" in answer.json()["detail"]


def test_an_unknown_role_is_422_naming_the_valid_roles(client: Client, issue: Issue) -> None:
    answer = client.post("/api/v1/tokens", json={"role": "root"}, headers=bearer(issue()))
    assert answer.status_code == 422
    doc = answer.json()
    assert doc["errors"][0]["location"] == "body.role"
    for role in ("viewer", "developer", "approver", "release-manager", "admin"):
        assert role in doc["detail"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"role": 3}, "body.role"),
        ({"role": "viewer", "expires": "soon"}, "body.expires"),
        ({"role": "viewer", "name": ""}, "body.name"),
        ({"role": "viewer", "colour": "red"}, "body.colour"),
        ([1, 2], "body"),
    ],
)
def test_a_token_request_of_the_wrong_shape_is_422_naming_the_field(
    client: Client, issue: Issue, body: object, location: str
) -> None:
    admin = issue()
    answer = client.post("/api/v1/tokens", json=body, headers=bearer(admin))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert location in [e["location"] for e in answer.json()["errors"]]
    assert len(client.get("/api/v1/tokens", headers=bearer(admin)).json()["tokens"]) == 1


def test_malformed_json_is_400_and_stores_nothing(client: Client, issue: Issue) -> None:
    admin = issue()
    answer = client.post(
        "/api/v1/tokens",
        content=b'{"role": "admin",',
        headers={**bearer(admin), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    doc = answer.json()
    assert doc["title"] == "Malformed JSON"
    assert {"type", "title", "status", "detail", "instance"} <= set(doc)
    assert len(client.get("/api/v1/tokens", headers=bearer(admin)).json()["tokens"]) == 1


def test_a_body_over_the_upload_limit_is_413_and_stores_nothing(
    settings: Settings, clock: FrozenClock
) -> None:
    small = create_app(replace(settings, max_upload_bytes=100), clock=clock)
    with serving(small) as url:
        admin = TokenService(db=small.state.conveyor.db, clock=clock).create(
            role="admin", actor="root"
        )
        body = {"role": "viewer", "name": "x" * 200}
        answer = httpx.post(f"{url}/api/v1/tokens", json=body, headers=bearer(admin.token))
        assert answer.status_code == 413
        assert "CONVEYOR_MAX_UPLOAD" in answer.json()["detail"]
        assert len(TokenService(db=small.state.conveyor.db).list_tokens()) == 1


def test_a_project_admin_cannot_make_a_token_for_every_project(
    client: Client, issue: Issue
) -> None:
    admin = issue("admin", project="shop")
    answer = client.post("/api/v1/tokens", json={"role": "viewer"}, headers=bearer(admin))
    assert answer.status_code == 403
    ok = client.post(
        "/api/v1/tokens", json={"role": "viewer", "project": "shop"}, headers=bearer(admin)
    )
    assert ok.status_code == 201


def test_the_token_never_reaches_the_database_events_or_logs_in_clear(
    app: FastAPI, client: Client, issue: Issue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = issue()
    made = client.post("/api/v1/tokens", json={"role": "viewer"}, headers=bearer(admin)).json()
    client.get("/api/v1/whoami", headers=bearer(made["token"]))
    client.get("/api/v1/whoami", headers=bearer(made["token"][:-1] + "x"))
    db = app.state.conveyor.db
    with db.read() as tx:
        rows = tx.execute("SELECT * FROM api_tokens")
    stored = str(rows) + str(list(event_store.iter_all(db)))
    logged = caplog.text
    for token in (admin, made["token"]):
        assert token not in stored
        assert token not in logged
        assert token[:-1] not in logged
    assert hashlib.sha256(made["token"].encode()).hexdigest() in stored  # only the hash is kept

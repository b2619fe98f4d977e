"""Projects over HTTP: admins create and delete them, everyone with a token reads them."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.core.clock import FrozenClock
from conveyor.core.secrets import format_key
from conveyor.server.app import create_app
from conveyor.server.settings import Settings
from conveyor.store import events as event_log

from .conftest import Issue, bearer

ENV = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
HOOK_SECRET = "0123456789abcdef-webhook-secret"
PAYMENTS = {
    "name": "payments",
    "repository": "https://github.com/octo-org/payments-api",
    "webhook_secret": HOOK_SECRET,
}


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> FastAPI:
    return create_app(settings, clock=clock, environ=ENV)


def names(client: Client, token: str) -> list[str]:
    found = client.get("/api/v1/projects", headers=bearer(token)).json()["projects"]
    return [p["name"] for p in found]


def test_an_admin_creates_a_project_and_its_webhook_secret_is_never_shown(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    admin = issue("admin", name="ada@example.com")
    answer = client.post("/api/v1/projects", json=PAYMENTS, headers=bearer(admin))
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["webhook_secret"] == "set"
    assert (doc["name"], doc["spec_path"], doc["default_branch"]) == (
        "payments",
        "conveyor.yaml",
        "main",
    )
    shown = client.get("/api/v1/projects/payments", headers=bearer(admin))
    assert shown.json() == doc
    [event] = event_log.for_subject(app.state.conveyor.db, "project/payments")
    assert (event.kind, event.actor) == ("project.created", "ada@example.com")
    for text in (answer.text, shown.text, client.get("/api/v1/events", headers=bearer(admin)).text):
        assert HOOK_SECRET not in text


def test_a_project_without_a_webhook_secret_says_null(client: Client, issue: Issue) -> None:
    body = {"name": "shop", "repository": "git@github.com:octo-org/shop.git"}
    answer = client.post("/api/v1/projects", json=body, headers=bearer(issue()))
    assert answer.status_code == 201
    assert answer.json()["webhook_secret"] is None


def test_projects_are_listed_and_deleted_with_an_event_naming_the_actor(
    client: Client, issue: Issue, app: FastAPI
) -> None:
    admin = issue("admin", name="ada@example.com")
    client.post("/api/v1/projects", json=PAYMENTS, headers=bearer(admin))
    assert names(client, issue("viewer")) == ["payments"]
    gone = client.delete("/api/v1/projects/payments", headers=bearer(admin))
    assert gone.status_code == 200
    assert names(client, admin) == []
    assert client.get("/api/v1/projects/payments", headers=bearer(admin)).status_code == 404
    kinds = [(e.kind, e.actor) for e in event_log.for_subject(app.state.conveyor.db, "project")]
    assert kinds[-1] == ("project.deleted", "ada@example.com")


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("name", "Payments API", "lower-case letters"),
        ("name", "-payments", "starting with a letter or digit"),
        ("repository", "payments", "is not a repository URL"),
    ],
)
def test_a_bad_name_or_repository_is_422_naming_the_rule_and_stores_nothing(
    client: Client, issue: Issue, field: str, value: str, rule: str
) -> None:
    admin = issue()
    answer = client.post("/api/v1/projects", json={**PAYMENTS, field: value}, headers=bearer(admin))
    assert answer.status_code == 422
    doc = answer.json()
    assert doc["errors"][0]["location"] == f"body.{field}"
    assert rule in doc["detail"]
    assert names(client, admin) == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"spec_path": "../etc/conveyor.yaml"}, "inside the repository"),
        ({"default_branch": "a b"}, "not a branch name"),
        ({"webhook_secret": "short"}, "openssl rand -hex 32"),
    ],
)
def test_a_bad_spec_path_branch_or_short_secret_is_400_and_stores_nothing(
    client: Client, issue: Issue, changes: dict[str, str], words: str
) -> None:
    admin = issue()
    answer = client.post("/api/v1/projects", json={**PAYMENTS, **changes}, headers=bearer(admin))
    assert answer.status_code == 400
    assert words in answer.json()["detail"]
    assert names(client, admin) == []


def test_a_second_project_of_the_same_name_or_repository_is_409(
    client: Client, issue: Issue
) -> None:
    admin = bearer(issue())
    assert client.post("/api/v1/projects", json=PAYMENTS, headers=admin).status_code == 201
    again = client.post("/api/v1/projects", json={**PAYMENTS, "name": "other"}, headers=admin)
    assert again.status_code == 409
    assert "already belongs to project payments" in again.json()["detail"]


def test_a_developer_cannot_create_or_delete_a_project(client: Client, issue: Issue) -> None:
    developer = bearer(issue("developer"))
    answer = client.post("/api/v1/projects", json=PAYMENTS, headers=developer)
    assert answer.status_code == 403
    assert "projects.write" in answer.json()["detail"]
    assert names(client, issue()) == []
    assert client.delete("/api/v1/projects/payments", headers=developer).status_code == 403


def test_a_project_token_sees_only_its_own_project(client: Client, issue: Issue) -> None:
    admin = bearer(issue())
    client.post("/api/v1/projects", json=PAYMENTS, headers=admin)
    shop = {"name": "shop", "repository": "https://github.com/octo-org/shop"}
    client.post("/api/v1/projects", json=shop, headers=admin)
    scoped = issue("viewer", project="shop")
    assert names(client, scoped) == ["shop"]
    assert client.get("/api/v1/projects/payments", headers=bearer(scoped)).status_code == 404
    scoped_admin = bearer(issue("admin", project="shop"))
    assert client.delete("/api/v1/projects/payments", headers=scoped_admin).status_code == 403


def test_a_webhook_secret_without_the_servers_key_is_refused_naming_the_variable(
    settings: Settings, clock: FrozenClock
) -> None:
    from conveyor.engine.tokens import TokenService

    from .conftest import serving

    server = create_app(settings, clock=clock, environ={})
    with serving(server) as url, Client(base_url=url) as client:
        admin = TokenService(db=server.state.conveyor.db, clock=clock).create(
            role="admin", actor="root"
        )
        answer = client.post("/api/v1/projects", json=PAYMENTS, headers=bearer(admin.token))
        assert "CONVEYOR_SECRET_KEY" in answer.json()["detail"]
        assert answer.status_code == 409
        assert names(client, admin.token) == []

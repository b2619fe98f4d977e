"""GitHub and GitLab deliveries over HTTP: signed pushes start Runs, anything else starts none."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import Client

from conveyor.access.roles import ANONYMOUS_ACTIONS
from conveyor.core.clock import FrozenClock
from conveyor.core.secrets import format_key
from conveyor.server.app import create_app
from conveyor.server.auth import ROUTE_ACTIONS
from conveyor.server.settings import Settings
from conveyor.store import events as event_log
from conveyor.triggers.model import Trigger
from conveyor.triggers.signature import github_signature

from .conftest import Issue, bearer, serving
from .test_routes_have_permissions import WEBHOOK_PATHS, _operations

FIXTURES = Path(__file__).parents[1] / "unit" / "triggers" / "fixtures"
ENV = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
HOOK_SECRET = "0123456789abcdef-webhook-secret"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
COMMIT = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


class RecordingStarter:
    """A real RunStarter that records each Trigger and hands out run ids."""

    def __init__(self) -> None:
        self.started: list[Trigger] = []

    def start(self, trigger: Trigger) -> int:
        self.started.append(trigger)
        return 40 + len(self.started)


@pytest.fixture
def starter() -> RecordingStarter:
    return RecordingStarter()


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, starter: RecordingStarter) -> FastAPI:
    return create_app(settings, clock=clock, environ=ENV, run_starter=starter)


@pytest.fixture
def projects(client: Client, issue: Issue) -> None:
    admin = bearer(issue("admin"))
    for name, repository in (
        ("payments", "git@github.com:octo-org/payments-api.git"),
        ("diaspora", "https://gitlab.example.com/mike/diaspora"),
    ):
        body = {"name": name, "repository": repository, "webhook_secret": HOOK_SECRET}
        assert client.post("/api/v1/projects", json=body, headers=admin).status_code == 201


def payload(name: str, **changes: Any) -> bytes:
    data = json.loads((FIXTURES / name).read_text()) | changes
    return json.dumps(data).encode()


def github(
    client: Client, body: bytes, *, event: str = "push", secret: str = HOOK_SECRET
) -> httpx.Response:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": DELIVERY,
        "X-Hub-Signature-256": github_signature(secret, body),
        "Content-Type": "application/json",
    }
    return client.post("/api/v1/webhooks/github", content=body, headers=headers)


def gitlab(client: Client, body: bytes, *, token: str, event: str = "Push Hook") -> httpx.Response:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": token, "Idempotency-Key": DELIVERY}
    return client.post("/api/v1/webhooks/gitlab", content=body, headers=headers)


def webhook_kinds(app: FastAPI, project: str = "payments") -> list[str]:
    db = app.state.conveyor.db
    return [e.kind for e in event_log.for_subject(db, f"project/{project}/webhook")]


@pytest.mark.usefixtures("projects")
def test_a_signed_github_push_is_202_and_starts_a_run_of_its_branch_and_commit(
    client: Client, starter: RecordingStarter, app: FastAPI
) -> None:
    answer = github(client, payload("github_push.json"))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run": 41}
    [trigger] = starter.started
    assert (trigger.project, trigger.branch, trigger.commit) == ("payments", "main", COMMIT)
    assert webhook_kinds(app) == ["webhook.received", "webhook.started"]


@pytest.mark.usefixtures("projects")
def test_a_forged_signature_is_401_starts_nothing_and_is_recorded(
    client: Client, starter: RecordingStarter, app: FastAPI
) -> None:
    answer = github(client, payload("github_push.json"), secret="a-guess-of-the-secret")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "bad_signature"
    assert "www-authenticate" not in answer.headers
    assert starter.started == []
    assert webhook_kinds(app) == ["webhook.refused"]


@pytest.mark.usefixtures("projects")
def test_a_replayed_delivery_is_200_duplicate_and_starts_one_run(
    client: Client, starter: RecordingStarter
) -> None:
    body = payload("github_push.json")
    assert github(client, body).status_code == 202
    again = github(client, body)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert DELIVERY in again.json()["reason"]
    assert len(starter.started) == 1


@pytest.mark.usefixtures("projects")
def test_a_gitlab_push_with_a_wrong_token_is_401_and_starts_nothing(
    client: Client, starter: RecordingStarter, app: FastAPI
) -> None:
    answer = gitlab(client, payload("gitlab_push.json"), token="not-the-secret-at-all")
    assert answer.status_code == 401
    assert "X-Gitlab-Token" in answer.json()["detail"]
    assert starter.started == []
    assert webhook_kinds(app, "diaspora") == ["webhook.refused"]


@pytest.mark.usefixtures("projects")
def test_a_gitlab_push_with_the_right_token_starts_a_run(
    client: Client, starter: RecordingStarter
) -> None:
    answer = gitlab(client, payload("gitlab_push.json"), token=HOOK_SECRET)
    assert answer.status_code == 202, answer.text
    assert [(t.project, t.branch) for t in starter.started] == [("diaspora", "main")]


@pytest.mark.usefixtures("projects")
def test_a_tag_push_is_200_ignored_and_starts_nothing(
    client: Client, starter: RecordingStarter
) -> None:
    answer = github(client, payload("github_push.json", ref="refs/tags/v1.2.0"))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"
    assert "tag" in answer.json()["reason"]
    assert starter.started == []


@pytest.mark.usefixtures("projects")
def test_malformed_json_is_400_and_starts_nothing(
    client: Client, starter: RecordingStarter
) -> None:
    answer = github(client, b'{"ref": "refs/heads/main",')
    assert answer.status_code == 400
    assert "not JSON" in answer.json()["detail"]
    assert starter.started == []


@pytest.mark.usefixtures("projects")
def test_a_push_of_a_repository_no_project_has_is_404(
    client: Client, starter: RecordingStarter
) -> None:
    other = {"html_url": "https://github.com/someone/else", "clone_url": "x"}
    answer = github(client, payload("github_push.json", repository=other))
    assert answer.status_code == 404
    assert "github.com/someone/else" in answer.json()["detail"]
    assert "conveyor project create" in answer.json()["detail"]
    assert starter.started == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_upload_limit_is_413_and_starts_nothing(
    settings: Settings, clock: FrozenClock, chunked: bool
) -> None:
    starter = RecordingStarter()
    small = create_app(
        replace(settings, max_upload_bytes=100), clock=clock, environ=ENV, run_starter=starter
    )
    body = payload("github_push.json")
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": DELIVERY}
    with serving(small) as url, Client(base_url=url) as client:
        content: Any = iter([body[:80], body[80:]]) if chunked else body
        answer = client.post("/api/v1/webhooks/github", content=content, headers=headers)
    assert answer.status_code == 413
    assert "CONVEYOR_MAX_UPLOAD" in answer.json()["detail"]
    assert starter.started == []


def test_a_server_without_the_secret_key_answers_409_naming_the_variable(
    settings: Settings, clock: FrozenClock
) -> None:
    server = create_app(settings, clock=clock, environ={}, run_starter=RecordingStarter())
    with serving(server) as url, Client(base_url=url) as client:
        answer = github(client, payload("github_push.json"))
    assert answer.status_code == 409
    assert "CONVEYOR_SECRET_KEY" in answer.json()["detail"]


def test_only_the_two_webhook_routes_are_open_to_callers_without_a_token(
    client: Client,
) -> None:
    open_routes = {name for name, action in ROUTE_ACTIONS.items() if action in ANONYMOUS_ACTIONS}
    assert open_routes == {"github_webhook", "gitlab_webhook"}
    for method, path, concrete in _operations(client):
        if not path.startswith("/api/v1/") or path in WEBHOOK_PATHS:
            continue
        assert client.request(method, concrete).status_code == 401, f"{method} {path} is open"

"""Every API call is authenticated by its bearer token and checked against its role."""

from __future__ import annotations

import pytest
from httpx import Client

from conveyor.core.clock import FrozenClock

from .conftest import Issue, bearer

PROBLEM = "application/problem+json"


def test_whoami_names_the_token_holder_and_role(client: Client, issue: Issue) -> None:
    token = issue("developer", name="ci@example.com", project="shop")
    answer = client.get("/api/v1/whoami", headers=bearer(token))
    assert answer.status_code == 200
    doc = answer.json()
    assert (doc["name"], doc["kind"], doc["role"], doc["project"]) == (
        "ci@example.com",
        "user",
        "developer",
        "shop",
    )
    assert "runs.create" in doc["actions"]
    assert "tokens.create" not in doc["actions"]


def test_a_call_without_a_token_is_401_with_a_bearer_challenge(client: Client) -> None:
    answer = client.get("/api/v1/runs")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["www-authenticate"] == "Bearer"
    doc = answer.json()
    assert doc["status"] == 401
    assert doc["instance"] == "/api/v1/runs"
    assert "Authorization: Bearer" in doc["detail"]
    assert "conveyor token create" in doc["detail"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "cvy_abc"])
def test_a_malformed_authorization_header_is_401(client: Client, header: str) -> None:
    answer = client.get("/api/v1/whoami", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_unknown_revoked_and_expired_tokens_get_the_same_answer(
    client: Client, issue: Issue, clock: FrozenClock
) -> None:
    admin = issue("admin")
    revoked = issue("viewer")
    expiring = issue("viewer", expires="1h")
    listed = client.get("/api/v1/tokens", headers=bearer(admin)).json()["tokens"]
    revoked_id = next(t["id"] for t in listed if t["prefix"] == revoked[:10])
    assert client.delete(f"/api/v1/tokens/{revoked_id}", headers=bearer(admin)).status_code == 200
    clock.advance(3601)
    unknown = "cvy_" + "A" * 43
    answers = [
        client.get("/api/v1/whoami", headers=bearer(t)) for t in (unknown, revoked, expiring)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.json()["detail"] for a in answers}) == 1
    assert all(a.headers["www-authenticate"] == 'Bearer error="invalid_token"' for a in answers)


def test_a_viewer_cannot_create_a_token_and_nothing_is_stored(client: Client, issue: Issue) -> None:
    admin, viewer = issue("admin"), issue("viewer")

    def stored() -> tuple[list[int], list[int]]:
        tokens = client.get("/api/v1/tokens", headers=bearer(admin)).json()["tokens"]
        events = client.get("/api/v1/events", headers=bearer(admin)).json()["events"]
        return [t["id"] for t in tokens], [e["seq"] for e in events]

    before = stored()
    answer = client.post("/api/v1/tokens", json={"role": "admin"}, headers=bearer(viewer))
    assert answer.status_code == 403
    assert answer.headers["content-type"] == PROBLEM
    assert "viewer may not tokens.create" in answer.json()["detail"]
    assert stored() == before


def test_a_runner_token_cannot_call_user_endpoints(client: Client, issue: Issue) -> None:
    runner = issue("runner", name="agent-1")
    assert client.get("/api/v1/whoami", headers=bearer(runner)).json()["kind"] == "runner"
    answer = client.get("/api/v1/runs", headers=bearer(runner))
    assert answer.status_code == 403
    assert "runner may not runs.read" in answer.json()["detail"]


def test_a_project_token_cannot_read_another_projects_runs(client: Client, issue: Issue) -> None:
    token = issue("viewer", project="shop")
    answer = client.get("/api/v1/runs?project=billing", headers=bearer(token))
    assert answer.status_code == 403
    assert "limited to project shop" in answer.json()["detail"]

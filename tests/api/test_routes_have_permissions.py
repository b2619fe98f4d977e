"""Every API route names its permission in the one table, so none ships unguarded.

The routes are taken from the app's own OpenAPI document and called for real:
without a token each must answer 401 (the `authorize` dependency ran), and with
an admin token none may answer "no permission is defined" (it is in the table).
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import Client

from conveyor.access.roles import ACTIONS
from conveyor.server.api import delivery as delivery_api
from conveyor.server.api import promotions as promotions_api
from conveyor.server.api.delivery import project_delivery
from conveyor.server.auth import PUBLIC_ROUTES, ROUTE_ACTIONS

from .conftest import Issue, bearer

# Webhook senders prove themselves by signature, not by a bearer token (test_webhooks_api.py).
WEBHOOK_PATHS = {"/api/v1/webhooks/github", "/api/v1/webhooks/gitlab"}
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", *WEBHOOK_PATHS}
API = "/api/v1"


def _operations(client: Client) -> list[tuple[str, str, str]]:
    doc = client.get("/api/v1/openapi.json").json()
    found = []
    for path, methods in doc["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        found += [(method.upper(), path, concrete) for method in methods]
    return found


def test_every_route_but_probes_demands_a_token(client: Client) -> None:
    for method, path, concrete in _operations(client):
        if path in OPEN_PATHS:
            continue
        answer = client.request(method, concrete)
        assert answer.status_code == 401, f"{method} {path} answered without a token"


def test_every_route_is_in_the_permission_table(client: Client, issue: Issue) -> None:
    admin = issue("admin")
    for method, path, concrete in _operations(client):
        answer = client.request(method, concrete, headers=bearer(admin))
        assert "no permission is defined" not in answer.text, (
            f"{method} {path}: add its route name to ROUTE_ACTIONS in server/auth.py"
        )


def test_the_table_names_only_known_actions() -> None:
    assert set(ROUTE_ACTIONS.values()) <= ACTIONS
    assert not set(ROUTE_ACTIONS) & PUBLIC_ROUTES


def test_every_delivery_route_refuses_a_token_of_another_project(
    client: Client, issue: Issue
) -> None:
    # Releases, promotions, waivers and Deployments belong to the workspace's project:
    # a token limited to another project is refused by each of them, before any work.
    delivery_routes = [
        route
        for module in (delivery_api, promotions_api)
        for route in module.router.routes
        if isinstance(route, APIRoute)
        and any(d.call is project_delivery for d in route.dependant.dependencies)
    ]
    stranger = issue("admin", project="elsewhere")
    assert len(delivery_routes) >= 20

    for route in delivery_routes:
        concrete = API + re.sub(r"\{[^}]+\}", "1", route.path)
        for method in route.methods:
            answer = client.request(method, concrete, headers=bearer(stranger), json={})
            assert answer.status_code == 403, f"{method} {route.path}: {answer.text}"
            assert "limited to project elsewhere" in answer.json()["detail"]


def test_a_token_of_the_workspaces_own_project_is_let_through(
    app: FastAPI, client: Client, issue: Issue
) -> None:
    own = issue("viewer", project=app.state.conveyor.delivery.project)

    answer = client.get("/api/v1/releases", headers=bearer(own))

    assert answer.status_code == 200, answer.text

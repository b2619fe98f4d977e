"""Who calls, and whether they may: one dependency on every API route, one table of actions.

Every route of the API names its action here, by route name. A route that is
missing from the table is refused (fail closed), and a test checks that every
route of the app is in it, so a new endpoint cannot ship without a permission.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from conveyor.access.errors import Forbidden, Unauthenticated
from conveyor.access.roles import ANONYMOUS, ANONYMOUS_ACTIONS, Principal, allowed
from conveyor.server.state import ServerState

# Route name -> the action a caller must be allowed.
ROUTE_ACTIONS: dict[str, str] = {
    "whoami": "self.read",
    "create_token": "tokens.create",
    "list_tokens": "tokens.read",
    "revoke_token": "tokens.revoke",
    "list_runs": "runs.read",
    "get_run": "runs.read",
    "job_log": "logs.read",
    "job_log_stream": "logs.read",
    "create_run": "runs.create",
    "cancel_run": "runs.cancel",
    "retry_run": "runs.retry",
    "get_artifact": "artifacts.read",
    "has_artifact": "artifacts.read",
    "upload_artifact": "artifacts.write",
    "register_agent": "agent.work",
    "claim_job": "agent.work",
    "heartbeat_attempt": "agent.work",
    "append_attempt_log": "agent.work",
    "complete_attempt": "agent.work",
    "hand_back_attempt": "agent.work",
    "cache_hmac_key": "cache.write",
    "get_cache_entry": "cache.read",
    "put_cache_entry": "cache.write",
    "list_events": "events.read",
    "create_project": "projects.write",
    "list_projects": "projects.read",
    "get_project": "projects.read",
    "delete_project": "projects.write",
    "set_secret": "secrets.write",
    "list_secrets": "secrets.read",
    "delete_secret": "secrets.write",
    "github_webhook": "webhook.deliver",
    "gitlab_webhook": "webhook.deliver",
    "create_release": "releases.create",
    "list_releases": "releases.read",
    "get_release": "releases.read",
    "release_notes": "releases.read",
    "release_changelog": "releases.read",
    "export_evidence": "evidence.export",
    "environment_status": "deployments.read",
    "list_deployments": "deployments.read",
    "request_promotion": "promotions.request",
    "list_promotions": "promotions.read",
    "get_promotion": "promotions.read",
    "why_promotion": "promotions.read",
    "get_change_record": "promotions.read",
    "approve_promotion": "promotions.approve",
    "reject_promotion": "promotions.reject",
    "request_waiver": "waivers.request",
    "approve_waiver": "waivers.decide",
    "reject_waiver": "waivers.decide",
    "revoke_waiver": "waivers.decide",
    "list_waivers": "waivers.read",
    "get_waiver": "waivers.read",
}
# Who calls a webhook route: nobody known until the service checks the signature.
WEBHOOK_SENDER = Principal(name="webhook", kind="anonymous", role=ANONYMOUS)
# Routes anyone may call: probes, metrics and the API's own description.
PUBLIC_ROUTES = frozenset(
    {"healthz", "readyz", "metrics", "openapi", "swagger_ui_html", "swagger_ui_redirect"}
)


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.conveyor
    return state


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header; Unauthenticated otherwise."""
    if not header:
        raise Unauthenticated(
            "this endpoint needs an API token: send `Authorization: Bearer <token>` "
            "(`conveyor token create` makes one)"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "the Authorization header must read `Bearer <token>`", reason="malformed"
        )
    return token.strip()


def authorize(request: Request) -> Principal:
    """Authenticate the bearer token and check the route's action; the caller's Principal."""
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    action = ROUTE_ACTIONS.get(name or "")
    if action is None:
        raise Forbidden(f"no permission is defined for this endpoint ({name}); refusing")
    if action in ANONYMOUS_ACTIONS:
        request.state.principal = WEBHOOK_SENDER
        return WEBHOOK_SENDER
    token = bearer_token(request.headers.get("authorization"))
    principal = server_state(request).tokens.authenticate(token)
    request.state.principal = principal
    decision = allowed(principal, action, request.query_params.get("project"))
    if not decision.allowed:
        raise Forbidden(decision.reason)
    return principal


def require_project(principal: Principal, project: str | None) -> None:
    """Forbidden unless `principal` may act on `project` (None: every project)."""
    if principal.project is not None and project != principal.project:
        where = project or "every project"
        raise Forbidden(f"this token is limited to project {principal.project}, not {where}")


Caller = Annotated[Principal, Depends(authorize)]
State = Annotated[ServerState, Depends(server_state)]

"""Roles, the actions they allow, and the one decision: may this Principal do this here.

User roles grow from `viewer` to `admin`; each role's actions are listed
whole rather than inherited, so the table below is all there is to read.
Runner tokens are a kind of their own: they do the work handed to agents and
nothing a person does, and no user role may do agent work.
"""

from __future__ import annotations

from typing import Literal

from conveyor.core.values import frozen

Kind = Literal["user", "runner"]
# Who may call: a token's kind, or no token at all on the routes open to anonymous callers.
CallerKind = Literal["user", "runner", "anonymous"]

VIEWER, DEVELOPER, APPROVER, RELEASE_MANAGER, ADMIN = (
    "viewer",
    "developer",
    "approver",
    "release-manager",
    "admin",
)
RUNNER = "runner"
USER_ROLES = (VIEWER, DEVELOPER, APPROVER, RELEASE_MANAGER, ADMIN)
ROLES = (*USER_ROLES, RUNNER)

# Every action an endpoint may require; the server's route table names one per route.
_READ = (
    "self.read",
    "runs.read",
    "logs.read",
    "artifacts.read",
    "events.read",
    "releases.read",
    "promotions.read",
    "deployments.read",
    "waivers.read",
    "projects.read",
    "cache.read",
)
# Exporting evidence records an Event and signs a tree head, but shows nothing a viewer
# cannot already read (releases, promotions, events); auditors, who only read, need it.
_AUDIT = ("evidence.export",)
# Developers ask for a promotion or a waiver; whether it may proceed is for the gates and
# for someone else's decision (segregation of duties is the promotion service's to enforce).
_DEVELOP = (
    "runs.create",
    "runs.cancel",
    "runs.retry",
    "artifacts.write",
    "promotions.request",
    "promotions.reject",
    "waivers.request",
)
_RELEASE = ("releases.create", "deployments.rollback")
# Rejecting is open to requesters (to withdraw their own) and approvers; the service decides.
_APPROVE = ("promotions.approve", "promotions.reject", "waivers.decide")
# Release managers see which secrets exist (names, never values); only admins set or
# delete one, since a stored secret reaches every job that declares it, deploys included.
_SEE_SECRETS = ("secrets.read",)
_ADMINISTER = (
    "tokens.read",
    "tokens.create",
    "tokens.revoke",
    "secrets.write",
    "projects.write",
)
# Agents fetch sources and the outputs of needed jobs, upload outputs and logs, and share
# the job cache; only they record cache entries, for only they run jobs.
_AGENT = (
    "self.read",
    "agent.work",
    "artifacts.read",
    "artifacts.write",
    "cache.read",
    "cache.write",
)

PERMISSIONS: dict[str, frozenset[str]] = {
    VIEWER: frozenset(_READ + _AUDIT),
    DEVELOPER: frozenset(_READ + _AUDIT + _DEVELOP),
    APPROVER: frozenset(_READ + _AUDIT + _APPROVE),
    RELEASE_MANAGER: frozenset(_READ + _AUDIT + _DEVELOP + _RELEASE + _APPROVE + _SEE_SECRETS),
    ADMIN: frozenset(_READ + _AUDIT + _DEVELOP + _RELEASE + _APPROVE + _SEE_SECRETS + _ADMINISTER),
    RUNNER: frozenset(_AGENT),
}
# Actions taken without a token: a webhook's sender proves itself by the signature (GitHub)
# or token (GitLab) checked against the project's webhook secret, not by a bearer token.
ANONYMOUS_ACTIONS = frozenset({"webhook.deliver"})
# Who calls a route open to anonymous callers.
ANONYMOUS = "anonymous"
ACTIONS = frozenset().union(*PERMISSIONS.values(), ANONYMOUS_ACTIONS)


def kind_of(role: str) -> Kind:
    """The token kind a role belongs to."""
    return "runner" if role == RUNNER else "user"


def check_role(role: str) -> str:
    """`role` when Conveyor knows it; ValueError naming the valid roles otherwise."""
    if role not in PERMISSIONS:
        raise ValueError(f"'{role}' is not a role; use one of {', '.join(ROLES)}")
    return role


@frozen
class Principal:
    """Who calls: the token's name, its kind and role, and the project it is limited to."""

    name: str
    kind: CallerKind
    role: str
    project: str | None = None
    # The stored token's id; agents are bound to the token that registered them.
    token_id: int | None = None


@frozen
class Decision:
    """Whether an action is allowed, and why, in words for the caller."""

    allowed: bool
    reason: str


def allowed(principal: Principal, action: str, project: str | None = None) -> Decision:
    """May `principal` do `action` (on `project`, when the action concerns one)."""
    if action not in ACTIONS:
        # Fail closed: a misspelt action in a route table must never grant anything.
        return Decision(False, f"'{action}' is not an action Conveyor knows")
    if action in ANONYMOUS_ACTIONS or principal.kind == "anonymous":
        # Open routes are taken without a token, and a caller without one may take nothing else.
        if action in ANONYMOUS_ACTIONS and principal.kind == "anonymous":
            return Decision(True, f"anyone may {action}; the sender's signature is checked")
        return Decision(False, f"{action} is not for a {principal.kind} caller")
    if principal.kind != kind_of(principal.role):
        return Decision(False, f"a {principal.kind} token cannot hold the role {principal.role}")
    if action not in PERMISSIONS.get(principal.role, frozenset()):
        holders = [r for r in ROLES if action in PERMISSIONS[r]]
        return Decision(
            False,
            f"the role {principal.role} may not {action}; it needs one of: {', '.join(holders)}",
        )
    if principal.project is not None and project is not None and project != principal.project:
        return Decision(
            False, f"this token is limited to project {principal.project}, not {project}"
        )
    return Decision(True, f"the role {principal.role} may {action}")

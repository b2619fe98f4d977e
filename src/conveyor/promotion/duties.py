"""Segregation of duties: who may approve or reject a Promotion, as reasons (pure).

The service asks `refusal` before it records a decision, and the approvals
Gate asks `discounted` of every recorded one, so an approval that should not
have been recorded (a row copied from another promotion, a role taken away
by the promotion's requirements) still does not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from conveyor.promotion.model import (
    DECIDABLE_STATES,
    Actor,
    Approval,
    Promotion,
    Verdict,
    identity,
)
from conveyor.release.commits import parse_message
from conveyor.release.model import Commit
from conveyor.spec.delivery import Requirements

# Who may reject in an environment that requires no approvals (besides the requester).
DEFAULT_DECIDERS = ("approver", "release-manager")
ROLES_FILE = "conveyor-roles.yaml"


def people_of(commits: Sequence[Commit]) -> frozenset[str]:
    """Everyone who wrote or committed one of `commits`: authors, committers, co-authors.

    Names and emails both count, so an actor named either way is recognised.
    """
    people: set[str] = set()
    for commit in commits:
        people.update((commit.author, commit.email, commit.committer_email))
        for footer in parse_message(commit.message).footers:
            if footer.token.lower() == "co-authored-by":
                name, _, email = footer.value.partition("<")
                people.update((name, email.rstrip(">")))
    return frozenset(identity(person) for person in people if person.strip())


def allowed_roles(requirements: Requirements) -> tuple[str, ...]:
    """The roles that may decide on a promotion into an environment with `requirements`."""
    if requirements.approvals is None:
        return DEFAULT_DECIDERS
    return requirements.approvals.roles


def deciding_role(roles: Iterable[str], allowed: tuple[str, ...]) -> str | None:
    """The first allowed role (in the environment's order) the actor holds, or None."""
    held = set(roles)
    return next((role for role in allowed if role in held), None)


def refusal(
    promotion: Promotion,
    actor: Actor,
    verdict: Verdict,
    *,
    authors: frozenset[str],
    release_digest: str,
) -> str | None:
    """Why `actor` may not `verdict` `promotion`, or None when they may.

    `release_digest` is the identity of the Release as recorded now: an
    approval binds to the one the promotion was requested for.
    """
    closed = _closed(promotion)
    if closed is not None:
        return closed
    if promotion.release_digest != release_digest:
        return (
            f"{promotion.service} {promotion.version} no longer has the identity promotion "
            f"{promotion.id} was requested for; a decision binds to one release identity"
        )
    earlier = _earlier(promotion, actor)
    if earlier is not None:
        return earlier
    if verdict == "approve":
        return _approval_refusal(promotion, actor, authors)
    return _rejection_refusal(promotion, actor)


def _closed(promotion: Promotion) -> str | None:
    if promotion.state in DECIDABLE_STATES:
        return None
    what = {
        "superseded": "was superseded by a newer promotion into the same environment",
        "rejected": "was rejected",
        "deployed": "is deployed already",
        "failed": "failed to deploy",
    }.get(promotion.state, f"is {promotion.state}")
    return f"promotion {promotion.id} {what}; it cannot be approved or rejected any more"


def _earlier(promotion: Promotion, actor: Actor) -> str | None:
    for approval in promotion.approvals:
        if approval.by == actor.identity:
            done = "approved" if approval.verdict == "approve" else "rejected"
            return (
                f"{actor.name} already {done} promotion {promotion.id}; "
                "each person decides once and counts once"
            )
    return None


def _approval_refusal(promotion: Promotion, actor: Actor, authors: frozenset[str]) -> str | None:
    requirements = promotion.basis.requirements
    if requirements.approvals is None:
        return f"environment '{promotion.environment}' requires no approvals; nothing to approve"
    if actor.identity == identity(promotion.requested_by):
        return (
            f"{actor.name} requested promotion {promotion.id}, so cannot approve it; "
            "someone else must (segregation of duties)"
        )
    if actor.identity in authors:
        return (
            f"{actor.name} wrote or committed a change in {promotion.service} "
            f"{promotion.version}, so cannot approve its promotion; someone who did not "
            "must (segregation of duties)"
        )
    allowed = requirements.approvals.roles
    if deciding_role(actor.roles, allowed) is None:
        return _role_refusal(promotion, actor, allowed, "approve")
    return None


def _rejection_refusal(promotion: Promotion, actor: Actor) -> str | None:
    if actor.identity == identity(promotion.requested_by):
        return None  # withdrawing one's own request is always allowed
    allowed = allowed_roles(promotion.basis.requirements)
    if deciding_role(actor.roles, allowed) is None:
        return _role_refusal(promotion, actor, allowed, "reject")
    return None


def _role_refusal(promotion: Promotion, actor: Actor, allowed: tuple[str, ...], verb: str) -> str:
    held = ", ".join(actor.roles) if actor.roles else "no roles"
    return (
        f"{actor.name} has {held}; to {verb} a promotion into '{promotion.environment}' "
        f"takes one of the roles {', '.join(allowed)} (given in {ROLES_FILE})"
    )


def discounted(
    approval: Approval,
    *,
    release_digest: str,
    requester: str,
    authors: frozenset[str],
    allowed: tuple[str, ...],
) -> str | None:
    """Why a recorded approval does not count for a promotion, or None when it does."""
    if approval.release_digest != release_digest:
        return f"{approval.by}'s approval is for another release identity"
    if approval.by == identity(requester):
        return f"{approval.by} requested the promotion"
    if approval.by in authors:
        return f"{approval.by} wrote or committed a change in the release"
    if approval.role not in allowed:
        return f"{approval.by} approved as {approval.role}, which may not approve here"
    return None

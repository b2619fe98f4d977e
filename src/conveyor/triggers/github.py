"""GitHub deliveries: `push`, `pull_request` and `ping`, as Triggers or reasons to ignore them."""

from __future__ import annotations

from conveyor.triggers.model import ZERO_SHA, Ignored, Parsed, Payload, Trigger, branch_of
from conveyor.triggers.project import canonical_repository

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
PROVIDER = "github"
# A new commit on the pull request's head, or the pull request opened again.
_PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "reopened"})


def github_repository(payload: Payload) -> str:
    """The delivery's repository as `host/owner/repo`."""
    url = payload.optional_text("repository.html_url") or payload.text("repository.clone_url")
    return canonical_repository(url)


def parse_github(event: str, delivery: str, payload: Payload) -> Parsed:
    """What one GitHub delivery asks for; a PayloadError names a missing field."""
    if event == "ping":
        return Ignored("ping: the webhook is set up; pings start nothing")
    if event == "push":
        return _push(delivery, payload)
    if event == "pull_request":
        return _pull_request(delivery, payload)
    return Ignored(f"GitHub event '{event}' starts nothing; send push or pull_request")


def _push(delivery: str, payload: Payload) -> Parsed:
    ref = payload.text("ref")
    after = payload.text("after")
    if payload.flag("deleted") or after == ZERO_SHA:
        return Ignored(f"{ref} was deleted; a deletion starts nothing")
    branch = branch_of(ref)
    if branch is None:
        return Ignored(f"{ref} is not a branch; tag pushes start nothing")
    return Trigger(
        provider=PROVIDER,
        repository=github_repository(payload),
        event="push",
        branch=branch,
        commit=after,
        delivery=delivery,
        sender=payload.optional_text("sender.login") or payload.text("pusher.name"),
    )


def _pull_request(delivery: str, payload: Payload) -> Parsed:
    action = payload.text("action")
    if action not in _PULL_REQUEST_ACTIONS:
        return Ignored(f"pull_request action '{action}' starts nothing")
    return Trigger(
        provider=PROVIDER,
        repository=github_repository(payload),
        event="pull_request",
        branch=payload.text("pull_request.head.ref"),
        commit=payload.text("pull_request.head.sha"),
        delivery=delivery,
        sender=payload.text("sender.login"),
        base_branch=payload.text("pull_request.base.ref"),
        pull_request=payload.number("number"),
    )

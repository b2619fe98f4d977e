"""GitLab deliveries: the `Push Hook`, as a Trigger or a reason to ignore it."""

from __future__ import annotations

from conveyor.triggers.model import ZERO_SHA, Headers, Ignored, Parsed, Payload, Trigger, branch_of
from conveyor.triggers.project import canonical_repository

EVENT_HEADER = "X-Gitlab-Event"
PROVIDER = "gitlab"
# The same value on every retry of one event (GitLab 17.4+); the event's UUID before that.
_DELIVERY_HEADERS = ("Idempotency-Key", "X-Gitlab-Event-UUID")


def gitlab_delivery(headers: Headers) -> str | None:
    """The id that is the same on every retry of one delivery, when GitLab sends one."""
    for name in _DELIVERY_HEADERS:
        if value := headers.get(name):
            return value
    return None


def gitlab_repository(payload: Payload) -> str:
    """The delivery's repository as `host/group/.../repo`."""
    url = (
        payload.optional_text("project.web_url")
        or payload.optional_text("repository.homepage")
        or payload.text("project.git_http_url")
    )
    return canonical_repository(url)


def parse_gitlab(event: str, delivery: str, payload: Payload) -> Parsed:
    """What one GitLab delivery asks for; a PayloadError names a missing field."""
    if event == "Tag Push Hook":
        return Ignored("tag pushes start nothing")
    if event != "Push Hook":
        return Ignored(f"GitLab event '{event}' starts nothing; send Push Hook")
    ref = payload.text("ref")
    after = payload.text("after")
    if after == ZERO_SHA:
        return Ignored(f"{ref} was deleted; a deletion starts nothing")
    branch = branch_of(ref)
    if branch is None:
        return Ignored(f"{ref} is not a branch; tag pushes start nothing")
    return Trigger(
        provider=PROVIDER,
        repository=gitlab_repository(payload),
        event="push",
        branch=branch,
        commit=payload.optional_text("checkout_sha") or after,
        delivery=delivery,
        sender=payload.optional_text("user_username") or payload.text("user_name"),
    )

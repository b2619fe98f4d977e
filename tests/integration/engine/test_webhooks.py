"""The Webhook service on SQLite and PostgreSQL, with payloads in GitHub's and GitLab's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.core.clock import FrozenClock
from conveyor.core.secrets import format_key
from conveyor.engine.projects import ProjectService
from conveyor.engine.secrets import SecretService
from conveyor.engine.webhooks import Duplicate, Refused, Started, WebhookService
from conveyor.store import events as event_log
from conveyor.store.db import Database
from conveyor.triggers.model import ZERO_SHA, Ignored, PayloadError, Trigger
from conveyor.triggers.signature import github_signature

from .store_backends import backend_db

__all__ = ["backend_db"]

FIXTURES = Path(__file__).parents[2] / "unit" / "triggers" / "fixtures"
OLD_KEY = {"CONVEYOR_SECRET_KEY": format_key(bytes(range(32)))}
HOOK_SECRET = "0123456789abcdef-webhook-secret"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


class Runs:
    """A real `start_run`: records each Trigger and hands out run ids."""

    def __init__(self, *, fail: bool = False) -> None:
        self.started: list[Trigger] = []
        self.fail = fail

    def __call__(self, trigger: Trigger) -> str:
        if self.fail:
            raise RuntimeError("no runner is registered")
        self.started.append(trigger)
        return str(len(self.started))


def fixture(name: str, **changes: Any) -> bytes:
    data = json.loads((FIXTURES / name).read_text()) | changes
    return json.dumps(data).encode()


def github_headers(
    body: bytes, event: str = "push", *, secret: str = HOOK_SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": DELIVERY,
        "X-Hub-Signature-256": github_signature(secret, body),
        "Content-Type": "application/json",
    }


def make(
    db: Database, runs: Runs, environ: dict[str, str] | None = None, *, secret: bool = True
) -> WebhookService:
    env = OLD_KEY if environ is None else environ
    projects = ProjectService(db=db, clock=FrozenClock(), environ=env)
    if not projects.list_projects():
        hook = HOOK_SECRET if secret else None
        projects.create(
            "payments", "git@github.com:octo-org/payments-api.git", actor="ada", webhook_secret=hook
        )
        projects.create(
            "diaspora", "https://gitlab.example.com/mike/diaspora", actor="ada", webhook_secret=hook
        )
    return WebhookService(
        db=db, clock=FrozenClock(), environ=env, projects=projects, start_run=runs
    )


def kinds(db: Database) -> list[tuple[str, str]]:
    return [(e.kind, e.subject) for e in event_log.for_subject(db, "project/payments/webhook")]


def test_a_signed_push_starts_a_run_of_its_commit_and_is_recorded(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("github_push.json")

    outcome = make(backend_db, runs).github(github_headers(body), body)

    assert isinstance(outcome, Started)
    assert outcome.run_id == "1"
    assert runs.started == [outcome.trigger]
    assert (outcome.trigger.project, outcome.trigger.branch, outcome.trigger.commit) == (
        "payments",
        "main",
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    )
    subject = f"project/payments/webhook/github/{DELIVERY}"
    assert kinds(backend_db) == [("webhook.received", subject), ("webhook.started", subject)]
    received = event_log.for_subject(backend_db, subject)[0]
    assert received.actor == "webhook"
    assert received.data["commit"] == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def test_a_forged_signature_is_refused_starts_nothing_and_is_recorded(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("github_push.json")

    outcome = make(backend_db, runs).github(github_headers(body, secret="guessed-secret!!"), body)

    assert outcome == Refused(
        "the X-Hub-Signature-256 header does not match the body signed with the secret",
        "bad_signature",
    )
    assert runs.started == []
    [event] = event_log.for_subject(backend_db, "project/payments/webhook")
    assert (event.kind, event.data["code"], event.data["delivery"]) == (
        "webhook.refused",
        "bad_signature",
        DELIVERY,
    )
    assert HOOK_SECRET not in json.dumps(event.data)
    assert "commits" not in event.data


def test_a_missing_signature_is_refused(backend_db: Database) -> None:
    body = fixture("github_push.json")
    headers = github_headers(body)
    del headers["X-Hub-Signature-256"]

    outcome = make(backend_db, Runs()).github(headers, body)

    assert outcome == Refused("the delivery has no X-Hub-Signature-256 header", "bad_signature")


def test_a_replayed_delivery_starts_nothing_the_second_time(backend_db: Database) -> None:
    runs = Runs()
    service = make(backend_db, runs)
    body = fixture("github_push.json")

    first = service.github(github_headers(body), body)
    replay = service.github(github_headers(body), body)

    assert isinstance(first, Started)
    assert replay == Duplicate(DELIVERY)
    assert len(runs.started) == 1


def test_a_delivery_whose_run_failed_to_start_is_accepted_when_delivered_again(
    backend_db: Database,
) -> None:
    body = fixture("github_push.json")
    with pytest.raises(RuntimeError):
        make(backend_db, Runs(fail=True)).github(github_headers(body), body)
    runs = Runs()

    again = make(backend_db, runs).github(github_headers(body), body)

    assert isinstance(again, Started)
    assert [k for k, _ in kinds(backend_db)] == [
        "webhook.received",
        "webhook.failed",
        "webhook.received",
        "webhook.started",
    ]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ref": "refs/tags/v1.0.0"}, "refs/tags/v1.0.0 is not a branch; tag pushes start nothing"),
        (
            {"deleted": True, "after": ZERO_SHA},
            "refs/heads/main was deleted; a deletion starts nothing",
        ),
    ],
)
def test_tag_pushes_and_branch_deletions_are_answered_and_start_nothing(
    backend_db: Database, changes: dict[str, Any], reason: str
) -> None:
    runs = Runs()
    body = fixture("github_push.json", **changes)

    outcome = make(backend_db, runs).github(github_headers(body), body)

    assert outcome == Ignored(reason)
    assert runs.started == []
    assert [k for k, _ in kinds(backend_db)] == ["webhook.received"]


def test_a_signed_ping_is_answered_and_starts_nothing(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("github_ping.json")

    outcome = make(backend_db, runs).github(github_headers(body, "ping"), body)

    assert isinstance(outcome, Ignored)
    assert runs.started == []


def test_a_pull_request_starts_a_run_of_its_head(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("github_pull_request.json")

    outcome = make(backend_db, runs).github(github_headers(body, "pull_request"), body)

    assert isinstance(outcome, Started)
    assert (outcome.trigger.event, outcome.trigger.branch, outcome.trigger.base_branch) == (
        "pull_request",
        "feature/refunds",
        "main",
    )


def test_a_repository_without_a_project_is_refused_and_recorded(backend_db: Database) -> None:
    body = fixture("github_push.json", repository={"html_url": "https://github.com/x/unknown"})

    outcome = make(backend_db, Runs()).github(github_headers(body), body)

    assert outcome == Refused(
        "no project has the repository github.com/x/unknown", "unknown_project"
    )
    [event] = event_log.for_subject(backend_db, "webhook/github")
    assert event.kind == "webhook.refused"


def test_a_project_without_a_webhook_secret_trusts_no_delivery(backend_db: Database) -> None:
    body = fixture("github_push.json")

    outcome = make(backend_db, Runs(), secret=False).github(github_headers(body), body)

    assert isinstance(outcome, Refused)
    assert outcome.code == "no_webhook_secret"


def test_a_malformed_payload_is_bad_input_and_records_nothing(backend_db: Database) -> None:
    body = fixture("github_push.json")
    data = json.loads(body)
    del data["after"]
    broken = json.dumps(data).encode()

    with pytest.raises(PayloadError, match="the GitHub payload has no after"):
        make(backend_db, Runs()).github(github_headers(broken), broken)
    with pytest.raises(PayloadError, match="no X-GitHub-Event header"):
        make(backend_db, Runs()).github({"X-GitHub-Delivery": DELIVERY}, body)
    assert kinds(backend_db) == []


def test_a_gitlab_push_with_the_right_token_starts_a_run(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("gitlab_push.json")
    headers = {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": HOOK_SECRET,
        "Idempotency-Key": "k1",
    }
    service = make(backend_db, runs)

    outcome = service.gitlab(headers, body)
    replay = service.gitlab(headers, body)

    assert isinstance(outcome, Started)
    assert (outcome.trigger.project, outcome.trigger.sender) == ("diaspora", "jsmith")
    assert replay == Duplicate("k1")
    assert len(runs.started) == 1


def test_a_gitlab_push_with_a_wrong_token_is_refused(backend_db: Database) -> None:
    runs = Runs()
    body = fixture("gitlab_push.json")
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "not-the-secret"}

    outcome = make(backend_db, runs).gitlab(headers, body)

    assert outcome == Refused(
        "the X-Gitlab-Token header is not the project's webhook secret", "bad_signature"
    )
    assert runs.started == []
    [event] = event_log.for_subject(backend_db, "project/diaspora/webhook")
    assert event.kind == "webhook.refused"
    assert "not-the-secret" not in json.dumps(event.data)


def test_webhook_secrets_still_verify_after_the_key_is_rotated(backend_db: Database) -> None:
    make(backend_db, Runs())
    new = {
        "CONVEYOR_SECRET_KEY": format_key(bytes(range(50, 82))),
        "CONVEYOR_SECRET_KEY_PREVIOUS": OLD_KEY["CONVEYOR_SECRET_KEY"],
    }
    done = SecretService(db=backend_db, clock=FrozenClock(), environ=new).rotate(actor="ops")
    runs = Runs()
    body = fixture("github_push.json")

    only_new = {"CONVEYOR_SECRET_KEY": new["CONVEYOR_SECRET_KEY"]}
    outcome = make(backend_db, runs, only_new).github(github_headers(body), body)

    assert done.webhook_secrets == 2
    assert isinstance(outcome, Started)

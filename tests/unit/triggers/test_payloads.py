"""GitHub and GitLab payloads, in the shapes their documentation gives, read as Triggers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.triggers.github import github_repository, parse_github
from conveyor.triggers.gitlab import gitlab_delivery, gitlab_repository, parse_gitlab
from conveyor.triggers.model import ZERO_SHA, Headers, Ignored, Payload, PayloadError, Trigger

FIXTURES = Path(__file__).parent / "fixtures"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def payload(data: dict[str, Any], source: str = "GitHub") -> Payload:
    return Payload.decode(json.dumps(data).encode(), source=source)


def test_a_github_push_to_a_branch_is_a_trigger_for_its_head_commit() -> None:
    parsed = parse_github("push", DELIVERY, payload(fixture("github_push.json")))

    assert parsed == Trigger(
        provider="github",
        repository="github.com/octo-org/payments-api",
        event="push",
        branch="main",
        commit="0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        delivery=DELIVERY,
        sender="ada",
    )


def test_a_github_tag_push_starts_nothing() -> None:
    data = fixture("github_push.json") | {"ref": "refs/tags/v1.2.0"}

    parsed = parse_github("push", DELIVERY, payload(data))

    assert parsed == Ignored("refs/tags/v1.2.0 is not a branch; tag pushes start nothing")


def test_a_github_branch_deletion_starts_nothing() -> None:
    data = fixture("github_push.json") | {"deleted": True, "after": ZERO_SHA, "head_commit": None}

    parsed = parse_github("push", DELIVERY, payload(data))

    assert isinstance(parsed, Ignored)
    assert "deleted" in parsed.reason


def test_a_new_commit_on_a_pull_request_is_a_trigger_with_its_head_and_base() -> None:
    parsed = parse_github("pull_request", DELIVERY, payload(fixture("github_pull_request.json")))

    assert isinstance(parsed, Trigger)
    assert (parsed.event, parsed.branch, parsed.base_branch) == (
        "pull_request",
        "feature/refunds",
        "main",
    )
    assert parsed.commit == "c3f1e2d4b5a6978877665544332211ffeeddccbb"
    assert (parsed.pull_request, parsed.sender) == (42, "grace")


@pytest.mark.parametrize("action", ["opened", "reopened", "synchronize"])
def test_pull_request_actions_that_change_the_code_start_a_run(action: str) -> None:
    data = fixture("github_pull_request.json") | {"action": action}

    assert isinstance(parse_github("pull_request", DELIVERY, payload(data)), Trigger)


@pytest.mark.parametrize("action", ["closed", "labeled", "edited"])
def test_other_pull_request_actions_start_nothing(action: str) -> None:
    data = fixture("github_pull_request.json") | {"action": action}

    assert parse_github("pull_request", DELIVERY, payload(data)) == Ignored(
        f"pull_request action '{action}' starts nothing"
    )


def test_a_ping_is_answered_and_starts_nothing() -> None:
    parsed = parse_github("ping", DELIVERY, payload(fixture("github_ping.json")))

    assert isinstance(parsed, Ignored)
    assert parsed.reason.startswith("ping")


def test_an_event_conveyor_does_not_handle_starts_nothing_and_says_which() -> None:
    parsed = parse_github("issues", DELIVERY, payload({"action": "opened"}))

    assert parsed == Ignored("GitHub event 'issues' starts nothing; send push or pull_request")


def test_a_push_without_a_ref_is_bad_input_naming_the_field() -> None:
    data = fixture("github_push.json")
    del data["ref"]

    with pytest.raises(PayloadError, match=r"the GitHub payload has no ref \(a non-empty string\)"):
        parse_github("push", DELIVERY, payload(data))


def test_a_pull_request_without_its_head_sha_is_bad_input_naming_the_field() -> None:
    data = fixture("github_pull_request.json")
    del data["pull_request"]["head"]["sha"]

    with pytest.raises(PayloadError, match=r"pull_request\.head\.sha"):
        parse_github("pull_request", DELIVERY, payload(data))


def test_a_body_that_is_not_json_is_bad_input() -> None:
    with pytest.raises(PayloadError, match="the GitHub payload is not JSON"):
        Payload.decode(b"payload=%7B%7D", source="GitHub")


def test_a_json_body_that_is_not_an_object_is_bad_input() -> None:
    with pytest.raises(PayloadError, match="not a JSON object"):
        Payload.decode(b"[1, 2]", source="GitHub")


def test_a_payload_without_a_repository_is_bad_input_naming_the_field() -> None:
    with pytest.raises(PayloadError, match=r"repository\.clone_url"):
        github_repository(payload({"ref": "refs/heads/main"}))


def test_a_gitlab_push_hook_is_a_trigger_for_its_checkout_commit() -> None:
    data = payload(fixture("gitlab_push.json"), "GitLab")

    parsed = parse_gitlab("Push Hook", "idem-1", data)

    assert parsed == Trigger(
        provider="gitlab",
        repository="gitlab.example.com/mike/diaspora",
        event="push",
        branch="main",
        commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        delivery="idem-1",
        sender="jsmith",
    )
    assert gitlab_repository(data) == "gitlab.example.com/mike/diaspora"


def test_a_gitlab_branch_deletion_starts_nothing() -> None:
    data = fixture("gitlab_push.json") | {"after": ZERO_SHA, "checkout_sha": None}

    parsed = parse_gitlab("Push Hook", "", payload(data, "GitLab"))

    assert isinstance(parsed, Ignored)
    assert "deleted" in parsed.reason


def test_gitlab_tag_pushes_and_other_hooks_start_nothing() -> None:
    data = payload(fixture("gitlab_push.json"), "GitLab")

    assert parse_gitlab("Tag Push Hook", "", data) == Ignored("tag pushes start nothing")
    assert isinstance(parse_gitlab("Merge Request Hook", "", data), Ignored)


def test_a_gitlab_push_without_a_ref_is_bad_input_naming_the_field() -> None:
    data = fixture("gitlab_push.json")
    del data["ref"]

    with pytest.raises(PayloadError, match="the GitLab payload has no ref"):
        parse_gitlab("Push Hook", "", payload(data, "GitLab"))


def test_a_gitlab_delivery_is_identified_by_its_idempotency_key_first() -> None:
    both = Headers({"idempotency-key": "k-1", "X-Gitlab-Event-UUID": "e-1"})

    assert gitlab_delivery(both) == "k-1"
    assert gitlab_delivery(Headers({"X-GITLAB-EVENT-UUID": "e-1"})) == "e-1"
    assert gitlab_delivery(Headers({})) is None

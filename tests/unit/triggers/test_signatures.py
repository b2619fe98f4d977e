"""Signatures and tokens: accepted only when they match, compared in constant time."""

from __future__ import annotations

from conveyor.triggers.signature import check_github, check_gitlab, github_signature

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"


def test_githubs_documented_example_signature_is_accepted() -> None:
    # The example GitHub's documentation gives for validating deliveries.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    assert github_signature(SECRET, BODY) == expected
    assert check_github(SECRET, BODY, expected) is None


def test_a_forged_github_signature_is_refused() -> None:
    forged = github_signature("guessed", BODY)

    assert check_github(SECRET, BODY, forged) == (
        "the X-Hub-Signature-256 header does not match the body signed with the secret"
    )


def test_a_signature_of_another_body_is_refused() -> None:
    assert check_github(SECRET, BODY + b" ", github_signature(SECRET, BODY)) is not None


def test_a_missing_or_malformed_github_signature_is_refused_with_the_reason() -> None:
    assert check_github(SECRET, BODY, None) == "the delivery has no X-Hub-Signature-256 header"
    assert check_github(SECRET, BODY, "sha1=abc") == (
        "the X-Hub-Signature-256 header is not of the form sha256=<hex>"
    )


def test_the_gitlab_token_must_be_the_projects_secret() -> None:
    assert check_gitlab(SECRET, SECRET) is None
    assert check_gitlab(SECRET, "wrong") == (
        "the X-Gitlab-Token header is not the project's webhook secret"
    )
    assert check_gitlab(SECRET, None) == "the delivery has no X-Gitlab-Token header"

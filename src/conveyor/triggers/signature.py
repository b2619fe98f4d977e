"""Checking that a delivery comes from the repository's host: compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

GITHUB_SIGNATURE = "X-Hub-Signature-256"
GITLAB_TOKEN = "X-Gitlab-Token"  # noqa: S105 - a header name, not a credential


def github_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_github(secret: str, body: bytes, header: str | None) -> str | None:
    """None when `header` is the HMAC-SHA256 of the raw `body`; else why it is refused."""
    if not header:
        return f"the delivery has no {GITHUB_SIGNATURE} header"
    if not header.startswith("sha256="):
        return f"the {GITHUB_SIGNATURE} header is not of the form sha256=<hex>"
    expected = github_signature(secret, body)
    if not hmac.compare_digest(expected.encode(), header.encode()):
        return f"the {GITHUB_SIGNATURE} header does not match the body signed with the secret"
    return None


def check_gitlab(secret: str, header: str | None) -> str | None:
    """None when `header` is the project's webhook secret; else why it is refused."""
    if not header:
        return f"the delivery has no {GITLAB_TOKEN} header"
    if not hmac.compare_digest(secret.encode(), header.encode()):
        return f"the {GITLAB_TOKEN} header is not the project's webhook secret"
    return None

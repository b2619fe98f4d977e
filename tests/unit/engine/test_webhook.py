"""The webhook client's edges: what URLs it shows, and which it refuses to open."""

from __future__ import annotations

import pytest

from conveyor.engine.webhook import post_json, shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://itsm.example.com/api/changes", "https://itsm.example.com/api/changes"),
        ("https://bot:hunter2@itsm.example.com/hook", "https://itsm.example.com/hook"),
        (
            "https://itsm.example.com:8443/hook?token=abc#x",
            "https://itsm.example.com:8443/hook?...",
        ),
        ("http://[::1]:9000/hook", "http://[::1]:9000/hook"),
        ("http://host:notaport/hook", "http://host/hook"),
    ],
)
def test_a_webhook_is_shown_without_credentials_query_or_fragment(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "itsm.example.com/hook", ""])
def test_only_http_and_https_urls_are_ever_opened(url: str) -> None:
    outcome = post_json(url, b"{}", token="t")

    assert not outcome.delivered
    assert outcome.status is None
    assert outcome.reason == "the webhook is not an http:// or https:// URL"

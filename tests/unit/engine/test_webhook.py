"""The webhook client's edges: what URLs it shows, and which it refuses to open."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

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


class _Hook(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.seen.append((self.path, self.headers["Authorization"]))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.seen.clear()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_user_and_password_in_the_url_are_sent_as_basic_auth_not_in_the_url(hook: int) -> None:
    outcome = post_json(f"http://hookuser:Hook%40Pass@127.0.0.1:{hook}/hook?x=1", b"{}", token=None)

    assert (outcome.delivered, outcome.status) == (True, 201)
    basic = base64.b64encode(b"hookuser:Hook@Pass").decode()
    assert _Hook.seen == [("/hook?x=1", f"Basic {basic}")]


def test_a_bearer_token_goes_instead_of_the_urls_password(hook: int) -> None:
    post_json(f"http://hookuser:HookPass@127.0.0.1:{hook}/hook", b"{}", token="tok")

    assert _Hook.seen == [("/hook", "Bearer tok")]


@pytest.mark.parametrize(
    "url",
    [
        "http://hookuser:HookPassw0rd@127.0.0.1/hook",  # no port: nothing listens on 80
        "http://hookuser:HookPassw0rd@127.0.0.1:notaport/hook",
        "http://127.0.0.1:1/hook?token=HookPassw0rd",
    ],
)
def test_why_a_delivery_failed_never_holds_the_urls_credentials(url: str) -> None:
    outcome = post_json(url, b"{}", token=None, timeout_s=2)

    assert not outcome.delivered
    assert "HookPassw0rd" not in outcome.reason

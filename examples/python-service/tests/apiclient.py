"""A small client that speaks JSON to the service over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

# Talk to the server directly, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Response:
    status: int
    headers: Message
    body: dict[str, Any]

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> Response:
        return self.request("POST", path, json.dumps(body).encode())

    def request(self, method: str, path: str, data: bytes | None = None) -> Response:
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=5) as reply:
                return Response(reply.status, reply.headers, json.loads(reply.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, error.headers, json.loads(error.read()))

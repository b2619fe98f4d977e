"""Per-request plumbing: the request id, the upload limit, latency metrics and the access log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server.errors import problem
from conveyor.server.logs import LOGGER, request_id
from conveyor.server.metrics import Metrics

# A caller's X-Request-ID is kept only when it cannot break a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContext:
    """Gives each request an id (the caller's X-Request-ID or a new one), echoed back."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_upload_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_upload_bytes = max_upload_bytes
        self.log = logging.getLogger(LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        reset = request_id.set(rid)
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            if self._too_large(headers):
                response = problem(
                    413,
                    "too-large",
                    "Request too large",
                    f"the body is larger than this server accepts ({self.max_upload_bytes} "
                    "bytes; CONVEYOR_MAX_UPLOAD raises it)",
                    instance=scope["path"],
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status[0], time.perf_counter() - started)
            request_id.reset(reset)

    def _too_large(self, headers: Headers) -> bool:
        length = headers.get("content-length", "")
        return length.isdigit() and int(length) > self.max_upload_bytes

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = str(scope.get("method", ""))
        self.metrics.http_request_duration.labels(route, method, str(status)).observe(seconds)
        principal = getattr(scope.get("state", {}).get("principal"), "name", None)
        self.log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "principal": principal,
            },
        )


def route_template(scope: Scope) -> str:
    """The matched route as a template (`/api/v1/runs/{run_id}`), so metrics stay bounded."""
    if scope.get("route") is None:
        return "unmatched"
    names = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    segments = str(scope["path"]).split("/")
    return "/".join(f"{{{names[s]}}}" if s in names else s for s in segments)

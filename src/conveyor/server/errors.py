"""The one place errors become HTTP answers: `application/problem+json` (RFC 9457).

Every answer that is not a success carries `type`, `title`, `status`,
`detail` and `instance` (the request path), plus the request id to quote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.access.errors import Forbidden, Unauthenticated
from conveyor.core.errors import (
    ArtifactError,
    Conflict,
    ConveyorError,
    ExecutorError,
    NotFound,
    PolicyViolation,
    SpecError,
    StoreError,
    UsageError,
)
from conveyor.server.logs import LOGGER, request_id

PROBLEM_JSON = "application/problem+json"

# (status, slug, title) per family, most specific first.
_FAMILIES: Sequence[tuple[type[ConveyorError], int, str, str]] = (
    (Unauthenticated, 401, "unauthenticated", "Authentication required"),
    (Forbidden, 403, "forbidden", "Not allowed"),
    (PolicyViolation, 403, "policy-refusal", "Refused by the delivery process"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (SpecError, 422, "invalid-spec", "Invalid specification"),
    (UsageError, 400, "bad-request", "Bad request"),
    (StoreError, 503, "store-unavailable", "The store is unavailable"),
    (ExecutorError, 503, "cannot-start", "The work cannot be started now"),
    (ArtifactError, 500, "artifact-error", "An artifact could not be read"),
)
_HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> JSONResponse:
    """A problem+json answer."""
    body: dict[str, object] = {
        "type": f"urn:conveyor:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    rid = request_id.get()
    if rid is not None:
        body["request_id"] = rid
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def from_conveyor_error(error: ConveyorError, instance: str) -> JSONResponse:
    for family, status, slug, title in _FAMILIES:
        if isinstance(error, family):
            headers = None
            if isinstance(error, Unauthenticated):
                challenge = (
                    "Bearer" if error.reason == "missing" else 'Bearer error="invalid_token"'
                )
                headers = {"WWW-Authenticate": challenge}
                logging.getLogger(LOGGER).info("authentication refused: %s", error.reason)
            return problem(status, slug, title, str(error), instance=instance, headers=headers)
    logging.getLogger(LOGGER).error("unexpected error: %s", error)
    return problem(500, "internal", "Internal error", "the server failed", instance=instance)


def _validation(error: RequestValidationError, instance: str) -> JSONResponse:
    issues = list(error.errors())
    if any(issue.get("type") == "json_invalid" for issue in issues):
        return problem(
            400,
            "malformed-json",
            "Malformed JSON",
            "the request body is not valid JSON; send a JSON object",
            instance=instance,
        )
    found = [
        {"location": ".".join(str(p) for p in issue.get("loc", ())), "message": issue.get("msg")}
        for issue in issues
    ]
    detail = "; ".join(f"{f['location']}: {f['message']}" for f in found)
    return problem(
        422,
        "invalid-request",
        "Invalid request",
        detail,
        instance=instance,
        extra={"errors": found},
    )


def install(app: FastAPI) -> None:
    """Route every error the app can raise through the problem+json forms above."""

    async def conveyor_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConveyorError)
        return from_conveyor_error(exc, request.url.path)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation(exc, request.url.path)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        title = _HTTP_TITLES.get(exc.status_code, "HTTP error")
        detail = str(exc.detail) if exc.status_code != 404 else f"no endpoint {request.url.path}"
        return problem(
            exc.status_code,
            f"http-{exc.status_code}",
            title,
            detail,
            instance=request.url.path,
            headers=exc.headers,
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logging.getLogger(LOGGER).error("unexpected error", exc_info=exc)
        return problem(
            500, "internal", "Internal error", "the server failed", instance=request.url.path
        )

    app.add_exception_handler(ConveyorError, conveyor_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)

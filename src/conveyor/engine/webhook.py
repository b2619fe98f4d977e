"""Posting one JSON document to a webhook, with the standard library and a timeout.

The outcome is a value: a webhook that is down, slow or refusing is something
to record and report, never a reason to stop the work that sent it. A bearer
token goes in an unredirected header, and redirects are not followed at all,
so the token only ever reaches the host that was configured; a user and
password in the URL go the same way, as HTTP basic auth. Nothing here writes
a credential anywhere, not even in why a delivery failed; callers show URLs
through `shown_url`.
"""

from __future__ import annotations

import base64
import http.client
import urllib.error
import urllib.request
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from conveyor import __version__
from conveyor.core.masking import Masker
from conveyor.core.values import frozen

TIMEOUT_S = 10.0
_READ_LIMIT = 64 * 1024


@frozen
class Delivery:
    """Whether the webhook took the document, its HTTP status when it answered, and why."""

    delivered: bool
    status: int | None
    reason: str


def shown_url(url: str) -> str:
    """The URL as it may be shown and recorded: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    hidden = "?..." if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{hidden}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Treats a redirect as the answer it is: an error naming its status."""

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


def post_json(
    url: str, body: bytes, *, token: str | None, timeout_s: float = TIMEOUT_S
) -> Delivery:
    """POST `body` as application/json to `url`; a 2xx answer means delivered."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Delivery(False, None, "the webhook is not an http:// or https:// URL")
    # Whatever goes wrong is said without the URL's credentials (an error's text may quote it).
    masker = Masker(
        [parts.netloc.rpartition("@")[0], parts.query, *(p for p in (token,) if p)]
        + [unquote(p) for p in (parts.username, parts.password) if p]
    )
    # A user and password in the URL are sent as HTTP basic auth (unless a token is
    # given), as curl does: urllib would read them as part of the host.
    netloc = parts.netloc.rpartition("@")[2]
    headers = {"Content-Type": "application/json", "User-Agent": f"conveyor/{__version__}"}
    # Only http and https get here (checked above), never file: or others.
    request = urllib.request.Request(  # noqa: S310
        urlunsplit(parts._replace(netloc=netloc, fragment="")),
        data=body,
        method="POST",
        headers=headers,
    )
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    elif parts.username is not None:
        user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic = base64.b64encode(user.encode()).decode()
        request.add_unredirected_header("Authorization", f"Basic {basic}")
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(_READ_LIMIT)
            return Delivery(True, response.status, f"HTTP {response.status} {response.reason}")
    except urllib.error.HTTPError as exc:
        with exc:
            return Delivery(False, exc.code, masker.mask(f"HTTP {exc.code} {exc.reason}"))
    except urllib.error.URLError as exc:
        return Delivery(False, None, masker.mask(_why(exc.reason, timeout_s)))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Delivery(False, None, masker.mask(_why(exc, timeout_s)))


def _why(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__

"""Where the server's commands (`token`, `project`, `secret`) go: its API, or this host's database.

With CONVEYOR_SERVER and CONVEYOR_TOKEN set, a command calls the server's API
as the token's holder, and problem+json answers become Conveyor's errors, so
exit codes match the embedded commands. Without CONVEYOR_SERVER it works
straight on the database (CONVEYOR_DATABASE_URL, or the workspace's), as on
the server's host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

    from conveyor.store.db import Database


def remote() -> Remote | None:
    """The server named by CONVEYOR_SERVER, with CONVEYOR_TOKEN; None without a server."""
    from conveyor.core.errors import UsageError

    server = os.environ.get("CONVEYOR_SERVER", "").strip()
    if not server:
        return None
    token = os.environ.get("CONVEYOR_TOKEN", "").strip()
    if not token:
        raise UsageError(
            f"CONVEYOR_SERVER is set ({server}) but CONVEYOR_TOKEN is not; set it to a token "
            "(`conveyor token create`), or unset CONVEYOR_SERVER to work on this host's database"
        )
    return Remote(server.rstrip("/"), token)


def segment(text: str) -> str:
    """`text` quoted as one segment of a URL path."""
    return quote(text, safe="")


class Remote:
    """Calls to the server's API; problem+json answers become Conveyor's errors."""

    def __init__(self, server: str, token: str) -> None:
        self.server = server
        self._token = token

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        params: dict[str, str] | None = None,
    ) -> dict[str, object]:
        """The JSON answer of `method path`; the Conveyor error a failure means."""
        import httpx

        from conveyor.core.errors import ConveyorError

        try:
            answer = httpx.request(
                method,
                self.server + path,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise ConveyorError(f"cannot reach the server at {self.server}: {exc}") from None
        if answer.is_success:
            doc: dict[str, object] = answer.json()
            return doc
        raise error_for(answer.status_code, _detail(answer), self.server)


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail") or answer.reason_phrase)
    except ValueError:
        return answer.reason_phrase


def error_for(status: int, detail: str, server: str) -> Exception:
    """The Conveyor error an HTTP status means, so exit codes match the embedded commands."""
    from conveyor.access.errors import Forbidden, Unauthenticated
    from conveyor.core.errors import Conflict, ConveyorError, NotFound, UsageError

    if status == 401:
        return Unauthenticated(f"{server} refused CONVEYOR_TOKEN: {detail}")
    if status == 403:
        return Forbidden(detail)
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    if 400 <= status < 500:
        return UsageError(detail)
    return ConveyorError(f"{server} failed ({status}): {detail}")


def database_url() -> str:
    """CONVEYOR_DATABASE_URL, else the workspace's database, else the server's default."""
    from pathlib import Path

    from conveyor.core.errors import UsageError
    from conveyor.engine.workspace import discover
    from conveyor.server.settings import from_environ

    if os.environ.get("CONVEYOR_DATABASE_URL"):
        return os.environ["CONVEYOR_DATABASE_URL"]
    try:
        return discover().database_url
    except UsageError:
        return from_environ(os.environ, cwd=Path.cwd()).db_url


@contextmanager
def host_database() -> Iterator[Database]:
    """This host's database (`database_url`), refused unless it is migrated; closed after."""
    from conveyor.server.state import require_migrated
    from conveyor.store.db import open_database

    db = open_database(database_url())
    try:
        require_migrated(db)
        yield db
    finally:
        db.close()


def actor() -> str:
    """Who acts when a command works straight on the database: the local user."""
    from pathlib import Path

    from conveyor.engine.service import actor_name

    return actor_name(Path.cwd(), os.environ)

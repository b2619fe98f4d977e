"""Which control plane a command talks to: a server when CONVEYOR_SERVER names one, else local."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.core.errors import UsageError

if TYPE_CHECKING:
    from conveyor.control.base import ControlPlane


def open_control_plane(
    file: Path | None, *, environ: Mapping[str, str] = os.environ
) -> ControlPlane:
    """The remote control plane when CONVEYOR_SERVER is set (with CONVEYOR_TOKEN), else embedded.

    `file` finds the local workspace; against a server it is not used, since
    the server's own workspace decides and the token's owner acts.
    """
    server = environ.get("CONVEYOR_SERVER", "").strip()
    if server:
        return _remote(server, environ.get("CONVEYOR_TOKEN", "").strip())
    # Imported here so that the embedded path never loads httpx, and the remote one never
    # opens a local store.
    from conveyor.control.embedded import EmbeddedControlPlane
    from conveyor.engine.workspace import discover
    from conveyor.executors.local import LocalExecutor

    return EmbeddedControlPlane(discover(file), executor=LocalExecutor())


def _remote(server: str, token: str) -> ControlPlane:
    if not server.startswith(("http://", "https://")):
        raise UsageError(
            f"CONVEYOR_SERVER: '{server[:200]}' is not a server URL; write "
            "http(s)://HOST:PORT, or unset it to use this machine's workspace"
        )
    if not token:
        raise UsageError(
            f"CONVEYOR_SERVER is set ({server}) but CONVEYOR_TOKEN is not; set CONVEYOR_TOKEN "
            "to a token from `conveyor token create`, or unset CONVEYOR_SERVER to use this "
            "machine's workspace"
        )
    from conveyor.control.remote import RemoteControlPlane

    return RemoteControlPlane(server, token)

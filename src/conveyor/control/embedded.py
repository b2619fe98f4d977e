"""The control plane on the local store: no server, direct calls."""

from __future__ import annotations

from conveyor.engine.service import RunService


class EmbeddedControlPlane(RunService):
    """`RunService` is already the whole embedded control plane for runs."""

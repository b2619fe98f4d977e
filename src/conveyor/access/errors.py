"""Refusals of access, in the error families the CLI and the API already map."""

from __future__ import annotations

from conveyor.core.errors import PolicyViolation, UsageError


class Unauthenticated(UsageError):
    """No token, or one that is unknown, revoked or expired: the caller must bring a valid one."""

    def __init__(self, message: str, *, reason: str = "missing") -> None:
        super().__init__(message)
        # What exactly failed (missing, malformed, unknown, revoked, expired), for logs only.
        self.reason = reason


class Forbidden(PolicyViolation):
    """A known caller whose role or project does not allow the action."""

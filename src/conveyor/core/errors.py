"""The error tree: one root, one base per family.

Expected outcomes (a failed job, a blocked promotion) are values, not
exceptions. Exceptions are for bad input, missing things and faults. Exactly
one place maps them to CLI exit codes (`conveyor.cli.errors`).
"""

from __future__ import annotations

from conveyor.core.values import frozen


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""


class UsageError(ConveyorError):
    """A command was called with arguments that cannot work."""


@frozen
class Location:
    """A position in a user's file, 1-based, as editors show it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@frozen
class SpecIssue:
    """One problem in a user's file: where, what was found, what to do."""

    location: Location
    message: str
    hint: str | None = None

    def render(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(ConveyorError):
    """A user's file is invalid; carries every issue found, not only the first."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = sorted(
            issues, key=lambda i: (i.location.file, i.location.line, i.location.column)
        )
        super().__init__("\n".join(issue.render() for issue in self.issues))


class NotFound(ConveyorError):
    """A named thing (run, job, artifact) does not exist."""


class Conflict(ConveyorError):
    """The request contradicts what is already recorded."""


class PolicyViolation(ConveyorError):
    """A request the delivery process refuses (segregation of duties, a closed promotion)."""


class StoreError(ConveyorError):
    """The store cannot be read or written (an infrastructure fault)."""


class ExecutorError(ConveyorError):
    """A job could not be started or supervised (an infrastructure fault)."""


class ArtifactError(ConveyorError):
    """An artifact cannot be stored or read back intact."""


class IntegrityError(ConveyorError):
    """Recorded history does not verify: an Event or a signed tree head was altered."""

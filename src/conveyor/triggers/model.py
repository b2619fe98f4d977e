"""What a webhook delivery means: a Trigger that starts a Run, or the reason it starts nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping

from conveyor.core.errors import UsageError
from conveyor.core.values import frozen

ZERO_SHA = "0" * 40


class PayloadError(UsageError):
    """A webhook's body is not JSON or lacks a field the event needs."""


@frozen
class Trigger:
    """A push or pull request that should start a Run of one commit."""

    provider: str
    repository: str
    event: str
    branch: str
    commit: str
    delivery: str
    sender: str
    base_branch: str | None = None
    pull_request: int | None = None
    # Set by the control plane once it has found the project that owns `repository`.
    project: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "repository": self.repository,
            "event": self.event,
            "branch": self.branch,
            "commit": self.commit,
            "delivery": self.delivery,
            "sender": self.sender,
            "base_branch": self.base_branch,
            "pull_request": self.pull_request,
            "project": self.project,
        }


@frozen
class Ignored:
    """A delivery understood and answered that starts nothing (a tag, a deletion, a ping)."""

    reason: str


Parsed = Trigger | Ignored


class Headers:
    """HTTP headers looked up without regard to case, as HTTP defines them."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._values = {name.lower(): value for name, value in headers.items()}

    def get(self, name: str) -> str | None:
        value = self._values.get(name.lower())
        return value.strip() if value is not None else None


class Payload:
    """A decoded JSON body whose fields are read by dotted path, naming any that is missing."""

    def __init__(self, data: Mapping[str, object], *, source: str) -> None:
        self._data = data
        self._source = source

    @classmethod
    def decode(cls, body: bytes, *, source: str) -> Payload:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"the {source} payload is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError(f"the {source} payload is not a JSON object")
        return cls(data, source=source)

    def find(self, path: str) -> object:
        """The value at `path` (`a.b.c`), or None when any step is absent."""
        value: object = self._data
        for step in path.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
        return value

    def text(self, path: str) -> str:
        """The non-empty string at `path`; a PayloadError naming `path` otherwise."""
        value = self.find(path)
        if not isinstance(value, str) or not value:
            raise PayloadError(f"the {self._source} payload has no {path} (a non-empty string)")
        return value

    def optional_text(self, path: str) -> str | None:
        value = self.find(path)
        return value if isinstance(value, str) and value else None

    def number(self, path: str) -> int:
        value = self.find(path)
        if not isinstance(value, int) or isinstance(value, bool):
            raise PayloadError(f"the {self._source} payload has no {path} (a number)")
        return value

    def flag(self, path: str) -> bool:
        return self.find(path) is True


def branch_of(ref: str) -> str | None:
    """The branch a `refs/heads/...` ref names; None for tags and other refs."""
    prefix = "refs/heads/"
    return ref.removeprefix(prefix) if ref.startswith(prefix) and len(ref) > len(prefix) else None

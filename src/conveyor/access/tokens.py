"""API tokens as values: their recognizable form, their hash, their lifetime.

A token is `cvy_` followed by 32 random bytes in URL-safe base64. The prefix
lets secret scanners (and people) recognize a leaked Conveyor token.

Only the SHA-256 of a token is stored. A slow password hash (bcrypt, argon2)
exists to make guessing low-entropy secrets expensive; a token carries 256
bits of randomness, so there is nothing to guess, and a fast hash keeps each
authenticated request cheap while a stolen table still reveals no token.
"""

from __future__ import annotations

import base64
import hashlib
import re

from conveyor.access.roles import Kind
from conveyor.core.durations import EXAMPLES, parse_duration
from conveyor.core.values import frozen

TOKEN_PREFIX = "cvy_"  # noqa: S105 - the public prefix, not a secret
TOKEN_BYTES = 32
# The prefix, then 43 characters of unpadded URL-safe base64 (32 bytes).
_TOKEN_FORM = re.compile(r"cvy_[A-Za-z0-9_-]{43}")
# How much of a token is kept in clear to tell tokens apart in listings.
SHOWN_CHARS = 10


def format_token(random: bytes) -> str:
    """The token text for `random` (32 bytes the caller drew from a secure source)."""
    if len(random) != TOKEN_BYTES:
        raise ValueError(f"a token needs {TOKEN_BYTES} random bytes, got {len(random)}")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(random).decode("ascii").rstrip("=")


def looks_like_token(text: str) -> bool:
    """Whether `text` has the form of a Conveyor API token."""
    return _TOKEN_FORM.fullmatch(text) is not None


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored for `token` (see the module docstring for why SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def shown_prefix(token: str) -> str:
    """The few leading characters kept in clear, e.g. `cvy_Ab12Cd`."""
    return token[:SHOWN_CHARS]


def parse_expiry(text: str | None, *, now: float) -> float | None:
    """The expiry time for `--expires 30d` from `now`; None for `never` or nothing."""
    if text is None or text.strip().lower() in ("", "never"):
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        if "is not a duration;" not in str(exc):  # a specific reason: units, or too long
            raise ValueError(f"--expires {exc}") from None
        raise ValueError(
            f"'{text}' is not a lifetime; write a duration like '30d' or {EXAMPLES}, or 'never'"
        ) from None
    if seconds <= 0:
        raise ValueError(f"'{text}' is not a lifetime; a token must live longer than 0s")
    return now + seconds


@frozen
class TokenRecord:
    """A stored token as anyone may see it: never the token, never its hash."""

    id: int
    name: str
    kind: Kind
    role: str
    project: str | None
    prefix: str
    created_by: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def refusal(self, now: float) -> str | None:
        """Why this token may not be used at `now`, or None when it may."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return None


@frozen
class IssuedToken:
    """A token just created: the only time its text exists outside its holder."""

    token: str
    record: TokenRecord

"""Content digests in the one form Conveyor shows: `sha256:<hex>`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import BinaryIO

PREFIX = "sha256:"
CHUNK = 1 << 20


def of_bytes(data: bytes) -> str:
    return PREFIX + hashlib.sha256(data).hexdigest()


def of_text(text: str) -> str:
    return of_bytes(text.encode())


def of_json(value: object) -> str:
    """Digest of a JSON value in canonical form (sorted keys, no spaces)."""
    return of_bytes(canonical_json(value))


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def of_stream(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        h.update(chunk)
    return PREFIX + h.hexdigest()


def of_file(path: Path) -> str:
    with open(path, "rb") as f:
        return of_stream(f)


def is_digest(value: str) -> bool:
    hexpart = value.removeprefix(PREFIX)
    return (
        value.startswith(PREFIX)
        and len(hexpart) == 64
        and all(c in "0123456789abcdef" for c in hexpart)
    )


def short(digest: str, length: int = 12) -> str:
    """`sha256:0123456789ab` for display."""
    return digest[: len(PREFIX) + length]

"""Masking secret values as `***` wherever text leaves a job: logs, events, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"


class Masker:
    """Replaces every known secret value in text.

    A multi-line secret is also masked line by line, because logs are
    processed a line at a time.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if not secret.strip():
                continue
            values.add(secret)
            values.update(line for line in secret.splitlines() if line.strip())
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

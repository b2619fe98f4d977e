"""Masking secret values as `***` wherever text leaves a job: logs, events, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MASK = "***"


class Masker:
    """Replaces every known secret value in text.

    Each secret is masked in the forms text may carry it in: whole; trimmed
    of white space (word splitting, and many tools, trim what they print);
    line by line when it has several lines, because logs are processed a
    line at a time; as a log decodes it when it is not UTF-8; and as
    Python's `repr` escapes it, as in an error's text. Where two secrets
    overlap in the text, all that either covers is masked.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {form for secret in secrets for form in _forms(secret)}
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self._values))) if self._values else None
        self._overlap = _any_overlap(self._values)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        if not self._overlap:
            return self._pattern.sub(MASK, text)
        return self._mask_spans(text)

    def _mask_spans(self, text: str) -> str:
        """Mask the union of every secret's occurrences (one pass would skip an overlap)."""
        spans: list[tuple[int, int]] = []
        for value in self._values:
            at = text.find(value)
            while at >= 0:
                spans.append((at, at + len(value)))
                at = text.find(value, at + 1)
        if not spans:
            return text
        spans.sort()
        parts, done = [], 0
        start, end = spans[0]
        for next_start, next_end in spans[1:]:
            if next_start < end:  # overlapping: one masked stretch
                end = max(end, next_end)
                continue
            parts += [text[done:start], MASK]
            done, (start, end) = end, (next_start, next_end)
        parts += [text[done:start], MASK, text[end:]]
        return "".join(parts)


def _forms(secret: str) -> Iterator[str]:
    decoded = secret
    if any("\udc80" <= char <= "\udcff" for char in secret):  # not UTF-8: escaped bytes
        decoded = secret.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        yield decoded
    for value in (secret, decoded):
        for form in (value, *value.splitlines()):
            if form.strip():  # blank lines of a secret are no secret
                yield form
                yield form.strip()
                yield repr(form)[1:-1]


def _any_overlap(values: list[str]) -> bool:
    """Whether one value's end can be a value's start (itself included), so that text may
    hold two occurrences that share characters, which one pass of a regex would not both
    mask (`abab` in `ababab`; `hunter2` and `2-top-hunter2` in `hunter2-top-hunter2`)."""
    for first in values:
        for second in values:
            if any(first.endswith(second[:size]) for size in range(1, len(second))):
                return True
    return False

"""Durations as users write them: `30s`, `10m`, `1h30m`, `500ms`."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
EXAMPLES = "'30s', '10m', '1h30m' or '500ms'"
_LONGEST_S = 100 * 365 * 86400.0  # past this a duration is a typo (and floats show noise)


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError with the expected form when it is not a duration."""
    raw = text.strip()
    pos = 0
    total = 0.0
    last_unit = float("inf")
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        unit = _UNITS[match.group(2)]
        if unit >= last_unit:
            raise ValueError(
                f"'{text}' is not a duration: write each unit once, the largest first, like '1h30m'"
            )
        last_unit = unit
        total += float(match.group(1)) * unit
        pos = match.end()
    if not raw or pos != len(raw):
        raise ValueError(f"'{text}' is not a duration; write a number and a unit, like {EXAMPLES}")
    if total > _LONGEST_S:
        raise ValueError(f"'{text}' is longer than 100 years; write a shorter duration")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: `850ms`, `4.2s`, `3m07s`, `1h02m`."""
    if round(seconds * 1000) < 1000:
        return f"{seconds * 1000:.0f}ms"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def parse_size(text: str) -> int:
    """Bytes in `2GB`, `500MB`, `10KiB`, `123`; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(
            f"'{text}' is not a size; write a number and a unit, like '2GB' or '500MB'"
        )
    number = float(match.group(1))
    unit = (match.group(2) or "B").upper()
    base = 1024 if "I" in unit else 1000
    power = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[0]]
    return int(number * base**power)

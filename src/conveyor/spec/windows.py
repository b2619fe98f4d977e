"""Change windows: the hours in which a promotion may start.

Written like `Mon-Thu 08:00-17:00 Europe/Berlin`.

A window is a set of weekdays, a start and an end time of day, and a time
zone. An end before the start spans midnight (`Fri 22:00-02:00 UTC` is open
from Friday 22:00 to Saturday 02:00). Times are local to the zone, so a
window keeps its hours across daylight-saving changes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.core.values import frozen

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EXAMPLE = "'Mon-Thu 08:00-17:00 Europe/Berlin'"
_FORM = re.compile(r"^\s*(\S+)\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2})\s+(\S+)\s*$")


@frozen
class Window:
    """Weekdays (0 = Monday), local start and end, and the zone they are in."""

    days: frozenset[int]
    start: time
    end: time
    zone: str
    text: str

    def is_open(self, instant: datetime) -> bool:
        """Whether `instant` (timezone-aware) falls inside the window."""
        local = instant.astimezone(ZoneInfo(self.zone))
        now = local.time()
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        # Spans midnight: open from `start` on a listed day to `end` the next day.
        if now >= self.start:
            return local.weekday() in self.days
        return now < self.end and (local.weekday() - 1) % 7 in self.days

    def next_open(self, instant: datetime) -> datetime:
        """The first moment at or after `instant` when the window is open (UTC)."""
        if self.is_open(instant):
            return instant.astimezone(UTC)
        zone = ZoneInfo(self.zone)
        local = instant.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, tzinfo=zone)
            if opens >= local:
                return opens.astimezone(UTC)
        raise AssertionError("a window with at least one day opens within a week")


def parse_window(text: str) -> Window:
    """The Window `text` describes; ValueError saying the expected form otherwise."""
    match = _FORM.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a window; write days, hours and a time zone, like {EXAMPLE}"
        )
    days_text, start_text, end_text, zone = match.groups()
    days = _days(days_text)
    start, end = _clock(start_text), _clock(end_text)
    if start == end:
        raise ValueError(f"the window '{text}' starts and ends at {start_text}; it is never open")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{zone}' is not a time zone; use an IANA name like Europe/Berlin or UTC"
        ) from None
    return Window(frozenset(days), start, end, zone, text.strip())


def _days(text: str) -> set[int]:
    if text in ("*", "daily"):
        return set(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        a, b = _day(first), _day(last or first)
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)]
        days.update(span)
    return days


def _day(text: str) -> int:
    name = text.strip()[:3].title()
    if name not in DAYS or len(text.strip()) not in (3, len(_full(name))):
        raise ValueError(f"'{text}' is not a day; use {', '.join(DAYS)} (like Mon-Fri or Sat,Sun)")
    return DAYS.index(name)


def _full(abbreviation: str) -> str:
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    return names[DAYS.index(abbreviation)]


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(23, 59, 59, 999999)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"'{text}' is not a time of day; write HH:MM from 00:00 to 24:00")
    return time(hours, minutes)

"""Change windows: parsing the forms people write, and knowing when one is open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.spec.windows import parse_window

BERLIN_WORKDAYS = parse_window("Mon-Thu 08:00-17:00 Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Mon-Fri 09:00-17:00 UTC", {0, 1, 2, 3, 4}),
        ("Sat,Sun 10:00-12:00 UTC", {5, 6}),
        ("Friday 10:00-11:00 UTC", {4}),
        ("Fri-Mon 10:00-11:00 UTC", {4, 5, 6, 0}),
        ("daily 00:00-24:00 UTC", set(range(7))),
    ],
)
def test_days_are_read_as_ranges_lists_and_full_names(text: str, days: set[int]) -> None:
    assert parse_window(text).days == frozenset(days)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("whenever", "is not a window"),
        ("Mo 08:00-17:00 UTC", "'Mo' is not a day"),
        ("Mon 25:00-26:00 UTC", "'25:00' is not a time of day"),
        ("Mon 08:00-17:00 Mars/Base", "'Mars/Base' is not a time zone"),
        ("Mon 08:00-08:00 UTC", "it is never open"),
    ],
)
def test_bad_windows_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_window(text)


def test_a_window_is_open_on_its_days_between_its_hours_in_its_zone() -> None:
    thursday_morning = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)  # 08:30 in Berlin
    friday_morning = datetime(2026, 11, 27, 7, 30, tzinfo=UTC)
    thursday_evening = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # 17:00 in Berlin
    assert BERLIN_WORKDAYS.is_open(thursday_morning)
    assert not BERLIN_WORKDAYS.is_open(friday_morning)
    assert not BERLIN_WORKDAYS.is_open(thursday_evening)


def test_a_window_keeps_its_local_hours_across_daylight_saving() -> None:
    summer = datetime(2026, 7, 2, 6, 30, tzinfo=UTC)  # 08:30 CEST
    winter = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)  # 08:30 CET
    assert BERLIN_WORKDAYS.is_open(summer)
    assert BERLIN_WORKDAYS.is_open(winter)
    assert not BERLIN_WORKDAYS.is_open(datetime(2026, 12, 3, 6, 30, tzinfo=UTC))


def test_a_window_that_spans_midnight_belongs_to_the_day_it_starts() -> None:
    late = parse_window("Fri 22:00-02:00 UTC")
    assert late.is_open(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # Friday night
    assert late.is_open(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))  # Saturday, early
    assert not late.is_open(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))  # Friday, early
    assert not late.is_open(datetime(2026, 11, 28, 23, 0, tzinfo=UTC))  # Saturday night


def test_the_next_opening_after_a_closed_friday_is_monday_morning() -> None:
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert BERLIN_WORKDAYS.next_open(friday) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_the_next_opening_is_open_and_not_earlier_than_asked(naive: datetime) -> None:
    instant = naive.replace(tzinfo=UTC)
    opens = BERLIN_WORKDAYS.next_open(instant)
    assert opens >= instant
    assert BERLIN_WORKDAYS.is_open(opens)

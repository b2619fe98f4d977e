"""Durations and sizes as users write them, and durations as Conveyor shows them."""

from __future__ import annotations

import pytest

from conveyor.core.durations import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172_800.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("1h2m3s", 3723.0),
        ("  45s  ", 45.0),
        ("1m500ms", 60.5),
    ],
)
def test_a_duration_is_read_in_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10m10m", "30s1m", "1s1h", "5ms5s"])
def test_a_unit_written_twice_or_out_of_order_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="each unit once, the largest first, like '1h30m'"):
        parse_duration(text)


def test_a_duration_too_long_to_mean_anything_is_refused() -> None:
    with pytest.raises(ValueError, match="is longer than 100 years"):
        parse_duration("99999999999999999999999h")


@pytest.mark.parametrize(
    "text", ["", "   ", "30", "s", "-5s", "5 s", "1m 30s", "30S", "5sec", "x30s", "30sx", "1.s"]
)
def test_a_malformed_duration_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_duration(text)
    message = str(caught.value)
    assert message.startswith(f"'{text}' is not a duration")
    assert "'30s', '10m', '1h30m' or '500ms'" in message


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0ms"),
        (0.85, "850ms"),
        (4.2, "4.2s"),
        (59.0, "59.0s"),
        (60.0, "1m00s"),
        (187.0, "3m07s"),
        (3599.0, "59m59s"),
        (3600.0, "1h00m"),
        (3720.0, "1h02m"),
        (90_000.0, "25h00m"),
    ],
)
def test_a_duration_is_shown_in_its_shortest_useful_form(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("123", 123),
        ("0", 0),
        ("10B", 10),
        ("2GB", 2_000_000_000),
        ("500MB", 500_000_000),
        ("1KB", 1000),
        ("10KiB", 10_240),
        ("1MiB", 1 << 20),
        ("1GiB", 1 << 30),
        ("1TB", 10**12),
        ("2gb", 2_000_000_000),
        ("2 GB", 2_000_000_000),
        ("1.5G", 1_500_000_000),
        ("10Ki", 10_240),
        (" 7 ", 7),
    ],
)
def test_a_size_is_read_in_bytes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "-1GB", "2PB", "2 G B", "two GB", "1e3", "2XB"])
def test_a_malformed_size_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size") as caught:
        parse_size(text)
    assert str(caught.value) == (
        f"'{text}' is not a size; write a number and a unit, like '2GB' or '500MB'"
    )

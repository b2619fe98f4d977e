"""Content digests in the one form Conveyor shows, and timestamps as ISO 8601."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from conveyor.core import digest
from conveyor.core.clock import FrozenClock, SystemClock, iso

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_digest_is_sha256_with_its_prefix() -> None:
    assert digest.of_bytes(b"") == f"sha256:{EMPTY_SHA256}"
    assert digest.of_bytes(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_text_is_digested_as_utf8() -> None:
    assert digest.of_text("é") == digest.of_bytes("é".encode())


def test_json_is_digested_in_canonical_form() -> None:
    assert digest.canonical_json({"b": [1, 2], "a": "é"}) == '{"a":"é","b":[1,2]}'.encode()
    assert digest.of_json({"b": 1, "a": 2}) == digest.of_json({"a": 2, "b": 1})
    assert digest.of_json({"a": 1}) != digest.of_json({"a": "1"})


def test_a_stream_and_a_file_digest_like_their_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # larger than one read chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert digest.of_stream(io.BytesIO(data)) == digest.of_bytes(data)
    assert digest.of_file(path) == digest.of_bytes(data)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (f"sha256:{EMPTY_SHA256}", True),
        (EMPTY_SHA256, False),
        (f"sha256:{EMPTY_SHA256.upper()}", False),
        (f"sha256:{EMPTY_SHA256[:-1]}", False),
        (f"sha256:{EMPTY_SHA256}0", False),
        (f"sha512:{EMPTY_SHA256}", False),
        (f"sha256:{EMPTY_SHA256[:-1]}g", False),
        ("sha256:", False),
        ("", False),
    ],
)
def test_only_a_prefixed_lowercase_sha256_is_a_digest(value: str, valid: bool) -> None:
    assert digest.is_digest(value) is valid


def test_a_short_digest_keeps_the_prefix_and_twelve_hex_digits() -> None:
    full = digest.of_bytes(b"")
    assert digest.short(full) == f"sha256:{EMPTY_SHA256[:12]}"
    assert digest.short(full, 4) == f"sha256:{EMPTY_SHA256[:4]}"


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00Z"),
        (1_767_225_600.0, "2026-01-01T00:00:00Z"),
        (1_767_225_600.999, "2026-01-01T00:00:00Z"),
        (1_767_225_661.5, "2026-01-01T00:01:01Z"),
    ],
)
def test_a_timestamp_is_shown_as_utc_iso_8601_to_the_second(ts: float, text: str) -> None:
    assert iso(ts) == text


def test_no_timestamp_is_shown_as_none() -> None:
    assert iso(None) is None


def test_a_frozen_clock_moves_only_when_advanced() -> None:
    clock = FrozenClock(start=100.0)
    assert (clock.now(), clock.monotonic()) == (100.0, 0.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (102.5, 2.5)


def test_the_system_clock_moves_forward() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert clock.now() > 1_700_000_000

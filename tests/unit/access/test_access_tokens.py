"""API tokens as values: a recognizable form, a SHA-256 hash, lifetimes as users write them."""

from __future__ import annotations

import hashlib

import pytest

from conveyor.access.tokens import format_token, hash_token, looks_like_token, parse_expiry


def test_a_token_is_cvy_and_43_url_safe_characters() -> None:
    token = format_token(bytes(range(32)))
    assert token.startswith("cvy_")
    assert len(token) == 47
    assert looks_like_token(token)
    assert not looks_like_token(token + "x")
    assert not looks_like_token("ghp_" + token[4:])


def test_a_token_needs_exactly_32_random_bytes() -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        format_token(b"short")


def test_the_stored_hash_is_the_sha256_hex_of_the_token() -> None:
    token = format_token(b"\x01" * 32)
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_expiry_is_now_plus_the_lifetime_and_never_means_none() -> None:
    assert parse_expiry("30d", now=100.0) == 100.0 + 30 * 86400
    assert parse_expiry("never", now=100.0) is None
    assert parse_expiry(None, now=100.0) is None


@pytest.mark.parametrize("text", ["soon", "0s", "-1d"])
def test_a_lifetime_that_is_not_a_positive_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a lifetime"):
        parse_expiry(text, now=0.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("40000d", "longer than 100 years"), ("12h30m45s1d", "each unit once, the largest first")],
)
def test_a_lifetime_refused_for_a_reason_of_its_own_says_it(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"--expires '{text}' .*{reason}"):
        parse_expiry(text, now=0.0)

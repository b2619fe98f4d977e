"""Signed tree heads: the exact bytes signed, and every way a head can stop verifying."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conveyor.audit.chain import format_ts
from conveyor.audit.merkle import root
from conveyor.audit.tree_head import (
    FORMAT,
    TreeHead,
    decode_signature,
    key_id,
    sign,
    signature_problem,
)
from conveyor.core.clock import FrozenClock

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = root([b"sha256:" + b"0" * 64, b"sha256:" + b"1" * 64])


def _head(size: int = 2) -> TreeHead:
    clock = FrozenClock()
    clock.advance(1.25)
    return sign(KEY, size=size, root=ROOT, timestamp=format_ts(clock.now()))


def test_a_key_id_is_the_sha256_of_the_raw_public_key() -> None:
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    assert key_id(KEY.public_key()) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_a_head_signs_the_canonical_json_of_its_fields_and_format() -> None:
    head = _head()

    expected = json.dumps(
        {
            "format": FORMAT,
            "key_id": key_id(KEY.public_key()),
            "root": ROOT.hex(),
            "size": 2,
            "timestamp": "2026-01-01T00:00:01.250000Z",
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    assert head.message() == expected
    assert head.timestamp == "2026-01-01T00:00:01.250000Z"
    KEY.public_key().verify(head.signature, expected)  # raises when it does not hold


def test_a_genuine_head_verifies_under_the_key_that_signed_it() -> None:
    assert signature_problem(_head(), KEY.public_key()) is None


def test_signing_is_deterministic_for_the_same_key_and_fields() -> None:
    assert _head() == _head()
    assert _head(size=2).signature != _head(size=3).signature


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 3),
        ("root", bytes(32)),
        ("timestamp", "2026-01-01T00:00:02.250000Z"),
        ("signature", bytes(64)),
        ("signature", b""),
    ],
)
def test_a_head_with_any_field_changed_no_longer_verifies(field: str, value: object) -> None:
    changed = dataclasses.replace(_head(), **{field: value})

    assert signature_problem(changed, KEY.public_key()) == (
        f"its signature does not verify under key {key_id(KEY.public_key())}"
    )


def test_a_head_naming_another_key_is_refused_before_its_signature_is_checked() -> None:
    head = _head()

    problem = signature_problem(head, OTHER_KEY.public_key())

    assert problem == (
        f"it names key {key_id(KEY.public_key())}, "
        f"not this workspace's key {key_id(OTHER_KEY.public_key())} (workspaces that share "
        "one store must sign with one key: give each the same CONVEYOR_AUDIT_KEY)"
    )


def test_a_head_re_signed_by_another_key_under_this_keys_id_is_refused() -> None:
    forged = sign(OTHER_KEY, size=2, root=ROOT, timestamp=_head().timestamp)
    forged = dataclasses.replace(forged, key_id=key_id(KEY.public_key()))

    problem = signature_problem(forged, KEY.public_key())

    assert problem is not None
    assert "does not verify" in problem


def test_a_head_prints_its_root_in_hex_and_signature_in_base64() -> None:
    head = _head()

    printed = head.to_json()

    assert printed["root"] == ROOT.hex()
    assert decode_signature(str(printed["signature"])) == head.signature
    assert printed["key_id"] == head.key_id
    assert (printed["size"], printed["timestamp"]) == (2, head.timestamp)


def test_a_signature_that_is_not_base64_decodes_to_nothing() -> None:
    assert decode_signature("not base64!") == b""

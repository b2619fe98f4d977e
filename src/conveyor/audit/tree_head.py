"""Signed tree heads: an Ed25519 signature over the Merkle root of the log's first `size` Events.

A head is signed over the canonical JSON (sorted keys, no spaces, UTF-8) of

    {"format": "conveyor.tree-head/v1", "key_id": ..., "root": <hex>,
     "size": <int>, "timestamp": <ISO 8601 UTC>}

The `format` member is not stored: it keeps a signature over a tree head from
being accepted as a signature over anything else the same key may sign later.
The key id is `sha256:` of the raw 32-byte public key.

`cryptography` is imported only where a key is used: it costs tens of
milliseconds, and most commands never sign.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from conveyor.core.digest import canonical_json, of_bytes
from conveyor.core.values import frozen

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "conveyor.tree-head/v1"


@frozen
class TreeHead:
    """The root of the log's first `size` Events, when and by which key it was signed."""

    size: int
    root: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        """The exact bytes the signature covers."""
        return signed_message(
            size=self.size, root=self.root, timestamp=self.timestamp, key_id=self.key_id
        )

    def to_json(self) -> dict[str, object]:
        """The head as printed and exported: root in hex, signature in base64."""
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": encode_signature(self.signature),
        }


def signed_message(*, size: int, root: bytes, timestamp: str, key_id: str) -> bytes:
    """The canonical JSON a tree head's signature covers."""
    body = {
        "format": FORMAT,
        "size": size,
        "root": root.hex(),
        "timestamp": timestamp,
        "key_id": key_id,
    }
    return canonical_json(body)


def key_id(public_key: Ed25519PublicKey) -> str:
    """`sha256:` of the raw public key: names a key without showing it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return of_bytes(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(private_key: Ed25519PrivateKey, *, size: int, root: bytes, timestamp: str) -> TreeHead:
    """A tree head for the first `size` Events with `root`, signed now by `private_key`."""
    kid = key_id(private_key.public_key())
    message = signed_message(size=size, root=root, timestamp=timestamp, key_id=kid)
    return TreeHead(size, root, timestamp, kid, private_key.sign(message))


def signature_problem(head: TreeHead, public_key: Ed25519PublicKey) -> str | None:
    """Why `head`'s signature does not hold under `public_key`; None when it does."""
    from cryptography.exceptions import InvalidSignature

    expected = key_id(public_key)
    if head.key_id != expected:
        return (
            f"it names key {head.key_id}, not this workspace's key {expected} (workspaces "
            "that share one store must sign with one key: give each the same "
            "CONVEYOR_AUDIT_KEY)"
        )
    try:
        public_key.verify(head.signature, head.message())
    except InvalidSignature:
        return f"its signature does not verify under key {expected}"
    return None


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode()


def decode_signature(text: str) -> bytes:
    """The signature bytes of base64 `text`; empty (never valid) when it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return b""

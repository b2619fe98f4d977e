"""Secrets as values: the rule for their names, the key format and its id (no I/O).

A secret key is 32 random bytes written as URL-safe base64 (44 characters,
as `conveyor secret keygen` prints). Its id is a short fingerprint that names
it in stored ciphertexts and messages without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from conveyor.core.errors import UsageError

KEY_VARIABLE = "CONVEYOR_SECRET_KEY"
PREVIOUS_KEY_VARIABLE = "CONVEYOR_SECRET_KEY_PREVIOUS"
KEY_BYTES = 32
MAX_VALUE_BYTES = 64 * 1024

_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_RESERVED_PREFIX = "CONVEYOR_"


def check_secret_name(name: str) -> str:
    """`name` when it can be an environment variable's name; else a UsageError with the rule."""
    if not _NAME.fullmatch(name) or len(name) > 255:
        suggestion = re.sub(r"[^A-Z0-9_]", "_", name.upper()) or "MY_TOKEN"
        if suggestion[0].isdigit():
            suggestion = "_" + suggestion
        raise UsageError(
            f"secret name '{name}' is not an environment variable name: use capital letters, "
            f"digits and underscores, not starting with a digit (for example {suggestion[:255]})"
        )
    if name.startswith(_RESERVED_PREFIX):
        raise UsageError(
            f"secret name '{name}' starts with {_RESERVED_PREFIX}, which is reserved for "
            "Conveyor's own variables; choose another name"
        )
    return name


def check_secret_value(name: str, value: str) -> str:
    """`value` when it can be stored: UTF-8 text, not only whitespace, at most 64 KiB."""
    if not value.strip():
        raise UsageError(
            f"the value for secret {name} is empty; pipe the value on stdin "
            "or type it at the prompt"
        )
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # bytes that are not UTF-8 (on stdin), or a lone surrogate
        raise UsageError(
            f"the value for secret {name} is not UTF-8 text; "
            "store a binary value encoded (base64, say) and decode it in the job"
        ) from None
    if size > MAX_VALUE_BYTES:
        raise UsageError(
            f"the value for secret {name} is larger than {MAX_VALUE_BYTES // 1024} KiB; "
            "store a file as an artifact, and its decryption key as the secret"
        )
    return value


def parse_key(text: str, *, variable: str = KEY_VARIABLE) -> bytes:
    """The key bytes in `text`; a UsageError naming `variable` (never its value) when malformed."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise UsageError(
            f"{variable} is not a secret key: expected {KEY_BYTES} bytes in URL-safe base64 "
            "(44 characters); make one with `conveyor secret keygen`"
        )
    return key


def format_key(key: bytes) -> str:
    """`key` as it is written in CONVEYOR_SECRET_KEY."""
    return base64.urlsafe_b64encode(key).decode()


def key_id(key: bytes) -> str:
    """A 16-hex-digit fingerprint of `key`; it cannot be turned back into the key."""
    return hashlib.sha256(b"conveyor.secret-key-id/v1\0" + key).hexdigest()[:16]

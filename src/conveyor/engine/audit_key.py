"""The workspace's audit signing key: Ed25519, PEM (PKCS8), made on first use.

The key lives at `<state_dir>/audit/signing.key` (mode 0600) with its public
half beside it in `signing.pub`; `CONVEYOR_AUDIT_KEY` names another private
key file instead, which must exist. Two processes making the first key at
once end up with one: each writes a complete file under a private name and
hard-links it into place, which fails for all but the first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.core.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

KEY_VARIABLE = "CONVEYOR_AUDIT_KEY"


def default_key_path(state_dir: Path) -> Path:
    return state_dir / "audit" / "signing.key"


def key_path(state_dir: Path, environ: Mapping[str, str]) -> Path:
    """Where the signing key is: CONVEYOR_AUDIT_KEY, else the state directory's."""
    chosen = environ.get(KEY_VARIABLE)
    return Path(chosen).expanduser() if chosen else default_key_path(state_dir)


def signing_key(state_dir: Path, environ: Mapping[str, str]) -> Ed25519PrivateKey:
    """The key to sign with, made (with its public half) on first use at the default path."""
    path = key_path(state_dir, environ)
    if path == default_key_path(state_dir) and not path.exists():
        _create(path)
    key = _load(path)
    if path == default_key_path(state_dir):
        _write_public_half(key, path.with_suffix(".pub"))
    return key


def public_key(state_dir: Path, environ: Mapping[str, str]) -> Ed25519PublicKey | None:
    """The public half of the signing key; None when the default key was never made."""
    path = key_path(state_dir, environ)
    if path == default_key_path(state_dir) and not path.exists():
        return None
    return _load(path).public_key()


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def preload() -> None:
    """Import what loading and using a key takes (20 ms), ahead of the first use."""
    import cryptography.hazmat.primitives.asymmetric.ed25519
    import cryptography.hazmat.primitives.serialization  # noqa: F401


def _load(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"no audit signing key at {path}; point {KEY_VARIABLE} at an Ed25519 private key "
            "in PEM, or unset it to use the workspace's own key"
        ) from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def _create(path: Path) -> None:
    """Make a new key at `path` unless another process makes one first."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    _write_private(staged, pem)
    try:
        os.link(staged, path)
    except FileExistsError:
        pass  # another process made the key first; everyone uses that one
    finally:
        staged.unlink()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_public_half(key: Ed25519PrivateKey, path: Path) -> None:
    """Keep `signing.pub` equal to the key's public half, replacing it whole."""
    pem = public_pem(key.public_key())
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == pem:
            return
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    staged.write_text(pem)
    staged.replace(path)

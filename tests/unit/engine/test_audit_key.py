"""The workspace's audit signing key: made once, private, shared by racing processes."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from conveyor.core.errors import UsageError
from conveyor.engine.audit_key import KEY_VARIABLE, public_key, public_pem, signing_key


def _raw(key: object) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined,no-any-return]


def test_the_key_is_made_on_first_use_and_then_reused(tmp_path: Path) -> None:
    assert public_key(tmp_path, {}) is None

    first = signing_key(tmp_path, {})

    assert _raw(signing_key(tmp_path, {}).public_key()) == _raw(first.public_key())
    assert _raw(public_key(tmp_path, {})) == _raw(first.public_key())
    assert sorted(p.name for p in (tmp_path / "audit").iterdir()) == ["signing.key", "signing.pub"]


def test_the_private_key_is_pkcs8_pem_readable_by_its_owner_only(tmp_path: Path) -> None:
    signing_key(tmp_path, {})
    path = tmp_path / "audit" / "signing.key"

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")


def test_the_public_key_file_holds_the_keys_public_half_and_is_restored_when_removed(
    tmp_path: Path,
) -> None:
    key = signing_key(tmp_path, {})
    pub = tmp_path / "audit" / "signing.pub"

    assert _raw(load_pem_public_key(pub.read_bytes())) == _raw(key.public_key())
    pub.unlink()
    signing_key(tmp_path, {})
    assert pub.read_text() == public_pem(key.public_key())


def test_each_workspace_has_its_own_key(tmp_path: Path) -> None:
    a = signing_key(tmp_path / "a", {})
    b = signing_key(tmp_path / "b", {})

    assert _raw(a.public_key()) != _raw(b.public_key())


def test_the_variable_points_to_another_key_and_nothing_is_made(tmp_path: Path) -> None:
    elsewhere = tmp_path / "team.key"
    made = signing_key(tmp_path / "other", {})
    elsewhere.write_bytes(made.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    state = tmp_path / "state"

    found = signing_key(state, {KEY_VARIABLE: str(elsewhere)})

    assert _raw(found.public_key()) == _raw(made.public_key())
    assert not state.exists()


def test_a_variable_naming_no_file_is_bad_input_not_a_new_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"

    with pytest.raises(
        UsageError, match=f"no audit signing key at {missing}; point {KEY_VARIABLE}"
    ):
        signing_key(tmp_path, {KEY_VARIABLE: str(missing)})
    assert not missing.exists()


def test_a_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    rsa = tmp_path / "rsa.key"
    rsa.write_bytes(
        generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )

    with pytest.raises(UsageError, match="is not an unencrypted PEM private key"):
        signing_key(tmp_path, {KEY_VARIABLE: str(garbage)})
    with pytest.raises(UsageError, match="not an Ed25519 private key"):
        signing_key(tmp_path, {KEY_VARIABLE: str(rsa)})


RACER = """
import sys, time
from pathlib import Path
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from conveyor.engine.audit_key import signing_key

go, state = Path(sys.argv[1]), Path(sys.argv[2])
Path(f"{go}.ready.{sys.argv[3]}").touch()
while not go.exists():
    time.sleep(0.001)
key = signing_key(state, {})
print(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())
"""


def test_processes_making_the_first_key_at_once_all_end_up_with_the_same_one(
    tmp_path: Path,
) -> None:
    go, state = tmp_path / "go", tmp_path / "state"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), str(state), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.monotonic() + 30
    while not all(Path(f"{go}.ready.{n}").exists() for n in range(4)):
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.005)
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]

    assert [p.returncode for p in procs] == [0] * 4, results
    assert len({out.strip() for out, _ in results}) == 1
    assert sorted(p.name for p in (state / "audit").iterdir()) == ["signing.key", "signing.pub"]

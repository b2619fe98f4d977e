"""Secrets encrypted at rest: the cipher, the Secret service, and the source Runs read them from.

Values are sealed with AES-256-GCM (`cryptography`'s AEAD). The associated
data names what a ciphertext is for (`project` and `name` of a secret, or a
project's webhook secret), so a ciphertext copied under another name fails to
decrypt instead of handing one secret's value to another job. A sealed value
is written `v1:<key id>:<base64 of nonce and ciphertext>`; the key id says
which key opens it, so `CONVEYOR_SECRET_KEY` can be replaced while
`CONVEYOR_SECRET_KEY_PREVIOUS` still opens older values until `rotate`
re-seals them. `cryptography` is imported only when a value is sealed or
opened: a Run whose secrets all come from the environment never pays for it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping, Sequence

from conveyor.audit.chain import NewEvent
from conveyor.core.clock import Clock
from conveyor.core.errors import IntegrityError, NotFound, UsageError
from conveyor.core.secrets import (
    KEY_VARIABLE,
    PREVIOUS_KEY_VARIABLE,
    check_secret_name,
    check_secret_value,
    key_id,
    parse_key,
)
from conveyor.core.values import frozen
from conveyor.store import events as event_log
from conveyor.store import projects as project_store
from conveyor.store import secrets as secret_store
from conveyor.store.db import Database
from conveyor.store.secrets import GLOBAL, SecretRow
from conveyor.triggers.project import check_project_name

_VERSION = "v1"
_NONCE_BYTES = 12


@frozen
class Sealed:
    """A value encrypted for storage, and the id of the key that sealed it."""

    text: str
    key_id: str


class Cipher:
    """Seals under the current key; opens with the current or the previous one."""

    def __init__(self, current: bytes, previous: bytes | None = None) -> None:
        self.key_id = key_id(current)
        self._keys = {self.key_id: current}
        if previous is not None:
            self._keys.setdefault(key_id(previous), previous)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, needed_for: str) -> Cipher:
        """The cipher of CONVEYOR_SECRET_KEY (and _PREVIOUS); a UsageError saying what to set."""
        current = environ.get(KEY_VARIABLE, "").strip()
        if not current:
            raise UsageError(
                f"{KEY_VARIABLE} is not set, and {needed_for} needs it: set it to the key the "
                "secrets are stored with, or make a new key with `conveyor secret keygen`"
            )
        previous = environ.get(PREVIOUS_KEY_VARIABLE, "").strip()
        return cls(
            parse_key(current),
            parse_key(previous, variable=PREVIOUS_KEY_VARIABLE) if previous else None,
        )

    def seal(self, plaintext: str, *, context: str) -> Sealed:
        """`plaintext` encrypted under the current key, bound to `context`."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE_BYTES)
        body = AESGCM(self._keys[self.key_id]).encrypt(nonce, plaintext.encode(), context.encode())
        encoded = base64.urlsafe_b64encode(nonce + body).decode()
        return Sealed(f"{_VERSION}:{self.key_id}:{encoded}", self.key_id)

    def open(self, sealed: str, *, context: str, what: str) -> str:
        """The plaintext of `sealed`; names `what` and the key id when it cannot be opened."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        kid, data = _split(sealed, what)
        key = self._keys.get(kid)
        if key is None:
            raise UsageError(
                f"{what} was encrypted with key {kid}, but {self._known()}; set "
                f"{KEY_VARIABLE} (or {PREVIOUS_KEY_VARIABLE} while rotating) to the key "
                f"with id {kid}"
            )
        try:
            plain = AESGCM(key).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise IntegrityError(
                f"{what} does not decrypt with key {kid}: its stored ciphertext was altered "
                "or copied from another secret; set it again"
            ) from None
        return plain.decode()

    def _known(self) -> str:
        ids = list(self._keys)
        text = f"{KEY_VARIABLE} is key {ids[0]}"
        if len(ids) > 1:
            text += f" and {PREVIOUS_KEY_VARIABLE} is key {ids[1]}"
        return text


def sealed_key_id(sealed: str) -> str:
    """The id of the key that sealed `sealed` ('' when it is not a sealed value)."""
    parts = sealed.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == _VERSION else ""


def _split(sealed: str, what: str) -> tuple[str, bytes]:
    parts = sealed.split(":", 2)
    malformed = IntegrityError(f"{what} is not stored as a sealed value; set it again")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise malformed
    try:
        data = base64.urlsafe_b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise malformed from None
    if len(data) <= _NONCE_BYTES:
        raise IntegrityError(f"{what} is stored truncated; set it again")
    return parts[1], data


def secret_context(project: str, name: str) -> str:
    """The associated data that binds a secret's ciphertext to its project and name."""
    return f"conveyor.secret/v1\0{project}\0{name}"


def describe(project: str, name: str) -> str:
    return f"secret {name}" + (f" of project {project}" if project else "")


def secret_subject(project: str, name: str) -> str:
    return f"project/{project}/secret/{name}" if project else f"secret/{name}"


@frozen
class SecretInfo:
    """What may be shown about a stored secret: never its value nor its ciphertext."""

    project: str
    name: str
    key_id: str
    created_at: float
    updated_at: float
    updated_by: str

    @classmethod
    def of(cls, row: SecretRow) -> SecretInfo:
        return cls(
            row.project, row.name, row.key_id, row.created_at, row.updated_at, row.updated_by
        )


@frozen
class Rotation:
    """What `rotate` re-sealed under the current key."""

    key_id: str
    secrets: int
    webhook_secrets: int


class SecretService:
    """Set, list, delete and rotate stored secrets; every change is an Event without the value."""

    def __init__(self, *, db: Database, clock: Clock, environ: Mapping[str, str]) -> None:
        self._db = db
        self._clock = clock
        self._environ = environ

    def cipher(self, needed_for: str) -> Cipher:
        return Cipher.from_environ(self._environ, needed_for=needed_for)

    def set(self, name: str, value: str, *, actor: str, project: str = GLOBAL) -> SecretInfo:
        """Store `value` encrypted as `name` (of `project`, or for every project), replacing any."""
        check_secret_name(name)
        _check_scope(project)
        check_secret_value(name, value)
        sealed = self.cipher(f"storing {describe(project, name)}").seal(
            value, context=secret_context(project, name)
        )
        now = self._clock.now()
        with self._db.write() as tx:
            replaced = secret_store.find(tx, project=project, name=name) is not None
            secret_store.put(
                tx,
                project=project,
                name=name,
                ciphertext=sealed.text,
                key_id=sealed.key_id,
                now=now,
                actor=actor,
            )
            data = {"name": name, "project": project, "key_id": sealed.key_id, "replaced": replaced}
            event_log.append(
                tx, [NewEvent("secret.set", secret_subject(project, name), actor, now, data)]
            )
            row = secret_store.find(tx, project=project, name=name)
        assert row is not None
        return SecretInfo.of(row)

    def list_secrets(self, *, project: str | None = None) -> list[SecretInfo]:
        """Stored secrets (of one project and the global ones), without their values."""
        if project:
            check_project_name(project)
        return [SecretInfo.of(row) for row in secret_store.list_secrets(self._db, project=project)]

    def delete(self, name: str, *, actor: str, project: str = GLOBAL) -> None:
        """Remove one stored secret; NotFound when there is none."""
        check_secret_name(name)
        _check_scope(project)
        now = self._clock.now()
        with self._db.write() as tx:
            if not secret_store.delete(tx, project=project, name=name):
                raise NotFound(
                    f"there is no stored {describe(project, name)}; see `conveyor secret list`"
                )
            data = {"name": name, "project": project}
            event_log.append(
                tx, [NewEvent("secret.deleted", secret_subject(project, name), actor, now, data)]
            )

    def rotate(self, *, actor: str) -> Rotation:
        """Re-seal every secret and webhook secret not sealed under the current key."""
        cipher = self.cipher("rotating secrets")
        now = self._clock.now()
        with self._db.write() as tx:
            stale = secret_store.sealed_under_other_keys(tx, key_id=cipher.key_id)
            for row in stale:
                context = secret_context(row.project, row.name)
                plain = cipher.open(
                    row.ciphertext, context=context, what=describe(row.project, row.name)
                )
                sealed = cipher.seal(plain, context=context)
                secret_store.reseal(
                    tx, secret_id=row.id, ciphertext=sealed.text, key_id=sealed.key_id
                )
            hooks = 0
            for project, text in project_store.webhook_secrets(tx):
                if sealed_key_id(text) != cipher.key_id:
                    context = webhook_context(project)
                    plain = cipher.open(
                        text, context=context, what=f"the webhook secret of project {project}"
                    )
                    project_store.set_webhook_secret(
                        tx, name=project, sealed=cipher.seal(plain, context=context).text
                    )
                    hooks += 1
            data = {"key_id": cipher.key_id, "secrets": len(stale), "webhook_secrets": hooks}
            event_log.append(tx, [NewEvent("secrets.rotated", "secrets", actor, now, data)])
        return Rotation(cipher.key_id, len(stale), hooks)


def webhook_context(project: str) -> str:
    """The associated data that binds a project's webhook secret to that project."""
    return f"conveyor.webhook-secret/v1\0{project}"


def _check_scope(project: str) -> None:
    if project:
        check_project_name(project)


class StoredSecrets:
    """Where a Run finds the secrets it declares and the caller's environment lacks.

    A secret of the Run's project comes first, then the global one of that
    name. The key is asked for only when a stored secret must be opened, so
    Runs whose secrets all come from the environment need no key.
    """

    def __init__(
        self, db: Callable[[], Database], *, project: str, environ: Mapping[str, str]
    ) -> None:
        self._db = db
        self._project = project
        self._environ = environ

    def __call__(self, names: Sequence[str]) -> dict[str, str]:
        chosen: dict[str, SecretRow] = {}
        for row in secret_store.for_run(self._db(), project=self._project, names=names):
            if row.name not in chosen or row.project:
                chosen[row.name] = row
        if not chosen:
            return {}
        first = next(iter(chosen.values()))
        cipher = Cipher.from_environ(
            self._environ, needed_for=f"the stored {describe(first.project, first.name)}"
        )
        return {
            name: cipher.open(
                row.ciphertext,
                context=secret_context(row.project, row.name),
                what=describe(row.project, row.name),
            )
            for name, row in chosen.items()
        }


def new_key() -> str:
    """A fresh random key, written as CONVEYOR_SECRET_KEY takes it."""
    from conveyor.core.secrets import format_key

    return format_key(os.urandom(32))

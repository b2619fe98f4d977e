"""Evidence bundles: the format, and building the parts that prove it (pure).

An evidence bundle is a zip of files a verifier checks offline with one
public key. Besides the documents (the Release, its Run, its Promotions, their
change records, a human-readable report), it holds:

- `events.jsonl`: the related Events, one JSON object a line, each with the
  exact fields its chain hash covers (`data` as the canonical JSON text that
  was hashed) and `proof`, its RFC 6962 inclusion proof (hex, nearest sibling
  first) as leaf `seq - 1` of the tree the head signs;
- `tree-head.json`: one signed tree head over the log's first `size` Events;
- `public-key.pem`: the Ed25519 key that signed it;
- `manifest.json`: the format, what the bundle is about, and for every other
  file its path, SHA-256 digest, size and what it is;
- `signature.json`: an Ed25519 signature by the same key over the manifest's
  digest, so that no file (not even the report) changes unnoticed.

The manifest signature covers the canonical JSON of
`{"format": "conveyor.evidence-manifest/v1", "key_id": ..., "manifest": <digest>}`;
its `format` keeps it from ever being taken for a tree head's signature
(`conveyor.tree-head/v1`), and the reverse.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from conveyor.audit.chain import StoredEvent
from conveyor.audit.tree_head import TreeHead, decode_signature, encode_signature, key_id
from conveyor.core.digest import PREFIX, canonical_json, of_bytes
from conveyor.core.values import frozen

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "conveyor.evidence/v1"
SIGNATURE_FORMAT = "conveyor.evidence-manifest/v1"
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
EVENTS = "events.jsonl"
TREE_HEAD = "tree-head.json"
PUBLIC_KEY = "public-key.pem"
REPORT = "report.html"
# Files every bundle has, besides the manifest and its signature.
REQUIRED = (EVENTS, TREE_HEAD, PUBLIC_KEY)


@frozen
class FileEntry:
    """One file of a bundle as the manifest lists it."""

    path: str
    sha256: str
    size: int
    description: str
    count: int | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "description": self.description,
        }
        if self.count is not None:
            doc["count"] = self.count
        return doc


class DigestingWriter:
    """Writes to `stream` while counting bytes and hashing them, so nothing is read back."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0
        self.count = 0

    def write(self, data: bytes) -> None:
        self._stream.write(data)
        self._hash.update(data)
        self.size += len(data)

    def line(self, data: bytes) -> None:
        """Write one line of a JSON Lines file."""
        self.write(data + b"\n")
        self.count += 1

    def entry(self, path: str, description: str, *, lines: bool = False) -> FileEntry:
        """The manifest entry for what was written."""
        digest = PREFIX + self._hash.hexdigest()
        return FileEntry(path, digest, self.size, description, self.count if lines else None)


def event_line(event: StoredEvent, proof: Sequence[bytes]) -> bytes:
    """One line of `events.jsonl`: the Event as stored and its inclusion proof."""
    return json.dumps(
        {
            "seq": event.seq,
            "ts": event.ts,
            "kind": event.kind,
            "subject": event.subject,
            "actor": event.actor,
            "data": event.data_json,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
            "proof": [node.hex() for node in proof],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def head_document(head: TreeHead) -> bytes:
    """`tree-head.json`: the head as `conveyor audit head --json` prints it."""
    return json.dumps(head.to_json(), indent=2).encode() + b"\n"


def manifest_document(
    *, about: Mapping[str, object], created_at: str, head: TreeHead, files: Sequence[FileEntry]
) -> bytes:
    """`manifest.json`: the format, the subject, the head it proves against, and every file."""
    doc = {
        "format": FORMAT,
        "about": dict(about),
        "created_at": created_at,
        "tree_head": {"size": head.size, "root": head.root.hex(), "key_id": head.key_id},
        "files": [entry.to_json() for entry in files],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


def signature_message(*, manifest_digest: str, key: str) -> bytes:
    """The exact bytes a manifest signature covers."""
    return canonical_json({"format": SIGNATURE_FORMAT, "key_id": key, "manifest": manifest_digest})


def signature_document(private_key: Ed25519PrivateKey, manifest: bytes) -> bytes:
    """`signature.json`: `private_key`'s signature over the digest of `manifest`."""
    kid = key_id(private_key.public_key())
    digest = of_bytes(manifest)
    signature = private_key.sign(signature_message(manifest_digest=digest, key=kid))
    doc = {
        "format": SIGNATURE_FORMAT,
        "key_id": kid,
        "manifest": digest,
        "signature": encode_signature(signature),
    }
    return json.dumps(doc, indent=2).encode() + b"\n"


def manifest_signature_problem(
    document: Mapping[str, object], manifest: bytes, public_key: Ed25519PublicKey
) -> str | None:
    """Why `document` is not a good signature over `manifest` by `public_key`; None when it is."""
    from cryptography.exceptions import InvalidSignature

    kid = key_id(public_key)
    digest = of_bytes(manifest)
    if document.get("format") != SIGNATURE_FORMAT:
        return f"it is not a {SIGNATURE_FORMAT} signature"
    if document.get("manifest") != digest:
        return f"it signs a manifest with digest {document.get('manifest')}, not this one"
    if document.get("key_id") != kid:
        return f"it names key {document.get('key_id')}, not the key checked with ({kid})"
    signature = decode_signature(str(document.get("signature", "")))
    try:
        public_key.verify(signature, signature_message(manifest_digest=digest, key=kid))
    except InvalidSignature:
        return f"the signature does not verify under key {kid}"
    return None


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError naming the problem otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"a {type(key).__name__}, not an Ed25519 public key")  # noqa: TRY004
    return key


class MemoryBundle:
    """The files of a bundle held in memory (the BundleFiles port): for tests and small tools."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)

    def names(self) -> list[str]:
        return list(self.files)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[io.BytesIO]:
        yield io.BytesIO(self.files[name])

"""Verifying an evidence bundle offline with one public key (pure: files come through a port).

The checks run in this order, and the first problem found is the one named:

1. the tree head's signature under the key (the bundle's own, or one given);
2. every Event, streamed from `events.jsonl`: its hash recomputed from its
   fields, its link to the Event before it where the two are consecutive in
   the log, and its inclusion proof against the signed head's root;
3. every file against the digest and size the manifest lists, and no file
   the manifest does not list;
4. the manifest's signature under the same key.

A file that is not a bundle at all (not a zip, no manifest of this format)
is `NotABundle`; everything else is a problem of the bundle, reported as a
value. Nothing is held in memory but the manifest and one Event at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Literal, Protocol, cast

from conveyor.audit import evidence as fmt
from conveyor.audit.chain import GENESIS, StoredEvent, rehash
from conveyor.audit.merkle import event_leaf, verify_inclusion
from conveyor.audit.tree_head import TreeHead, decode_signature, key_id, signature_problem
from conveyor.core.digest import PREFIX
from conveyor.core.errors import UsageError
from conveyor.core.values import field, frozen, mutable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_DOCUMENT = 16 << 20  # manifest, head, key and signature are small; refuse huge ones
MAX_LINE = 16 << 20
MAX_PROBLEMS = 50
_CHUNK = 1 << 20

Check = Literal["key", "tree_head", "event", "chain", "proof", "file", "manifest"]


class NotABundle(UsageError):
    """The file is not an evidence bundle at all."""


class BundleReadError(Exception):
    """A file of the bundle cannot be read back (a damaged archive)."""


class Readable(Protocol):
    """A stream of one file's bytes."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BundleFiles(Protocol):
    """The files of one bundle, by path; the port a zip (or a test's dict) answers.

    `open` raises KeyError for a path the bundle does not hold, and its stream
    raises BundleReadError when the stored bytes are damaged.
    """

    def names(self) -> Sequence[str]: ...

    def open(self, name: str) -> AbstractContextManager[Readable]: ...


@frozen
class Problem:
    """One way the bundle fails to verify: which check, where, and why."""

    check: Check
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@frozen
class KeyUsed:
    """The key the bundle was checked with, and the one it carries when they differ."""

    key_id: str | None
    given: bool
    bundle_key_id: str | None

    @property
    def differs(self) -> bool:
        return self.given and self.bundle_key_id is not None and self.bundle_key_id != self.key_id


@frozen
class Verification:
    """The outcome: what the bundle is about, what was checked, and every problem found."""

    about: Mapping[str, object]
    key: KeyUsed
    head: TreeHead | None
    events: int
    files: int
    problems: tuple[Problem, ...]
    more_problems: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


@mutable(slots=True)
class _Findings:
    """The problems a check found, up to a limit, and how many more."""

    problems: list[Problem] = field(default_factory=list)
    more: int = 0

    def add(self, check: Check, where: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(check, where, reason))
        else:
            self.more += 1


def verify_bundle(files: BundleFiles, *, key: Ed25519PublicKey | None = None) -> Verification:
    """Check every file, Event, proof and signature of a bundle; NotABundle when it is none."""
    raw_manifest, manifest = _read_manifest(files)
    found = _Findings()
    names = list(files.names())
    bundle_key = _bundle_key(files, found)
    used = key or bundle_key
    kid = None if used is None else key_id(used)
    head = _read_head(files, found)
    if head is not None and used is not None:
        problem = _head_problem(head, used)
        if problem is not None:
            found.add("tree_head", fmt.TREE_HEAD, f"the tree head is not genuine: {problem}")
    entries = _entries(manifest, found)
    events, events_digest = _check_events(files, head, found, entries.get(fmt.EVENTS))
    _check_files(files, names, entries, events_digest, found)
    _check_signature(files, raw_manifest, used, found)
    bundle_kid = None if bundle_key is None else key_id(bundle_key)
    return Verification(
        about=cast(Mapping[str, object], manifest.get("about") or {}),
        key=KeyUsed(kid, key is not None, bundle_kid),
        head=head,
        events=events,
        files=len(entries),
        problems=tuple(found.problems),
        more_problems=found.more,
    )


# --- the small documents ---------------------------------------------------------------


def _read_small(files: BundleFiles, name: str) -> bytes:
    """A small file whole; KeyError when absent, BundleReadError when damaged or too big."""
    with files.open(name) as stream:
        data = stream.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise BundleReadError(f"it is larger than {MAX_DOCUMENT} bytes")
    return data


def _read_manifest(files: BundleFiles) -> tuple[bytes, dict[str, object]]:
    try:
        raw = _read_small(files, fmt.MANIFEST)
        doc = json.loads(raw)
    except KeyError:
        raise NotABundle(f"it holds no {fmt.MANIFEST}, so it is not an evidence bundle") from None
    except (BundleReadError, ValueError, RecursionError) as exc:
        raise NotABundle(f"its {fmt.MANIFEST} cannot be read: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt.FORMAT:
        raise NotABundle(f"its {fmt.MANIFEST} is not a {fmt.FORMAT} manifest")
    return raw, doc


def _bundle_key(files: BundleFiles, found: _Findings) -> Ed25519PublicKey | None:
    try:
        return fmt.load_public_key(_read_small(files, fmt.PUBLIC_KEY))
    except KeyError:
        found.add("key", fmt.PUBLIC_KEY, "the bundle holds no public key")
    except (BundleReadError, ValueError) as exc:
        found.add("key", fmt.PUBLIC_KEY, f"the bundle's public key cannot be read: {exc}")
    return None


def _read_head(files: BundleFiles, found: _Findings) -> TreeHead | None:
    try:
        return head_from_json(json.loads(_read_small(files, fmt.TREE_HEAD)))
    except KeyError:
        found.add("tree_head", fmt.TREE_HEAD, "the bundle holds no tree head")
    except (BundleReadError, ValueError, RecursionError) as exc:
        found.add("tree_head", fmt.TREE_HEAD, f"the tree head cannot be read: {exc}")
    return None


def _head_problem(head: TreeHead, key: Ed25519PublicKey) -> str | None:
    kid = key_id(key)
    if head.key_id != kid:
        return f"it was signed by key {head.key_id}, not by the key checked with ({kid})"
    return signature_problem(head, key)


def head_from_json(doc: object) -> TreeHead:
    """A tree head as `TreeHead.to_json` wrote it; ValueError when `doc` is not one."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - callers expect ValueError
    try:
        size, root = doc["size"], bytes.fromhex(str(doc["root"]))
        signature = decode_signature(str(doc["signature"]))
        timestamp, kid = str(doc["timestamp"]), str(doc["key_id"])
    except KeyError as exc:
        raise ValueError(f"it has no {exc.args[0]}") from None
    if not isinstance(size, int) or size < 0:
        raise ValueError("its size is not a whole number")
    return TreeHead(size, root, timestamp, kid, signature)


def _entries(manifest: Mapping[str, object], found: _Findings) -> dict[str, Mapping[str, object]]:
    listed = manifest.get("files")
    entries: dict[str, Mapping[str, object]] = {}
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            if item["path"] in entries:
                found.add("manifest", fmt.MANIFEST, f"it lists {item['path']} twice")
            entries[item["path"]] = item
    for name in fmt.REQUIRED:
        if name not in entries:
            found.add("manifest", fmt.MANIFEST, f"it does not list {name}")
    return entries


# --- events ----------------------------------------------------------------------------


@mutable(slots=True)
class _Previous:
    """The Event before the one being checked: its sequence number and hash."""

    seq: int = 0
    hash: str = GENESIS


def _check_events(
    files: BundleFiles,
    head: TreeHead | None,
    found: _Findings,
    entry: Mapping[str, object] | None,
) -> tuple[int, str | None]:
    """Stream `events.jsonl`, checking each Event; how many there were, and the file's digest."""
    count, digest = 0, hashlib.sha256()
    previous = _Previous()
    try:
        with files.open(fmt.EVENTS) as stream:
            for number, line in enumerate(_lines(stream), start=1):
                digest.update(line)
                count += 1
                _check_line(line, number, head, previous, found)
    except KeyError:
        found.add("file", fmt.EVENTS, "the bundle holds no events")
        return 0, None
    except BundleReadError as exc:
        found.add("file", fmt.EVENTS, f"it is damaged: {exc}")
        return count, None
    listed = None if entry is None else entry.get("count")
    if isinstance(listed, int) and listed != count:
        found.add("file", fmt.EVENTS, f"it holds {count} events; the manifest lists {listed}")
    return count, PREFIX + digest.hexdigest()


def _lines(stream: Readable) -> Iterator[bytes]:
    while line := stream.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE:
            raise BundleReadError(f"a line is longer than {MAX_LINE} bytes")
        yield line


def _check_line(
    line: bytes, number: int, head: TreeHead | None, previous: _Previous, found: _Findings
) -> None:
    try:
        event, proof = parse_event_line(line)
    except (ValueError, RecursionError) as exc:
        found.add("event", f"{fmt.EVENTS} line {number}", f"it is not an event: {exc}")
        return
    where = f"event {event.seq} ({event.kind} {event.subject})"
    if event.seq <= previous.seq:
        found.add("chain", where, f"it comes after event {previous.seq}: out of order or repeated")
    elif rehash(event) != event.hash:
        found.add("event", where, "its content does not match its hash")
    elif event.seq == previous.seq + 1 and event.prev_hash != previous.hash:
        before = "the start of the log" if event.seq == 1 else f"event {previous.seq}"
        found.add("chain", where, f"its link to {before} does not match")
    elif head is not None:
        problem = _proof_problem(event, proof, head)
        if problem is not None:
            found.add("proof", where, problem)
    previous.seq, previous.hash = event.seq, event.hash


def _proof_problem(event: StoredEvent, proof: list[bytes], head: TreeHead) -> str | None:
    if event.seq > head.size:
        return f"it is not among the {head.size} events the tree head covers"
    if not verify_inclusion(event_leaf(event.hash), event.seq - 1, head.size, proof, head.root):
        return "its inclusion proof does not lead to the signed tree head's root"
    return None


def parse_event_line(line: bytes) -> tuple[StoredEvent, list[bytes]]:
    """An Event and its proof from one line of `events.jsonl`; ValueError when it is not one."""
    doc = json.loads(line)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - callers expect ValueError
    texts = ("ts", "kind", "subject", "actor", "data", "prev_hash", "hash")
    missing = [name for name in ("seq", *texts, "proof") if name not in doc]
    if missing:
        raise ValueError(f"it has no {', '.join(missing)}")
    seq, proof = doc["seq"], doc["proof"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("its seq is not a positive whole number")
    if not all(isinstance(doc[name], str) for name in texts):
        raise ValueError("a field that must be text is not")
    if not isinstance(proof, list) or not all(isinstance(node, str) for node in proof):
        raise ValueError("its proof is not a list of hex hashes")
    ts, kind, subject, actor, data, prev_hash, digest = (str(doc[name]) for name in texts)
    event = StoredEvent(seq, ts, kind, subject, actor, data, prev_hash, digest)
    return event, [bytes.fromhex(node) for node in proof]


# --- files and the manifest's signature ------------------------------------------------


def _check_files(
    files: BundleFiles,
    names: Sequence[str],
    entries: Mapping[str, Mapping[str, object]],
    events_digest: str | None,
    found: _Findings,
) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            found.add("file", name, "the bundle holds it twice")
        seen.add(name)
        if name not in entries and name not in (fmt.MANIFEST, fmt.SIGNATURE):
            found.add("file", name, "the manifest does not list it")
    for path, entry in entries.items():
        if path in (fmt.MANIFEST, fmt.SIGNATURE):
            found.add("manifest", fmt.MANIFEST, f"it lists {path}, which cannot list itself")
        elif path == fmt.EVENTS:
            if events_digest is not None and events_digest != entry.get("sha256"):
                found.add("file", path, "its content does not match its digest in the manifest")
        elif path in seen:
            _check_file(files, path, entry, found)
        else:
            found.add("file", path, "the manifest lists it, but the bundle does not hold it")


def _check_file(
    files: BundleFiles, path: str, entry: Mapping[str, object], found: _Findings
) -> None:
    digest, size = hashlib.sha256(), 0
    try:
        with files.open(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except BundleReadError as exc:
        found.add("file", path, f"it is damaged: {exc}")
        return
    if PREFIX + digest.hexdigest() != entry.get("sha256") or size != entry.get("size"):
        found.add("file", path, "its content does not match its digest in the manifest")


def _check_signature(
    files: BundleFiles, manifest: bytes, used: Ed25519PublicKey | None, found: _Findings
) -> None:
    try:
        document = json.loads(_read_small(files, fmt.SIGNATURE))
    except KeyError:
        found.add("manifest", fmt.SIGNATURE, "the manifest is not signed")
        return
    except (BundleReadError, ValueError, RecursionError) as exc:
        found.add("manifest", fmt.SIGNATURE, f"the manifest's signature cannot be read: {exc}")
        return
    if used is None or not isinstance(document, dict):
        found.add("manifest", fmt.SIGNATURE, "the manifest's signature cannot be checked")
        return
    problem = fmt.manifest_signature_problem(document, manifest, used)
    if problem is not None:
        found.add("manifest", fmt.SIGNATURE, f"the manifest's signature does not hold: {problem}")

"""The audit service: signed tree heads over the event log, verifying it, proving inclusion.

A tree head is the RFC 6962 Merkle root of the log's first `size` Events,
signed with the workspace's Ed25519 key. The hash chain shows whether each
stored Event follows from the ones before it; a signed head also catches
history rewritten wholesale (the chain recomputed after an alteration, or
the newest Events deleted), because no one without the key can sign a root
for the new history. Whoever can delete rows can delete heads too, so heads
are only as safe as the copies kept elsewhere (exported, or published).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from conveyor.audit import chain
from conveyor.audit import tree_head as heads
from conveyor.audit.merkle import Frontier, MerkleTree, event_leaf
from conveyor.audit.tree_head import TreeHead
from conveyor.core.clock import Clock
from conveyor.core.errors import IntegrityError, NotFound, UsageError
from conveyor.core.values import frozen, mutable
from conveyor.engine import audit_key
from conveyor.store import events as event_log
from conveyor.store import tree_heads
from conveyor.store.db import Database, Transaction

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Detector = Literal["chain", "tree_head"]


@frozen
class Finding:
    """One way the log fails to verify: the first Event concerned, what caught it, and why."""

    seq: int | None
    kind: str | None
    subject: str | None
    reason: str
    found_by: Detector


@frozen
class AuditReport:
    """The outcome of checking the whole log: its size and root, the heads checked, findings."""

    events: int
    root: bytes
    heads: int
    newest_head: TreeHead | None
    findings: tuple[Finding, ...]

    @property
    def intact(self) -> bool:
        return not self.findings


@frozen
class InclusionProof:
    """An RFC 6962 audit path from one Event's leaf to the root of a signed tree head."""

    seq: int
    kind: str
    subject: str
    leaf: str
    leaf_hash: bytes
    index: int
    tree_size: int
    root: bytes
    path: tuple[bytes, ...]
    head: TreeHead


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


# --- signing -------------------------------------------------------------------------


def sign_tree_head(
    db: Database,
    state_dir: Path,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    appended: Mapping[int, str] | None = None,
) -> TreeHead:
    """Sign the whole log if it grew since the newest head; the newest head.

    `appended`: seq -> hash of Events this process appended (see `chain.verify`).
    """
    # Only the Events after the newest head are read and hashed; unless they follow
    # from it by the hash chain, nothing is signed (IntegrityError).
    key = audit_key.signing_key(state_dir, _environ(environ))
    with db.write() as tx:
        tree_heads.lock_for_signing(tx)
        last = tree_heads.newest(tx)
        size = event_log.last_seq(tx)
        if last is not None and last.head.size == size:
            return last.head
        frontier, after_hash = _resume(tx, last, size)
        # Of the Events this process appended, only their links are read.
        own = appended or {}
        events = event_log.to_check(tx, after=frontier.size, until=size, own=own)
        _extend(frontier, events, after_hash, own)
        head = heads.sign(
            key, size=frontier.size, root=frontier.root(), timestamp=chain.format_ts(clock.now())
        )
        tree_heads.add(tx, head, frontier.hashes)
    return head


def _resume(tx: Transaction, last: tree_heads.Checkpoint | None, size: int) -> tuple[Frontier, str]:
    """The frontier of the newest head, checked against its root, and its last Event's hash."""
    if last is None:
        return Frontier(), chain.GENESIS
    covered = last.head.size
    if size < covered:
        raise IntegrityError(
            f"the log ends at event {size}, but a signed tree head covers {covered} events: "
            "events were deleted; run `conveyor audit verify`"
        )
    frontier = _frontier_of(last)
    if frontier is None:
        raise IntegrityError(
            f"the stored tree head over {covered} events was altered: its subtree hashes "
            "do not give its root; run `conveyor audit verify`"
        )
    last_hash = event_log.hash_at(tx, covered) if covered else chain.GENESIS
    if last_hash is None:
        raise IntegrityError(
            f"event {covered}, the last one the newest tree head covers, is missing; "
            "run `conveyor audit verify`"
        )
    return frontier, last_hash


def _frontier_of(last: tree_heads.Checkpoint) -> Frontier | None:
    """The stored frontier of `last`, if it really gives `last`'s root."""
    try:
        frontier = Frontier.resume(last.head.size, last.frontier)
    except ValueError:
        return None
    return frontier if frontier.root() == last.head.root else None


def _extend(
    frontier: Frontier,
    events: Iterator[chain.StoredEvent | chain.Link],
    after_hash: str,
    appended: Mapping[int, str],
) -> None:
    """Add `events` to `frontier`, refusing any that do not follow by the hash chain."""

    def leaves() -> Iterator[chain.StoredEvent | chain.Link]:
        for event in events:
            frontier.append(event_leaf(event.hash))
            yield event

    found = chain.verify(
        leaves(), after_seq=frontier.size, after_hash=after_hash, appended=appended
    )
    if found is not None:
        raise IntegrityError(
            f"event {found.seq} does not follow from the events before it ({found.reason}); "
            "no tree head was signed; run `conveyor audit verify`"
        )


def sign_after_run(
    db: Database,
    state_dir: Path,
    clock: Clock,
    environ: Mapping[str, str] | None,
    warn: Callable[[str], None],
    *,
    appended: Mapping[int, str] | None = None,
) -> TreeHead | None:
    """Sign a head at the end of a Run; a log that cannot be signed is a warning, not a failure.

    `appended`: the Run's own Events (seq -> hash), which need no second hashing.
    """
    try:
        return sign_tree_head(db, state_dir, clock, environ=environ, appended=appended)
    except (IntegrityError, UsageError) as exc:
        warn(f"no audit tree head was signed: {exc}")
        return None


@frozen
class PublicKey:
    """The key that verifies this workspace's tree heads: its id and its PEM."""

    key_id: str
    pem: str


def public_key(state_dir: Path, *, environ: Mapping[str, str] | None = None) -> PublicKey:
    """The workspace's public key, making the key pair on first use."""
    public = audit_key.signing_key(state_dir, _environ(environ)).public_key()
    return PublicKey(heads.key_id(public), audit_key.public_pem(public))


# --- verifying -----------------------------------------------------------------------


@mutable(slots=True)
class _Walk:
    """One pass over the log: the first chain break, the tree, and roots at head sizes."""

    chain_break: chain.ChainBreak | None
    frontier: Frontier
    roots: dict[int, bytes]


def _walk(db: Database, sizes: set[int]) -> _Walk:
    frontier = Frontier()
    roots = {0: frontier.root()}

    def leaves() -> Iterator[chain.StoredEvent]:
        for event in event_log.iter_all(db):
            frontier.append(event_leaf(event.hash))
            if frontier.size in sizes:
                roots[frontier.size] = frontier.root()
            yield event

    stream = leaves()
    found = chain.verify(stream)
    collections.deque(stream, maxlen=0)  # the tree covers every Event, even after a break
    return _Walk(found, frontier, roots)


def verify_log(
    db: Database, state_dir: Path, *, environ: Mapping[str, str] | None = None
) -> AuditReport:
    """Check the hash chain and every signed tree head against the log as it is now."""
    signed = tree_heads.all_heads(db)
    key = audit_key.public_key(state_dir, _environ(environ)) if signed else None
    walk = _walk(db, {head.size for head in signed})
    findings: list[Finding] = []
    if walk.chain_break is not None:
        findings.append(_finding(db, walk.chain_break.seq, walk.chain_break.reason, "chain"))
    head_finding = _check_heads(db, signed, key, walk)
    if head_finding is not None:
        findings.append(head_finding)
    return AuditReport(
        events=walk.frontier.size,
        root=walk.frontier.root(),
        heads=len(signed),
        newest_head=signed[-1] if signed else None,
        findings=tuple(findings),
    )


def _finding(db: Database, seq: int | None, reason: str, found_by: Detector) -> Finding:
    event = None if seq is None else event_log.at(db, seq)
    if event is None:
        return Finding(seq, None, None, reason, found_by)
    return Finding(seq, event.kind, event.subject, reason, found_by)


def _check_heads(
    db: Database, signed: list[TreeHead], key: Ed25519PublicKey | None, walk: _Walk
) -> Finding | None:
    """The first head that is not genuine or no longer matches the log."""
    proven = 0
    for head in signed:
        seq, reason = _head_problem(head, key, walk, proven)
        if reason is not None:
            return _finding(db, seq, reason, "tree_head")
        proven = head.size
    return None


def _head_problem(
    head: TreeHead, key: Ed25519PublicKey | None, walk: _Walk, proven: int
) -> tuple[int | None, str | None]:
    """The first Event `head` fails to vouch for and why; (None, None) when it holds."""
    what = f"the tree head signed {head.timestamp} over {head.size} events"
    if key is None:
        return None, f"{what} cannot be checked: the workspace's signing key is missing"
    bad_signature = heads.signature_problem(head, key)
    if bad_signature is not None:
        return None, f"{what} is not genuine: {bad_signature}"
    held = walk.frontier.size
    if head.size > held:
        # An intact chain that is too short lost its newest Events; otherwise the
        # chain names the gap and the first Event this head no longer vouches for is named.
        first = held + 1 if walk.chain_break is None else proven + 1
        return first, f"{what} covers more than the {held} the log holds now; events were deleted"
    if walk.roots.get(head.size) != head.root:
        return proven + 1, (
            f"events {proven + 1}-{head.size} no longer match {what}: "
            "one of them was altered, deleted or reordered after it was signed"
        )
    return None, None


# --- proving -------------------------------------------------------------------------


def inclusion(
    db: Database,
    state_dir: Path,
    seq: int,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
) -> InclusionProof:
    """Prove Event `seq` is in the log against the newest signed head (signed now if it grew)."""
    head = sign_tree_head(db, state_dir, clock, environ=environ)
    stored = event_log.chain_hashes(db, count=head.size)
    positions = {s: i for i, (s, _) in enumerate(stored)}
    if seq not in positions:
        raise NotFound(f"no event {seq} in the log; it holds events 1-{head.size}")
    tree = _tree_under(head, [digest for _, digest in stored])
    index = positions[seq]
    event = event_log.at(db, seq)
    if event is None or event.hash != stored[index][1] or chain.rehash(event) != event.hash:
        raise IntegrityError(
            f"event {seq} does not match its hash, so no proof can vouch for it; "
            "run `conveyor audit verify`"
        )
    return InclusionProof(
        seq=seq,
        kind=event.kind,
        subject=event.subject,
        leaf=event.hash,
        leaf_hash=tree.leaf_hash(index),
        index=index,
        tree_size=tree.size,
        root=tree.root(),
        path=tuple(tree.inclusion_proof(index)),
        head=head,
    )


def _tree_under(head: TreeHead, chain_hashes: list[str]) -> MerkleTree:
    """The tree over the Events `head` covers, which must still give its root."""
    tree = MerkleTree([event_leaf(digest) for digest in chain_hashes])
    if tree.size != head.size or tree.root() != head.root:
        raise IntegrityError(
            f"the log no longer matches its newest tree head (signed {head.timestamp} over "
            f"{head.size} events); run `conveyor audit verify`"
        )
    return tree

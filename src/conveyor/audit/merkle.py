"""The RFC 6962 Merkle tree over the event log, with inclusion and consistency proofs.

The tree hash (MTH) of n leaves is defined in RFC 6962 section 2.1: the empty
tree hashes to SHA-256 of nothing, one leaf to `SHA-256(0x00 || leaf)`, and
more leaves to `SHA-256(0x01 || MTH(left) || MTH(right))`, where the left
part holds the largest power of two smaller than n. Proofs follow sections
2.1.1 and 2.1.2; their verification follows RFC 9162 sections 2.1.3.2 and
2.1.4.2, so any Certificate Transparency verifier accepts them.

The leaf for an Event is the UTF-8 text of its chain hash as stored
(`sha256:<hex>`). That hash already covers every field of the Event and the
hash before it, so a tree head commits to the whole log up to its size.

Building the tree bottom up, pairing neighbours and carrying an odd last node
up unchanged, gives exactly the RFC's tree, and every subtree a proof needs is
one node of it. `MerkleTree` keeps those levels, so after O(n) hashing each
proof costs O(log n). `Frontier` keeps only the O(log n) perfect subtrees of
a growing log, so the root after each new leaf costs O(log n) without keeping
the leaves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || leaf)."""
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def event_leaf(chain_hash: str) -> bytes:
    """The leaf an Event contributes: its chain hash as stored, in UTF-8."""
    return chain_hash.encode()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (which is at least 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """The tree over a fixed list of leaves, every level kept for cheap proofs."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels = [[leaf_hash(leaf) for leaf in leaves]]
        while len(level := self._levels[-1]) > 1:
            parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                parents.append(level[-1])
            self._levels.append(parents)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def root(self) -> bytes:
        """MTH of all the leaves."""
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        return self._levels[0][index]

    def _node(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range the RFC's recursion produces."""
        height = (hi - lo - 1).bit_length()
        return self._levels[height][lo >> height]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[n]) of RFC 6962 section 2.1.1, nearest sibling first."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        path: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._node(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._node(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency_proof(self, m: int) -> list[bytes]:
        """PROOF(m, D[n]) of RFC 6962 section 2.1.2; empty when m is 0 or n."""
        if not 0 <= m <= self.size:
            raise IndexError(f"a tree of {self.size} has no prefix of {m}")
        if m in (0, self.size):
            return []
        proof: list[bytes] = []
        lo, hi, whole = 0, self.size, True
        while hi - lo != m:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._node(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._node(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            proof.append(self._node(lo, hi))
        proof.reverse()
        return proof


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1."""
    return MerkleTree(leaves).root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf `index` (0-based) in the tree over `leaves`."""
    return MerkleTree(leaves).inclusion_proof(index)


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree over `leaves[:m]` is a prefix of the tree over `leaves`."""
    return MerkleTree(leaves).consistency_proof(m)


def _well_formed(proof: Sequence[bytes]) -> bool:
    return all(len(node) == HASH_SIZE for node in proof)


def _shift_to_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until fn's lowest bit is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows `leaf` at `index` in the tree of `size` with `root` (RFC 9162)."""
    if not 0 <= index < size or not _well_formed(proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `m` with `root_m` is a prefix of `n`'s (RFC 9162)."""
    if not 0 <= m <= n or not _well_formed(proof):
        return False
    if m == n:
        return not proof and hmac.compare_digest(root_m, root_n)
    if m == 0:
        return not proof and hmac.compare_digest(root_m, EMPTY_ROOT)
    if not proof:
        return False
    path = [root_m, *proof] if m & (m - 1) == 0 else list(proof)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_to_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, root_m) and hmac.compare_digest(sr, root_n)


class Frontier:
    """The perfect subtrees of a growing log, largest first: enough for its root."""

    # A log of n leaves has one perfect subtree per set bit of n; appending a
    # leaf merges the subtrees it completes, like adding one in binary.

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    @classmethod
    def resume(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """The frontier of a log of `size` leaves from its subtree hashes."""
        if size < 0 or len(hashes) != size.bit_count() or not _well_formed(hashes):
            raise ValueError(f"a log of {size} leaves has {size.bit_count()} subtree hashes")
        frontier = cls()
        frontier.size, frontier._stack = size, list(hashes)
        return frontier

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._stack)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf."""
        node, carry = leaf_hash(leaf), self.size
        while carry & 1:
            node = node_hash(self._stack.pop(), node)
            carry >>= 1
        self._stack.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH of every leaf appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) whose hashes make PATH(index, D[size]), nearest sibling first."""
    if not 0 <= index < size:
        raise IndexError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


class PathCollector:
    """Inclusion proofs for chosen leaves, gathered in one pass over a tree of known size.

    Memory is O(log n) for the pass plus the proofs themselves, so proving a
    few thousand Events of a log of millions never holds the log. Every range
    a path needs is either a perfect subtree, hashed the moment the pass
    completes it, or a right edge [lo, n), a suffix of the final frontier.
    """

    def __init__(self, size: int, indices: Sequence[int]) -> None:
        self.size = size
        self._count = 0
        self._stack: list[tuple[int, int, bytes]] = []  # (lo, width, hash), widest first
        self._paths: dict[int, list[bytes]] = {}
        self._wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for index in indices:
            ranges = path_ranges(index, size)
            self._paths[index] = [b""] * len(ranges)
            for position, span in enumerate(ranges):
                self._wanted.setdefault(span, []).append((index, position))

    def append(self, leaf: bytes) -> None:
        """Add the next leaf of the tree."""
        if self._count >= self.size:
            raise IndexError(f"a tree of {self.size} leaves has no leaf {self._count}")
        node = (self._count, 1, leaf_hash(leaf))
        self._count += 1
        self._found(node)
        while self._stack and self._stack[-1][1] == node[1]:
            lo, width, left = self._stack.pop()
            node = (lo, width * 2, node_hash(left, node[2]))
            self._found(node)
        self._stack.append(node)

    def _found(self, node: tuple[int, int, bytes]) -> None:
        lo, width, digest = node
        for index, position in self._wanted.get((lo, lo + width), ()):
            self._paths[index][position] = digest

    def finish(self) -> tuple[bytes, dict[int, list[bytes]]]:
        """The root and every wanted path; the pass must have seen all `size` leaves."""
        if self._count != self.size:
            raise ValueError(f"the pass saw {self._count} of {self.size} leaves")
        if not self._stack:
            return EMPTY_ROOT, self._paths
        node = self._stack[-1][2]
        for lo, _width, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
            self._found((lo, self.size - lo, node))
        return node, self._paths
